# expect: refused
# The relay's own socket, found among the listeners on 127.0.0.1 inside the sandbox, dialled
# directly (it has no original destination then): it must not carry the request anywhere.
import socket
ports = set()
for l in open('/proc/net/tcp').read().split('\n')[1:]:
    f = l.split()
    if len(f) > 3 and f[3] == '0A' and f[1].startswith('0100007F:'): ports.add(int(f[1].split(':')[1], 16))
for p in sorted(ports):
    try:
        s = socket.create_connection(('127.0.0.1', p), timeout=3)
        s.sendall(b'GET / HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n')
        d = s.recv(4096)
        if b'hello' in d: print('REACHED through 127.0.0.1:%d' % p)
    except OSError:
        pass
print('listeners tried:', sorted(ports))
