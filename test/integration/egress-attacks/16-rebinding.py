# expect: refused
# control: reaches
# Names the upstream answers with loopback or the metadata address; the policy does not even allow
# them, and a name that is allowed cannot be used this way either (egress.test.ts case 11).
import json, os, subprocess
for n in ('rebind-lo.test', 'rebind-md.test'):
    r = json.loads(subprocess.run(['python3', os.environ['CLIENT'], 'dns', n], capture_output=True, text=True).stdout)
    if r.get('a'): print('REACHED', n, r['a'])
