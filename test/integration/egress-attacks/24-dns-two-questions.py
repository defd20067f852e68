# expect: refused
# DNS queries the resolver must not forward: two questions (the allowed name first, the denied
# second), a name with a dot inside a label that prints as the allowed name, and the same over TCP.
import os, socket, struct
def name(labels): return b''.join(bytes([len(l)]) + l for l in labels) + b'\0'
d = os.environ['DENIED'].encode().split(b'.')
queries = [
    struct.pack('!HHHHHH', 1, 0x0100, 2, 0, 0, 0) + name([b'allowed', b'test']) + struct.pack('!HH', 1, 1) + name(d) + struct.pack('!HH', 1, 1),
    struct.pack('!HHHHHH', 2, 0x0100, 1, 0, 0, 0) + name([b'allowed.test']) + struct.pack('!HH', 1, 1),
    struct.pack('!HHHHHH', 3, 0x0100, 1, 0, 0, 0) + name([b'x'] + d) + struct.pack('!HH', 1, 1),
]
for q in queries:
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3); u.connect(('127.0.0.53', 53)); u.send(q)
        r = u.recv(4096)
        if struct.unpack('!H', r[6:8])[0] > 0: print('REACHED an answer to query', q[1])
    except OSError:
        pass
    try:
        t = socket.create_connection(('127.0.0.53', 53), timeout=3); t.sendall(struct.pack('!H', len(q)) + q); t.recv(4096)
    except OSError:
        pass
# The fixture's DNS log is the other oracle: none of these may reach it.
