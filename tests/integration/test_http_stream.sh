#!/usr/bin/env bash
# The streamed answers of loket-http with a real loketd: the change feed
# as server-sent events (each write an event within 100 ms, its id the
# cursor after it, Last-Event-ID resuming exactly, heartbeats, the end
# after stream_max, a closed client let go of at once, filters, a restart
# of loketd in the middle, a rebuild ending the stream with an error) and
# a collection as JSON Lines, the same bytes as `loket export`.
. "$(dirname "$0")/http_lib.sh"

# timeout 2: a quiet stream sends a comment every second.
HTTP_CONF="client_connections = 4"
http_node "$T/a" a
U="http://127.0.0.1:$HTTP_PORT"

python3 "$PROBE" "$HTTP_PORT" "$READ" sse-follow "$WRITE" "$LOKET" "$T/a/loket.conf" ||
	fail "following the feed as events"
python3 "$PROBE" "$HTTP_PORT" "$READ" sse-gone 4 || fail "streams whose client left"

# A second loket-http on the same node whose streams last 2 s.
sed "s/^listen = 127.0.0.1:$HTTP_PORT\$/listen = 127.0.0.1:$(free_port)/" "$T/a/loket.conf" >"$T/a/short.conf"
printf 'stream_max = 2\n' >>"$T/a/short.conf"
SHORT_PORT=$(sed -n 's/^listen = 127.0.0.1:\([0-9]*\)$/\1/p' "$T/a/short.conf" | tail -n 1)
"$LOKET_HTTP" -c "$T/a/short.conf" 2>>"$T/a/short.log" &
NODE_PID[short]=$! # so that cleanup stops it too
wait_for "the second loket-http" 10 curl -sf "http://127.0.0.1:$SHORT_PORT/v1/openapi.json"
python3 "$PROBE" "$SHORT_PORT" "$READ" sse-quiet 1000 2 || fail "a quiet stream"

# sse NAME QUERY [CURL ARGS]: a stream in the background into $T/NAME.sse (its pid in SSE_PID).
sse() {
	local name=$1 query=$2
	shift 2
	curl -sN --max-time 60 -H "Authorization: Bearer $READ" -H "Accept: text/event-stream" "$@" \
		"$U/v1/changes?$query" >"$T/$name.sse" 2>&1 &
	SSE_PID=$!
	wait_for "the stream $name to open" 5 grep -q '^: ' "$T/$name.sse"
}
# ids NAME: the ids of the entities of the stream's events so far, on one line.
ids() {
	sed -n 's/^data: //p' "$T/$1.sse" | jq -r .id | tr '\n' ' ' | sed 's/ $//'
}
# end_cursor: the cursor after everything the feed holds.
end_cursor() {
	local c=""
	while :; do
		expect_http 200 GET "/v1/changes?limit=1000${c:+&since=$c}" "$READ"
		c=$(jqb .cursor)
		[ "$(jqb .more)" = true ] || break
	done
	echo "$c"
}

# Filters, as the JSON feed's.
C=$(end_cursor)
sse orgs "since=$C&coll=org"
sse experts "since=$C&coll=expert&owner=a"
expect_http 200 PUT /v1/entities/expert/f1 "$WRITE" '{"name":"F1"}'
expect_http 200 PUT /v1/entities/org/o1 "$WRITE" '{"name":"O1"}'
expect_http 200 PUT /v1/entities/expert/f2 "$WRITE" '{"name":"F2"}'
expect_http 200 PUT /v1/entities/org/o2 "$WRITE" '{"name":"O2"}'
wait_for "o2 in the org stream" 5 grep -q '"id":"o2"' "$T/orgs.sse"
wait_for "f2 in the expert stream" 5 grep -q '"id":"f2"' "$T/experts.sse"
assert_eq "o1 o2" "$(ids orgs)" "events of coll=org"
assert_eq "f1 f2" "$(ids experts)" "events of coll=expert&owner=a"
kill "$SSE_PID" 2>/dev/null || true

# Refused before the stream starts, with the JSON error of the feed.
sse_status() { # QUERY [CURL ARGS]: sets CODE and BODY
	local query=$1
	shift
	BODY=$(curl -s --max-time 5 -w '\n%{http_code}' -H "Authorization: Bearer $READ" \
		-H "Accept: text/event-stream" "$@" "$U/v1/changes?$query") || true
	CODE=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}
sse_status "wait=5"
assert_eq 400 "$CODE" "a stream with wait"
assert_contains "$(jqb .error.message)" "do not apply to text/event-stream"
sse_status "owner=nobody"
assert_eq 404 "$CODE" "a stream of an unknown owner"
sse_status "since=garbage"
assert_eq 400 "$CODE" "a stream from a malformed cursor"
sse_status "" -H "Last-Event-ID: garbage"
assert_eq 400 "$CODE" "a stream from a malformed Last-Event-ID"

# Across a restart of loketd: the stream waits for it and goes on, losing
# and repeating nothing.
C=$(end_cursor)
sse restart "since=$C"
expect_http 200 PUT /v1/entities/expert/r1 "$WRITE" '{"name":"R1"}'
wait_for "r1 in the stream" 5 grep -q '"id":"r1"' "$T/restart.sse"
stop_node "$T/a"
start_node "$T/a"
loket_in "$T/a" put expert r2 --json '{"name":"R2"}' >/dev/null
expect_http 200 PUT /v1/entities/expert/r3 "$WRITE" '{"name":"R3"}'
wait_for "r3 in the stream" 10 grep -q '"id":"r3"' "$T/restart.sse"
assert_eq "r1 r2 r3" "$(ids restart)" "events across a restart of loketd"
kill -0 "$SSE_PID" || fail "the stream ended with the restart"

# A rebuild renumbers the feed: the open stream ends with an error event.
loket_in "$T/a" rebuild >/dev/null
wait_for "the stream to end after the rebuild" 5 sh -c "! kill -0 $SSE_PID"
grep -q '^event: error$' "$T/restart.sse" || fail "no error event after the rebuild"
assert_eq GONE "$(sed -n '/^event: error$/{n;s/^data: //p}' "$T/restart.sse" | jq -r .error.name)" \
	"the error event's code"
LAST=$(grep '^id: ' "$T/restart.sse" | tail -n 1 | cut -c5-)
sse_status "" -H "Last-Event-ID: $LAST"
assert_eq 410 "$CODE" "a stream from an id of before the rebuild"

# JSON Lines: three pages of experts, the same bytes as loket export.
for i in $(seq 1 2500); do
	printf '{"coll":"expert","id":"n%04d","fields":{"name":"N %d","topics":["t%d"],"w":%d.5}}\n' \
		"$i" "$i" $((i % 7)) "$i"
done >"$T/experts.jsonl"
expect_http 200 POST /v1/bulk "$WRITE" "@$T/experts.jsonl"
loket_in "$T/a" export expert >"$T/export.jsonl"
ndjson() { # QUERY: the list of experts as JSON Lines into $T/nd.jsonl; CODE
	CODE=$(curl -s -o "$T/nd.jsonl" -w '%{http_code} %{content_type}' -H "Authorization: Bearer $READ" \
		-H "Accept: application/x-ndjson" "$U/v1/entities/expert$1")
}
ndjson ""
assert_eq "200 application/x-ndjson" "$CODE" "the list as JSON Lines"
cmp -s "$T/nd.jsonl" "$T/export.jsonl" || fail "the JSON Lines differ from loket export's"
[ "$(wc -l <"$T/nd.jsonl")" -ge 2500 ] || fail "the JSON Lines have $(wc -l <"$T/nd.jsonl") lines"
grep -c '"id":"n' "$T/nd.jsonl" | grep -qx 2500 || fail "not every expert is in the JSON Lines"
ndjson "?owner=a"
cmp -s "$T/nd.jsonl" "$T/export.jsonl" || fail "the JSON Lines of owner a differ"
expect_http 200 GET "/v1/entities/expert?limit=1000" "$READ"
NEXT=$(jqb .next)
ndjson "?after=$NEXT"
cmp -s "$T/nd.jsonl" <(tail -n +1001 "$T/export.jsonl") || fail "the JSON Lines after a cursor"
ndjson "?limit=5"
assert_eq 400 "${CODE%% *}" "JSON Lines with a limit"
ndjson "?owner=nobody"
assert_eq 404 "${CODE%% *}" "JSON Lines of an unknown owner"
pass
