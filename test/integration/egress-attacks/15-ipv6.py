# expect: refused
# Any IPv6 at all: a global documentation address, and the v4-mapped form of the shared address.
import os, socket
for addr in ('2001:db8::1', '::ffff:' + os.environ['WEB']):
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); s.settimeout(3); s.connect((addr, 443)); print('REACHED', addr)
    except OSError:
        pass
