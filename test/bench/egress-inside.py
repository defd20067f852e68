# The inside half of test/bench/egress.mjs, run in a sandbox (python3 from rootfs: host, this file
# at /egress/bench.py): each mode prints one JSON line of times. Every socket has a timeout.
#   setup N NAME PORT TLS     N fresh connections: TCP connect (+ TLS handshake) + one small GET
#   dns N SERVER NAME|-       N lookups of NAME (a hit after the first), or of N distinct names under
#                             miss.allowed.test ("-": every one a miss)
#   raw ADDR PORT BYTES       one download from the raw TCP source; seconds
#   hold N NAME PORT SECS     N TLS connections opened and held open for SECS
#   serve                     downloads asked on stdin, one per line (`raw ADDR PORT BYTES`, or
#                             `curl URL BYTES`: curl's own speed), one JSON line each as it ends, with
#                             the CPU seconds this process and its curl spent on it: the bench keeps
#                             one of these per sandbox and takes turns between them
import json, os, resource, socket, ssl, struct, subprocess, sys, time

_ctx = None
def ctx():
    global _ctx
    if _ctx is None: _ctx = ssl.create_default_context(cafile=os.environ.get('EGRESS_CA', '/egress/ca.pem'))
    return _ctx

def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(len(xs) * p))]

def setup(n, name, port, tls):
    addr = socket.gethostbyname(name)
    times = []
    for _ in range(int(n)):
        t0 = time.perf_counter()
        s = socket.create_connection((addr, int(port)), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls == '1': s = ctx().wrap_socket(s, server_hostname=name)
        s.sendall(f'GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n'.encode())
        try:
            while s.recv(4096): pass
        except ssl.SSLError: pass  # the server closes without close_notify
        s.close()
        times.append((time.perf_counter() - t0) * 1e6)
    print(json.dumps({'p50_us': pct(times, 0.5), 'p90_us': pct(times, 0.9), 'n': len(times), 'times_us': times}))

def query(server, name):
    q = struct.pack('!HHHHHH', 0x5b7e, 0x0100, 1, 0, 0, 0) + b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\0' + struct.pack('!HH', 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); s.connect((server, 53))
    t0 = time.perf_counter(); s.send(q); s.recv(4096); dt = (time.perf_counter() - t0) * 1e6
    s.close()
    return dt

def dns(n, server, name):
    times = [query(server, name if name != '-' else f'n{i}-{time.time_ns()}.miss.allowed.test') for i in range(int(n))]
    first = times[0]
    rest = times[1:] if name != '-' else times
    print(json.dumps({'first_us': first, 'p50_us': pct(rest, 0.5), 'p90_us': pct(rest, 0.9), 'n': len(times)}))

def raw_once(addr, port, nbytes):
    s = socket.create_connection((addr, int(port)), timeout=10)
    t0 = time.perf_counter(); s.sendall(f'{nbytes}\n'.encode()); got = 0
    buf = bytearray(1 << 20)
    while True:
        k = s.recv_into(buf)
        if not k: break
        got += k
    dt = time.perf_counter() - t0
    s.close()
    if got != int(nbytes): raise SystemExit(f'raw: {got} bytes of {nbytes}')
    return {'bytes': got, 'seconds': dt, 'gbit': got * 8 / dt / 1e9}

def raw(addr, port, nbytes):
    print(json.dumps(raw_once(addr, port, nbytes)))

def curl_once(url, nbytes):
    r = subprocess.run(['curl', '-sS', '--max-time', '300', '--cacert', os.environ.get('EGRESS_CA', '/egress/ca.pem'), '-o', '/dev/null',
                        '-w', '%{speed_download} %{size_download}', url], capture_output=True, text=True)
    out = r.stdout.split()
    if r.returncode != 0 or len(out) != 2 or int(out[1]) != int(nbytes): raise SystemExit(f'curl {url}: {r.stdout}{r.stderr}')
    return {'bytes': int(out[1]), 'gbit': float(out[0]) * 8 / 1e9}

def cpu_seconds():
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))

def serve():
    for line in sys.stdin:
        mode, *args = line.split()
        c0 = cpu_seconds()
        out = {'raw': raw_once, 'curl': curl_once}[mode](*args)
        out['cpu'] = cpu_seconds() - c0
        print(json.dumps(out), flush=True)

def hold(n, name, port, secs):
    held = []
    for _ in range(int(n)):
        s = socket.create_connection((name, int(port)), timeout=5)
        held.append(ctx().wrap_socket(s, server_hostname=name))
    print(json.dumps({'held': len(held)}), flush=True)
    time.sleep(float(secs))

{'setup': setup, 'dns': dns, 'raw': raw, 'hold': hold, 'serve': serve}[sys.argv[1]](*sys.argv[2:])
