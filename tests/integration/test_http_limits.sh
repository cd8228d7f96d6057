#!/usr/bin/env bash
# The bounds loket-http puts on each client, with a real loketd and real
# HTTP from several loopback addresses: a slowloris (a byte a second, never
# silent for the idle timeout) is cut at the request deadline while another
# client is served; a burst beyond the rate gets 429 with Retry-After, by
# token and, without one, by address; the connection caps per address and
# in all hold; and the node answers after it all.
. "$(dirname "$0")/http_lib.sh"

# timeout 2: the idle timeout and the request deadline.
HTTP_CONF=$'rate = 5\nburst = 10\nconnections = 6\nclient_connections = 3'
http_node "$T/a" a

python3 "$PROBE" "$HTTP_PORT" "$READ" slowloris 3 2 || fail "slowloris"
grep -q "did not arrive within 2 s" "$T/a/http.log" || fail "the cut slow clients were not logged"

python3 "$PROBE" "$HTTP_PORT" "$WEXPERT" burst 10 "$WRITE" || fail "rate"
grep -q "token experts is over its rate" "$T/a/http.log" || fail "a client over its rate was not logged"

python3 "$PROBE" "$HTTP_PORT" "$READ" client-cap 3 || fail "connections per address"
python3 "$PROBE" "$HTTP_PORT" "$READ" total-cap 6 3 || fail "connections in all"

expect_http 200 GET /v1/status "$READ"
loket_in "$T/a" status >/dev/null || fail "loketd does not answer after the abuse"
pass
