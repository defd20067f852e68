# expect: refused
# control: reaches
# DNS over TLS: port 853 of the upstream server.
python3 "$CLIENT" connect "$DNS_UPSTREAM" 853 | grep -q '"ok": true' && echo "REACHED $DNS_UPSTREAM:853"
true
