# expect: refused
# control: reaches
# The denied SNI in a ClientHello cut across two TLS records and two TCP segments.
python3 "$CLIENT" dns allowed.test >/dev/null
python3 "$CLIENT" tls-split "$WEB" 443 "$DENIED" | grep -q '"ok": true' && echo "REACHED split ClientHello for $DENIED"
true
