# expect: refused
# control: reaches
# TLS to the allowed name's address, with the denied name as SNI (the CDN case).
python3 "$CLIENT" dns allowed.test >/dev/null
curl -sS --max-time 5 --cacert "$CA" --resolve "$DENIED:443:$WEB" "https://$DENIED/" 2>/dev/null | grep -q hello && echo "REACHED https://$DENIED via $WEB"
true
