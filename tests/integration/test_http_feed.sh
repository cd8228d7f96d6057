#!/usr/bin/env bash
# Paging and the change feed over HTTP with a real loketd: pages over
# 100,000 entities while another client writes give every entity exactly
# once; the same collection as JSON Lines streams in a page's memory; the
# feed across a restart of loketd loses and repeats nothing; a long poll
# wakes within 100 ms of a write (measured, through HTTP and through loket
# put) and does not hold loket-http's stop; a cursor from before `loket
# rebuild` is 410 Gone; `loket changes [--follow]` gives the same feed.
. "$(dirname "$0")/http_lib.sh"

# The writer and the pages go as fast as they can; log_level debug says when a long poll waits.
HTTP_CONF=$'rate = 100000\nburst = 100000'
NODE_CONF="log_level = debug"
http_node "$T/a" a
N=100000

awk -v n=$N 'BEGIN { for (i = 0; i < n; i++)
	printf "{\"coll\":\"expert\",\"id\":\"e%05d\",\"fields\":{\"name\":\"E %d\"}}\n", i, i }' \
	>"$T/experts.jsonl"
loket_in "$T/a" import "$T/experts.jsonl" >/dev/null # (bulk writes over HTTP: test_http.sh)

python3 "$PROBE" "$HTTP_PORT" "$READ" page-while-writing "$WRITE" expert $N || fail "paging while writing"

# All of it as JSON Lines, in the memory of a page (AddressSanitizer keeps freed memory: not there).
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$HTTP_PID/status"; }
before=$(hwm)
lines=$(curl -sf -H "Authorization: Bearer $READ" -H "Accept: application/x-ndjson" \
	"http://127.0.0.1:$HTTP_PORT/v1/entities/expert" | wc -l)
[ "$lines" -ge $N ] || fail "the JSON Lines of the experts have $lines lines, fewer than $N"
if ! sanitized "$LOKET_HTTP"; then
	echo "loket-http's peak RSS: $before KiB before $lines lines of JSON Lines, $(hwm) KiB after"
	[ $(($(hwm) - before)) -lt 4096 ] || fail "the JSON Lines took $(($(hwm) - before)) KiB more"
fi

# The whole feed, page by page; every entity appears once, in ver order.
# feed SINCE: the changes after SINCE ("" for all) into $T/feed.ids, one a line; CURSOR is set.
feed() {
	CURSOR=$(python3 "$PROBE" "$HTTP_PORT" "$READ" feed "$1" "$T/feed.ids") || fail "reading the feed"
}
feed ""
total=$(wc -l <"$T/feed.ids")
dups=$(sort "$T/feed.ids" | uniq -d | wc -l)
assert_eq 0 "$dups" "entities repeated in the feed"
[ "$total" -ge $N ] || fail "the feed has $total changes, fewer than $N entities"
C1=$CURSOR

# Changes after C1, across a restart of loketd: exactly those, once each.
expect_http 200 PUT /v1/entities/expert/r1 "$WRITE" '{"name":"R1"}'
expect_http 200 DELETE /v1/entities/expert/e00001 "$WRITE"
stop_node "$T/a"
start_node "$T/a"
wait_for "loket-http to reach loketd again" 10 curl -sf -H "Authorization: Bearer $READ" \
	"http://127.0.0.1:$HTTP_PORT/v1/status"
expect_http 200 PUT /v1/entities/expert/r2 "$WRITE" '{"name":"R2"}'
expect_http 200 PUT /v1/entities/org/o1 "$WRITE" '{"name":"O1"}'
feed "$C1"
assert_eq "expert/r1
expert/e00001 deleted
expert/r2
org/o1" "$(cat "$T/feed.ids")" "the feed after the cursor, across a restart"
C2=$CURSOR
feed "$C2"
assert_eq "" "$(cat "$T/feed.ids")" "the feed after its last cursor"

# Filters.
expect_http 200 GET "/v1/changes?since=$C1&coll=org" "$READ"
assert_eq "o1" "$(jqb '[.changes[].id] | join(",")')" "coll filter"
expect_http 200 GET "/v1/changes?since=$C1&owner=a&coll=expert&limit=1" "$READ"
assert_eq "r1" "$(jqb '[.changes[].id] | join(",")')" "owner filter with limit"
assert_eq true "$(jqb .more)" "more after a limit"
expect_http 404 GET "/v1/changes?owner=nobody" "$READ"
expect_http 400 GET "/v1/changes?since=garbage" "$READ"
expect_http 400 GET "/v1/changes?wait=61" "$READ"

# The CLI's feed is the same one.
loket_in "$T/a" changes --since "$C1" >"$T/cli.jsonl" 2>"$T/cli.err"
assert_eq "r1 e00001 r2 o1" "$(jq -r .id "$T/cli.jsonl" | tr '\n' ' ' | sed 's/ $//')" "loket changes"
assert_eq "cursor $C2" "$(cat "$T/cli.err")" "loket changes cursor"

# --follow goes on printing changes as they come.
"$LOKET" -c "$T/a/loket.conf" changes --since "$C2" --follow >"$T/follow.jsonl" 2>"$T/follow.err" &
FOLLOW=$!
expect_http 200 PUT /v1/entities/expert/f1 "$WRITE" '{"name":"F1"}'
wait_for "loket changes --follow to print f1" 5 grep -q '"id":"f1"' "$T/follow.jsonl"
loket_in "$T/a" put expert f2 --json '{"name":"F2"}' >/dev/null
wait_for "loket changes --follow to print f2" 5 grep -q '"id":"f2"' "$T/follow.jsonl"
kill "$FOLLOW"
wait "$FOLLOW" 2>/dev/null || true
assert_eq "f1 f2" "$(jq -r .id "$T/follow.jsonl" | tr '\n' ' ' | sed 's/ $//')" "loket changes --follow"

# Long poll: woken within 100 ms of each write, through HTTP and through loket put.
python3 "$PROBE" "$HTTP_PORT" "$READ" longpoll "$WRITE" 6 "$T/a/http.log" "$LOKET" "$T/a/loket.conf" ||
	fail "long poll"

# A rebuild renumbers the feed: an older cursor is 410, a new one works.
loket_in "$T/a" rebuild >/dev/null
expect_http 410 GET "/v1/changes?since=$C2" "$READ"
assert_eq GONE "$(jqb .error.name)" "cursor from before a rebuild"
assert_contains "$(jqb .error.message)" "re-read everything with the list"
expect_status 1 loket_in "$T/a" changes --since "$C2"
assert_contains "$ERR" "rebuilt since"
feed ""
feed "$CURSOR"
assert_eq "" "$(cat "$T/feed.ids")" "the feed after a rebuild, from its new cursor"

# A long poll in progress does not hold loket-http's stop.
curl -s -H "Authorization: Bearer $READ" "http://127.0.0.1:$HTTP_PORT/v1/changes?since=$CURSOR&wait=60" \
	>"$T/poll.out" 2>&1 &
POLL=$!
wait_for "the long poll to wait" 5 grep -q "a long poll waits for changes after $CURSOR" "$T/a/http.log"
started=$(date +%s%N)
kill -TERM "$HTTP_PID"
status=0
wait "$HTTP_PID" || status=$?
HTTP_PID=""
took=$((($(date +%s%N) - started) / 1000000))
assert_eq 0 "$status" "loket-http's exit on SIGTERM"
[ "$took" -lt 2000 ] || fail "loket-http took $took ms to stop beside a long poll"
wait "$POLL" 2>/dev/null || true
echo "loket-http stopped in $took ms beside a long poll"
pass
