# expect: refused
# control: reaches
# A first request for the allowed Host, then one for the denied Host on the same connection.
import json, os, subprocess
r = json.loads(subprocess.run(['python3', os.environ['CLIENT'], 'http', 'allowed.test', '80', 'allowed.test', os.environ['DENIED']], capture_output=True, text=True).stdout)
if len(r.get('got', [])) > 1 and 'hello' in r['got'][1]: print('REACHED', r)
