# expect: refused
# control: reaches
# CONNECT through the allowed name's port 80, to the denied name (a relayed tunnel).
import json, os, subprocess
r = json.loads(subprocess.run(['python3', os.environ['CLIENT'], 'connect-proxy', 'allowed.test', '80', os.environ['DENIED'] + ':443'], capture_output=True, text=True).stdout)
if r.get('ok'): print('REACHED', r)
