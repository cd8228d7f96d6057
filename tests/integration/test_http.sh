#!/usr/bin/env bash
# loket-http with a real loketd over real HTTP (curl): every endpoint's
# happy path and its errors, tokens and scopes, the exact report of a bulk
# write with a bad line in the middle, and bounds: oversize bodies and
# headers, malformed HTTP and slow clients are refused and the node goes on.
. "$(dirname "$0")/http_lib.sh"

http_node "$T/a" a

# Without a token, with an unknown one: 401; the log names no secret.
expect_http 401 GET /v1/status ""
assert_eq DENIED "$(jqb .error.name)" "name of a refusal"
assert_eq -9975 "$(jqb .error.code)" "code of a refusal"
expect_http 401 GET /v1/status "not-a-token"
grep -q "unknown token" "$T/a/http.log" || fail "an unknown token was not logged"
! grep -qF "$WRITE" "$T/a/http.log" || fail "a token leaked into the log"

# Status, peers, openapi.
expect_http 200 GET /v1/status "$READ"
assert_eq a "$(jqb .name)" "status name"
expect_http 200 GET /v1/peers "$READ"
expect_http 200 GET /v1/openapi.json ""
assert_eq 3 "$(jqb '.openapi[0:1]')" "openapi version"

# Put, get, list, delete.
expect_http 200 PUT /v1/entities/expert/ada "$WRITE" '{"name":"Ada Lovelace","topics":["math"]}'
assert_eq 1 "$(jqb .changed)" "put changed"
expect_http 200 PUT /v1/entities/expert/ada "$WEXPERT" '{"name":"Ada Lovelace","topics":["math"]}'
assert_eq 1 "$(jqb .unchanged)" "the same put again"
expect_http 200 GET /v1/entities/expert/a/ada "$READ"
assert_eq "Ada Lovelace" "$(jqb .fields.name)" "get"
expect_http 404 GET /v1/entities/expert/a/nobody "$READ"
assert_eq NOT_FOUND "$(jqb .error.name)" "get of nothing"
expect_http 404 GET /v1/entities/expert/nomember/ada "$READ"
expect_http 400 GET '/v1/entities/Bad!/a/ada' "$READ"
expect_http 200 GET /v1/entities/expert "$READ"
assert_eq ada "$(jqb '.entities[0].id')" "list"
assert_eq null "$(jqb .next)" "list of one page"
expect_http 400 GET '/v1/entities/expert?limit=0' "$READ"
expect_http 400 GET '/v1/entities/expert?after=!!!' "$READ"
expect_http 400 GET '/v1/entities/expert?bogus=1' "$READ"
assert_contains "$(jqb .error.message)" 'unknown query parameter "bogus"'

# Scopes: read may not write; write:expert may write experts only.
expect_http 403 PUT /v1/entities/expert/bob "$READ" '{"name":"Bob"}'
expect_http 403 PUT /v1/entities/org/x "$WEXPERT" '{"name":"X"}'
assert_contains "$(jqb .error.message)" "token experts (scope write:expert) may not write collection org"
grep -q "token experts (scope write:expert) may not write org" "$T/a/http.log" ||
	fail "a refused scope was not logged with the token's name"
expect_http 403 POST /v1/bulk "$READ" '{"coll":"expert","id":"x","fields":{"name":"X"}}'

# Validation as the CLI's: bad JSON, empty fields, bad id, schema.
expect_http 400 PUT /v1/entities/expert/bob "$WRITE" '{"name":'
assert_eq MALFORMED "$(jqb .error.name)" "bad JSON"
expect_http 400 PUT /v1/entities/expert/bob "$WRITE" '{}'
assert_contains "$(jqb .error.message)" "fields object is empty"
expect_http 400 PUT '/v1/entities/expert/b%20b' "$WRITE" '{"name":"B"}'
expect_http 400 PUT /v1/entities/expert/bob "$WRITE" '{"name":"B","name":"C"}'
expect_http 405 POST /v1/entities/expert/bob "$WRITE" '{"name":"B"}'
expect_http 404 GET /v1/nothing "$READ"
expect_http 404 GET /v2/status "$READ"

# Oversize: a PUT body over 1 MiB is 413 before it is read; so is a body where none is taken.
head -c 1100000 /dev/zero | tr '\0' 'a' | sed 's/^/{"name":"/; s/$/"}/' >"$T/big.json"
expect_http 413 PUT /v1/entities/expert/big "$WRITE" "@$T/big.json"
assert_eq TOO_BIG "$(jqb .error.name)" "oversize body"
expect_http 413 GET /v1/status "$READ" 'a body'

# Delete.
expect_http 200 DELETE /v1/entities/expert/ada "$WRITE"
assert_eq 1 "$(jqb .changed)" "delete"
expect_http 404 GET /v1/entities/expert/a/ada "$READ"

# Bulk: five good lines, a bad one at line 6, more behind it: exactly 1-5 applied.
{
	for i in 1 2 3 4 5; do printf '{"coll":"expert","id":"b%d","fields":{"name":"B %d"}}\n' $i $i; done
	printf '{"coll":"expert","id":"b6","fields":{}}\n'
	for i in 7 8; do printf '{"coll":"expert","id":"b%d","fields":{"name":"B %d"}}\n' $i $i; done
} >"$T/bulk.jsonl"
expect_http 400 POST /v1/bulk "$WRITE" "@$T/bulk.jsonl"
assert_eq 5 "$(jqb .applied_through)" "bulk applied through"
assert_eq 6 "$(jqb .error.line)" "bulk error line"
assert_eq 5 "$(jqb .changed)" "bulk changed"
assert_contains "$(jqb .report)" "applied lines 1-5 (5 changed, 0 unchanged); fix line 6"
expect_http 200 GET /v1/entities/expert/a/b5 "$READ"
expect_http 404 GET /v1/entities/expert/a/b7 "$READ"
# The same file through `loket import` says the same.
expect_status 1 loket_in "$T/a" import "$T/bulk.jsonl"
assert_contains "$ERR" "applied lines 1-5 (0 changed, 5 unchanged)"
# Fixed, the rest is applied and the report counts what changed.
sed -i '6s/.*/{"coll":"expert","id":"b6","fields":{"name":"B 6"}}/' "$T/bulk.jsonl"
expect_http 200 POST /v1/bulk "$WRITE" "@$T/bulk.jsonl"
assert_eq 8 "$(jqb .applied_through)" "bulk after the fix"
assert_eq 3 "$(jqb .changed)" "bulk after the fix changed"
# A line of a collection the token may not write stops the bulk there.
printf '{"coll":"expert","id":"c1","fields":{"name":"C"}}\n{"coll":"org","id":"o1","fields":{"name":"O"}}\n' >"$T/scope.jsonl"
expect_http 403 POST /v1/bulk "$WEXPERT" "@$T/scope.jsonl"
assert_eq 1 "$(jqb .applied_through)" "bulk stopped by scope"
assert_eq 2 "$(jqb .error.line)" "bulk scope line"
# A line over 1 MiB.
{ printf '{"coll":"expert","id":"d1","fields":{"name":"D"}}\n'; head -c 1100000 /dev/zero | tr '\0' 'a'; echo; } >"$T/long.jsonl"
expect_http 413 POST /v1/bulk "$WRITE" "@$T/long.jsonl"
assert_eq 1 "$(jqb .applied_through)" "bulk with a long line"
# A bad op the daemon refuses (schema) names its line.
printf '{"coll":"expert","id":"e1","fields":{"name":"E"}}\n{"coll":"question","id":"q1","fields":{"status":"nonsense","title":"Q"}}\n' >"$T/schema.jsonl"
expect_http 400 POST /v1/bulk "$WRITE" "@$T/schema.jsonl"
assert_eq 2 "$(jqb .error.line)" "bulk line the daemon refused"
assert_eq 0 "$(jqb .applied_through)" "a refused batch applied nothing"
expect_http 404 GET /v1/entities/expert/a/e1 "$READ"

# Search, board, show, match.
expect_http 200 PUT /v1/entities/question/q1 "$WRITE" '{"title":"Bodemonderzoek in de Merenwijk","topics":["soil"],"kind":"research"}'
expect_http 200 PUT /v1/entities/expert/soil1 "$WRITE" '{"name":"Sanne","topics":["soil"]}'
expect_http 200 GET '/v1/search?q=merenwijk' "$READ"
assert_eq q1 "$(jqb '.[0].id')" "search"
expect_http 400 GET /v1/search "$READ"
expect_http 200 GET '/v1/board?status=open' "$READ"
assert_eq a/q1 "$(jqb '.[0].ref')" "board"
expect_http 400 GET '/v1/board?status=bogus' "$READ"
expect_http 200 GET /v1/show/question/a/q1 "$READ"
assert_eq q1 "$(jqb .id)" "show"
expect_http 404 GET /v1/show/question/a/nope "$READ"
expect_http 200 GET '/v1/match/a/q1?limit=5' "$READ"
assert_eq soil1 "$(jqb '.[0].id')" "match"
expect_http 404 GET /v1/match/a/nope "$READ"

# Malformed HTTP and slow clients: refused, dropped, and the node answers.
python3 "$PROBE" "$HTTP_PORT" "$WRITE" malformed || fail "malformed HTTP"
python3 "$PROBE" "$HTTP_PORT" "$READ" slow 10 2 || fail "slow clients"
loket_in "$T/a" status >/dev/null || fail "loketd does not answer after the HTTP abuse"

# loketd down: 503, and back once it is up again.
stop_node "$T/a"
expect_http 503 GET /v1/status "$READ"
assert_eq UNAVAILABLE "$(jqb .error.name)" "loketd down"
start_node "$T/a"
wait_for "loket-http to reach loketd again" 10 curl -sf -H "Authorization: Bearer $READ" \
	"http://127.0.0.1:$HTTP_PORT/v1/status"
pass
