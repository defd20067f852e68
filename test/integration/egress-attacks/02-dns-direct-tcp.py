# expect: refused
# control: reaches
# The same over TCP.
import json, os, subprocess
r = json.loads(subprocess.run(['python3', os.environ['CLIENT'], 'dns', os.environ['DENIED'], '1', os.environ['DNS_UPSTREAM'], 'tcp'], capture_output=True, text=True).stdout)
if r.get('ok'): print('REACHED', r)
