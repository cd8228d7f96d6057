# loket import: counts, batches, idempotence, and what a failure says: a
# bad line stops the import after everything before it was applied, a
# batch the daemon refuses is applied not at all, and re-running after the
# fix completes the rest.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || fail "jq is needed"

init_node "$T/a" uni
start_node "$T/a"
l() { loket_in "$T/a" "$@"; }
count() { l status --json | jq -r ".counts.$1 // 0"; }

# 9000 experts, a blank line, a delete of an expert put before: two
# batches of at most 8000 ops, in three changesets (sealed at 256 KiB).
expect_status 0 l put expert old --json '{"name":"Retired"}'
awk 'BEGIN {
	for (i = 1; i <= 9000; i++)
		printf "{\"coll\":\"expert\",\"id\":\"e%d\",\"fields\":{\"name\":\"Expert %d\",\"n\":%d}}\n", i, i, i
	print ""
	print "{\"coll\":\"expert\",\"id\":\"old\",\"del\":true}"
}' >"$T/experts.jsonl"
expect_status 0 l import "$T/experts.jsonl"
assert_eq "$T/experts.jsonl: 9002 lines, 9001 changed, 0 unchanged, 3 changesets" "$OUT" "first import"
assert_eq 9000 "$(count expert)" "experts after the import"
expect_status 1 l get expert old

# Again: nothing changes, no changeset is written.
head_before=$(l status --json | jq -r .heads.uni.seq)
expect_status 0 l import "$T/experts.jsonl"
assert_eq "$T/experts.jsonl: 9002 lines, 0 changed, 9001 unchanged, 0 changesets" "$OUT" "re-import"
assert_eq "$head_before" "$(l status --json | jq -r .heads.uni.seq)" "head after re-import"

# From standard input.
printf '{"coll":"org","id":"naturalis","fields":{"name":"Naturalis"}}\n' >"$T/stdin.jsonl"
expect_status 0 l import - <"$T/stdin.jsonl"
assert_eq "stdin: 1 lines, 1 changed, 0 unchanged, 1 changesets" "$OUT" "import from stdin"

# A bad line 3: lines 1-2 are applied, line 4 is not.
cat >"$T/bad.jsonl" <<'JSONL'
{"coll":"project","id":"p1","fields":{"name":"Kennisstad"}}
{"coll":"project","id":"p2","fields":{"name":"Bio Science Park"}}
{"coll":"project","id":"p3","fields":{"name":"City of Science"}
{"coll":"project","id":"p4","fields":{"name":"LUMC campus"}}
JSONL
expect_status 1 l import "$T/bad.jsonl"
assert_contains "$ERR" "$T/bad.jsonl:3: invalid JSON"
assert_contains "$ERR" "applied lines 1-2 (2 changed, 0 unchanged); fix line 3 and run the import again"
assert_eq "" "$OUT" "no summary after a bad line"
expect_status 0 l get project p2
expect_status 1 l get project p4
assert_eq 2 "$(count project)" "projects applied before the bad line"

# Fixed, the re-run completes the rest.
sed -i '3s/}$/}}/' "$T/bad.jsonl"
expect_status 0 l import "$T/bad.jsonl"
assert_eq "$T/bad.jsonl: 4 lines, 2 changed, 2 unchanged, 1 changesets" "$OUT" "import after the fix"
assert_eq 4 "$(count project)" "projects after the fix"

# Each kind of bad op names its line and the reason.
check_bad() { # CONTENT REASON
	printf '%s\n' "$1" >"$T/one.jsonl"
	expect_status 1 l import "$T/one.jsonl"
	assert_contains "$ERR" "$T/one.jsonl:1: $2"
	assert_contains "$ERR" "nothing applied; fix line 1"
}
check_bad '{"coll":"expert","id":"x","fields":{"a":1},"extra":1}' 'unknown key "extra"'
check_bad '{"id":"x","fields":{"a":1}}' 'missing "coll"'
check_bad '{"coll":"expert","fields":{"a":1}}' 'missing "id"'
check_bad '{"coll":"expert","id":"x"}' 'missing "fields"'
check_bad '{"coll":"Expert","id":"x","fields":{"a":1}}' 'invalid collection "Expert"'
check_bad '{"coll":"expert","id":"a b","fields":{"a":1}}' 'invalid id "a b"'
check_bad '{"coll":"expert","id":"x","fields":[1]}' "fields must be a JSON object"
check_bad '{"coll":"expert","id":"x","fields":{"a":1},"del":true}' 'an op has either "fields" or "del", not both'
check_bad '{"coll":"expert","id":"x","del":false}' '"del" must be true'
check_bad '[1,2]' 'expected an object'
check_bad '{"coll":"expert","id":"x","fields":{"a":1}} {}' 'invalid JSON'

# A line over 1 MiB is refused without reading it all into memory.
{
	printf '{"coll":"expert","id":"ok","fields":{"name":"n","a":1}}\n'
	printf '{"coll":"expert","id":"big","fields":{"name":"n","a":"'
	head -c 1100000 /dev/zero | tr '\0' x
	printf '"}}\n'
} >"$T/big.jsonl"
expect_status 1 l import "$T/big.jsonl"
assert_contains "$ERR" "$T/big.jsonl:2: line is longer than 1 MiB"
assert_contains "$ERR" "applied lines 1-1 (1 changed, 0 unchanged)"

# A batch the daemon refuses (nesting beyond the limit on line 2) is
# applied not at all, and the error names the line of the refused op.
cat >"$T/deep.jsonl" <<'JSONL'
{"coll":"expert","id":"d1","fields":{"name":"n","a":1}}
{"coll":"expert","id":"d2","fields":{"name":"n","a":[[[[[[[[[[[[1]]]]]]]]]]]]}}
{"coll":"expert","id":"d3","fields":{"name":"n","a":3}}
JSONL
expect_status 1 l import "$T/deep.jsonl"
assert_contains "$ERR" "$T/deep.jsonl:2: "
assert_contains "$ERR" "nothing applied, none of lines 1-3; fix line 2"
expect_status 1 l get expert d1

# The batch behind a refused one was already sent; the daemon applied it,
# and the report says so exactly: two ranges, and the one to fix.
awk 'BEGIN {
	for (i = 1; i <= 8100; i++)
		if (i == 2)
			print "{\"coll\":\"expert\",\"id\":\"b2\",\"fields\":{\"name\":\"n\",\"a\":[[[[[[[[[[[[1]]]]]]]]]]]]}}"
		else
			printf "{\"coll\":\"expert\",\"id\":\"b%d\",\"fields\":{\"name\":\"n\"}}\n", i
}' >"$T/behind.jsonl"
expect_status 1 l import "$T/behind.jsonl"
assert_contains "$ERR" "$T/behind.jsonl:2: "
assert_contains "$ERR" "applied lines 8001-8100 (100 changed, 0 unchanged), none of lines 1-8000; fix line 2"
expect_status 1 l get expert b1
expect_status 0 l get expert b8001
expect_status 0 l get expert b8100

# Without a daemon, nothing is read.
# On a terminal (script(1) gives it one), progress: percent, rate and time
# left for a file, whose size is known; lines and rate for a pipe.
on_tty() { script -qec "$1" /dev/null | tr '\r' '\n'; }
awk 'BEGIN { for (i = 1; i <= 20000; i++)
	printf "{\"coll\":\"expert\",\"id\":\"tty%d\",\"fields\":{\"name\":\"Expert %d\"}}\n", i, i }' \
	>"$T/tty.jsonl"
out=$(on_tty "'$LOKET' -c '$T/a/loket.conf' import '$T/tty.jsonl'")
[[ "$out" =~ $T/tty.jsonl:\ +[0-9]+%,\ 8000\ lines\ \(8000\ changed\),\ [0-9]+\ lines/s,\ [0-9]+:[0-9]{2}\ left ]] ||
	fail "no progress with percent, rate and time left on a terminal: $out"
assert_contains "$out" "100%, 20000 lines (20000 changed)"
assert_contains "$out" "$T/tty.jsonl: 20000 lines, 20000 changed, 0 unchanged"
out=$(on_tty "'$LOKET' -c '$T/a/loket.conf' import - <'$T/tty.jsonl'")
assert_contains "$out" "stdin: 100%, 20000 lines (0 changed)"
out=$(on_tty "cat '$T/tty.jsonl' | '$LOKET' -c '$T/a/loket.conf' import -")
[[ "$out" =~ stdin:\ 8000\ lines\ \(0\ changed\),\ [0-9]+\ lines/s ]] ||
	fail "no line counter and rate for a pipe on a terminal: $out"
[[ "$out" != *%* ]] || fail "a percentage for a pipe, whose size is unknown: $out"

stop_node "$T/a"
expect_status 1 l import "$T/experts.jsonl"
assert_contains "$ERR" "cannot reach loketd"

pass
