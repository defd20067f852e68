# expect: refused
# control: reaches
# Spellings of the denied name: upper case, a trailing dot, and the allowed name as a prefix label.
import json, os, subprocess
d = os.environ['DENIED']
for n in (d.upper(), d + '.', 'allowed.test.' + d):
    r = json.loads(subprocess.run(['python3', os.environ['CLIENT'], 'dns', n.rstrip('.') if n.endswith('.') else n], capture_output=True, text=True).stdout)
    if r.get('a'): print('REACHED', n, r['a'])
