# expect: refused
# Malformed queries (a compression loop, a truncated question, a label past the end, an empty
# packet, a response instead of a query): none may get forwarded, and the resolver must still
# answer the allowed name afterwards (a crash would be a denial of service, not a bypass, but FAIL).
import socket, struct
hdr = lambda qd, flags=0x0100: struct.pack('!HHHHHH', 9, flags, qd, 0, 0, 0)
bad = [hdr(1) + b'\xc0\x0c' + struct.pack('!HH', 1, 1), hdr(1) + b'\x07allowed', hdr(1) + b'\x3fabc', b'', hdr(1, 0x8180) + b'\x04evil\x04test\x00' + struct.pack('!HH', 1, 1),
       hdr(1) + b'\x04evil\x04test\x00' + struct.pack('!HH', 255, 1), hdr(1) + b'\x04evil\x04test\x00' + struct.pack('!HH', 16, 3)]
for q in bad:
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(1); u.connect(('127.0.0.53', 53)); u.send(q); u.recv(4096)
    except OSError:
        pass
q = hdr(1) + b'\x07allowed\x04test\x00' + struct.pack('!HH', 1, 1)
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3); u.connect(('127.0.0.53', 53)); u.send(q)
    if struct.unpack('!H', u.recv(4096)[6:8])[0] < 1: print('FAIL the resolver gave no answer for allowed.test afterwards')
except OSError as e:
    print('FAIL the resolver no longer answers:', e)
