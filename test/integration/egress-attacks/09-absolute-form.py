# expect: refused
# control: reaches
# An absolute-form request naming the denied host, with the allowed Host header.
import os, socket
try:
    s = socket.create_connection(('allowed.test', 80), timeout=5)
    s.sendall(f'GET http://{os.environ["DENIED"]}/ HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n'.encode())
    d = s.recv(4096)
    if d: print('REACHED absolute-form:', d[:40])
except OSError:
    pass
