#!/usr/bin/env bash
# Paging and the change feed over HTTP with a real loketd: pages of 3,000
# entities (not 100,000, to keep the suite fast) while another client
# writes give every entity exactly once; the feed across a restart of
# loketd loses and repeats nothing; a long poll wakes within 100 ms of a
# write; a cursor from before `loket rebuild` is 410 Gone; `loket changes`
# gives the same feed.
. "$(dirname "$0")/http_lib.sh"

http_node "$T/a" a
N=3000

for i in $(seq 0 $((N - 1))); do
	printf '{"coll":"expert","id":"e%05d","fields":{"name":"E %d"}}\n' "$i" "$i"
done >"$T/experts.jsonl"
expect_http 200 POST /v1/bulk "$WRITE" "@$T/experts.jsonl"
assert_eq $N "$(jqb .changed)" "bulk of $N"

python3 "$PROBE" "$HTTP_PORT" "$READ" page-while-writing "$WRITE" expert $N || fail "paging while writing"

# The whole feed, page by page; every entity appears once, in ver order.
# feed SINCE: prints the ids of the changes after SINCE ("" for all), one a line; CURSOR is set.
feed() {
	local since=$1 q
	CURSOR=$since
	: >"$T/feed.ids"
	while :; do
		q="/v1/changes?limit=1000"
		[ -z "$CURSOR" ] || q="$q&since=$CURSOR"
		expect_http 200 GET "$q" "$READ"
		jqb '.changes[] | .coll + "/" + .id + (if .deleted then " deleted" else "" end)' >>"$T/feed.ids"
		CURSOR=$(jqb .cursor)
		[ "$(jqb .more)" = true ] || break
	done
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

# Long poll.
python3 "$PROBE" "$HTTP_PORT" "$READ" longpoll "$WRITE" 5 || fail "long poll"

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
pass
