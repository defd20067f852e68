# expect: refused
# control: reaches
# Header shapes parsers disagree on: a Host folded onto a second line, and a request whose lines end
# in a bare LF with a second request for the denied Host behind it.
import os, socket
d = os.environ['DENIED']
for req in (f'GET / HTTP/1.1\r\nHost: allowed.test\r\n {d}\r\nConnection: close\r\n\r\n',
            f'GET / HTTP/1.1\nHost: allowed.test\n\nGET /second HTTP/1.1\nHost: {d}\nConnection: close\n\n'):
    try:
        s = socket.create_connection(('allowed.test', 80), timeout=5)
        s.sendall(req.encode()); got = b''
        while True:
            x = s.recv(4096)
            if not x: break
            got += x
        if got: print('REACHED', repr(req[:30]), got[:40])
    except OSError:
        pass
