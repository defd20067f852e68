# expect: allowed
# The policy's own allowed name works over HTTPS and HTTP: the runner's baseline.
curl -sS --max-time 5 --cacert "$CA" https://allowed.test/ | grep -q 'hello allowed.test' && curl -sS --max-time 5 http://allowed.test/ | grep -q 'hello allowed.test' && echo OK
