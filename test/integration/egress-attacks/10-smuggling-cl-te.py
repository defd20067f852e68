# expect: refused
# control: reaches
# Request smuggling: Content-Length and Transfer-Encoding together; the body hides a second request for the denied Host.
import os, socket
inner = f'GET /smuggled HTTP/1.1\r\nHost: {os.environ["DENIED"]}\r\n\r\n'
body = f'0\r\n\r\n{inner}'
req = f'POST / HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n\r\n{body}'
try:
    s = socket.create_connection(('allowed.test', 80), timeout=5)
    s.sendall(req.encode())
    d = b''
    while True:
        x = s.recv(4096)
        if not x: break
        d += x
    if d: print('REACHED the server answered a smuggling shape:', d[:40])
except OSError:
    pass
