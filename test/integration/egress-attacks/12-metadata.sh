# expect: refused
# control: reaches
# The cloud metadata address (a fake one the fixture routes for this sandbox only).
curl -sS --max-time 5 http://169.254.169.254/ 2>/dev/null | grep -q metadata && echo "REACHED the metadata service"
python3 "$CLIENT" connect 169.254.169.254 80 | grep -q '"ok": true' && echo "REACHED 169.254.169.254:80"
true
