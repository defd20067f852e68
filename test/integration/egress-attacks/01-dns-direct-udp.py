# expect: refused
# control: reaches
# A lookup of a denied name sent straight to the upstream server, over UDP, around the resolver.
import json, os, subprocess
r = json.loads(subprocess.run(['python3', os.environ['CLIENT'], 'dns', os.environ['DENIED'], '1', os.environ['DNS_UPSTREAM']], capture_output=True, text=True).stdout)
if r.get('ok'): print('REACHED', r)
