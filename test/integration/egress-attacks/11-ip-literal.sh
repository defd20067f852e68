# expect: refused
# control: reaches
# The shared address by IP, before and after the allowed name was looked up; and a port no rule names.
curl -sS -k --max-time 5 "https://$WEB/" 2>/dev/null | grep -q hello && echo "REACHED https://$WEB before a lookup"
python3 "$CLIENT" dns allowed.test >/dev/null
curl -sS -k --max-time 5 "https://$WEB/" 2>/dev/null | grep -q hello && echo "REACHED https://$WEB"
curl -sS --max-time 5 "http://$WEB/" 2>/dev/null | grep -q hello && echo "REACHED http://$WEB"
python3 "$CLIENT" raw allowed.test 9000 1000 | grep -q '"ok": true' && echo "REACHED allowed.test:9000"
true
