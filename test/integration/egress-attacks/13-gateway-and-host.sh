# expect: refused
# control: reaches
# A service on the host, through the sandbox's gateway and through another host address.
python3 "$CLIENT" connect gw "$HOST_PORT" | grep -q '"ok": true' && echo "REACHED the gateway:$HOST_PORT"
python3 "$CLIENT" connect "$HOST_ADDR" "$HOST_PORT" | grep -q '"ok": true' && echo "REACHED $HOST_ADDR:$HOST_PORT"
true
