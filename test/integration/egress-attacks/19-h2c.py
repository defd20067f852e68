# expect: refused
# control: reaches
# HTTP/2 prior knowledge in clear text to the allowed name: the relay could not read its :authority.
import json, os, subprocess
r = json.loads(subprocess.run(['python3', os.environ['CLIENT'], 'h2c', 'allowed.test', '80'], capture_output=True, text=True).stdout)
if r.get('ok'): print('REACHED h2c', r)
