# expect: refused
# control: reaches
# UDP to the allowed name's address on 443 (QUIC), and to the UDP echo no rule names.
import json, os, subprocess
subprocess.run(['python3', os.environ['CLIENT'], 'dns', 'allowed.test'], capture_output=True)
for addr, port in ((os.environ['WEB'], '443'), (os.environ['UDP'], '7')):
    r = json.loads(subprocess.run(['python3', os.environ['CLIENT'], 'udp', addr, port], capture_output=True, text=True).stdout)
    if r.get('ok'): print('REACHED udp', addr, port)
