# expect: refused
# control: reaches
# Plain HTTP to the allowed name with the denied name as Host.
curl -sS --max-time 5 -H "Host: $DENIED" http://allowed.test/ 2>/dev/null | grep -q hello && echo "REACHED Host: $DENIED"
true
