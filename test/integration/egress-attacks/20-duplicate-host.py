# expect: refused
# control: reaches
# Two Host headers: the allowed one first, the denied one second (servers differ on which counts).
import os, socket
try:
    s = socket.create_connection(('allowed.test', 80), timeout=5)
    s.sendall(f'GET / HTTP/1.1\r\nHost: allowed.test\r\nHost: {os.environ["DENIED"]}\r\nConnection: close\r\n\r\n'.encode())
    d = s.recv(4096)
    if d: print('REACHED two Host headers:', d[:40])
except OSError:
    pass
