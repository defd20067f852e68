# expect: refused
# control: reaches
# Two requests in one segment: the allowed Host, then the denied one, before any answer.
import os, socket
try:
    s = socket.create_connection(('allowed.test', 80), timeout=5)
    s.sendall(f'GET /first HTTP/1.1\r\nHost: allowed.test\r\n\r\nGET /second HTTP/1.1\r\nHost: {os.environ["DENIED"]}\r\nConnection: close\r\n\r\n'.encode())
    got = b''
    while True:
        x = s.recv(4096)
        if not x: break
        got += x
    if got.count(b'HTTP/1.1 200') > 1: print('REACHED the second pipelined request')
except OSError:
    pass
