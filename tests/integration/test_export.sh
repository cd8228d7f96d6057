#!/usr/bin/env bash
# loket export with real loketd processes: node n1 holds its own entities
# and, by sync, n2's (some with the same ids); the export of n1's own,
# imported into a fresh node n3, gives n3 the same entities (loket list
# and get compare), and n3's export is the same file; COLL and --owner
# choose, -o never leaves a partial file, and memory stays that of a page
# whatever the number of entities.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

make_nodes 2
knows 1 2 dial
knows 2 1
start_node "$T/n1"
start_node "$T/n2"
wait_for "writes open at n1" 20 writes_open 1
wait_for "writes open at n2" 20 writes_open 2

# n1: every kind of value, an update, a delete; 1,500 experts (two pages).
l 1 put org uni --json '{"name":"Universiteit Leiden","kind":"university","city":"Leiden"}' >/dev/null
l 1 put expert ada --json '{"name":"Ada","org":"org/n1/uni","topics":["wiskunde","données"],"languages":["nl","en"],"rate":1.5,"years":12,"vast":true,"note":null,"more":{"a":[1,2.25,{"b":"c"}],"e":""}}' >/dev/null
l 1 put expert ada --json '{"title":"prof. dr.","note":"Zoë \"quoted\" \\ back"}' >/dev/null
l 1 put expert gone --json '{"name":"Gone"}' >/dev/null
l 1 del expert gone >/dev/null
l 1 put question q1 --json '{"title":"Bodem in de Merenwijk","topics":["soil"],"kind":"research","status":"open"}' >/dev/null
jsonl "$T/n1.jsonl" 1500 x
l 1 import "$T/n1.jsonl" >/dev/null
# n2: an expert with n1's id, and one of its own.
l 2 put expert ada --json '{"name":"Ada of n2"}' >/dev/null
l 2 put expert bob --json '{"name":"Bob"}' >/dev/null
wait_for "n1 to hold n2's experts" 20 has 1 expert bob n2

# The export of n1's own entities, and what it holds.
expect_status 0 l 1 export --owner n1 -o "$T/own.jsonl"
N=$(wc -l <"$T/own.jsonl")
assert_eq "exported $N entities to $T/own.jsonl" "$ERR" "the summary"
assert_eq 1504 "$N" "lines of n1's export (uni, its probe org, ada, q1, 1500 experts; not gone)"
assert_eq 0 "$(grep -c '"id":"gone"' "$T/own.jsonl" || true)" "a deleted entity in the export"
jq -se '.[] | select(.id == "ada") | .fields.note == "Zoë \"quoted\" \\ back" and .fields.rate == 1.5
	and .fields.more.a[1] == 2.25 and .fields.vast == true and (.fields | has("name"))' \
	"$T/own.jsonl" >/dev/null || fail "n1's ada is not as written: $(grep '"id":"ada"' "$T/own.jsonl")"
# Every owner's without --owner: n2's two experts too (by id, then owner key).
l 1 export expert >"$T/all.jsonl"
assert_eq 1503 "$(wc -l <"$T/all.jsonl")" "experts of every owner (1501 of n1, 2 of n2)"
assert_eq "Ada Ada of n2" "$(jq -r 'select(.id == "ada") | .fields.name' "$T/all.jsonl" | sort | tr '\n' ' ' | sed 's/ $//')" \
	"both owners' ada"
# Collections chosen, and refused.
l 1 export org question --owner n1 >"$T/some.jsonl"
assert_eq "org question" "$(jq -r .coll "$T/some.jsonl" | sort -u | tr '\n' ' ' | sed 's/ $//')" "COLL..."
expect_status 2 l 1 export Bad!
assert_contains "$ERR" 'invalid collection "Bad!"'
expect_status 1 l 1 export expert --owner nobody
assert_contains "$ERR" 'no member named "nobody"'

# Into a fresh node: the same entities, now n3's.
init_node "$T/n3" n3
start_node "$T/n3"
loket_in "$T/n3" import "$T/own.jsonl" >/dev/null
for coll in org expert question; do
	a=$(l 1 list "$coll" --owner n1 --limit 100000 --json | jq -cS 'map({coll, id, fields}) | sort_by(.id)')
	b=$(loket_in "$T/n3" list "$coll" --limit 100000 --json | jq -cS 'map({coll, id, fields}) | sort_by(.id)')
	[ "$a" = "$b" ] || fail "$coll differs after the round trip"
	[ "$(jq length <<<"$a")" -gt 0 ] || fail "no $coll to compare"
done
ada=$(l 1 get expert ada --owner n1 --json | jq -cS .fields)
assert_contains "$ada" '"title":"prof. dr."' "n1's ada"
assert_eq "$ada" "$(loket_in "$T/n3" get expert ada --owner n3 --json | jq -cS .fields)" "loket get of ada"
loket_in "$T/n3" export -o "$T/again.jsonl" 2>/dev/null
cmp -s "$T/own.jsonl" "$T/again.jsonl" || fail "the export of the imported node differs"

# -o: nothing in place of FILE when the export fails, and an old FILE is kept.
stop_node "$T/n3"
echo old >"$T/again.jsonl"
expect_status 1 loket_in "$T/n3" export -o "$T/again.jsonl"
expect_status 1 loket_in "$T/n3" export -o "$T/none.jsonl"
assert_eq old "$(cat "$T/again.jsonl")" "a file -o names, after a failed export"
[ ! -e "$T/none.jsonl" ] || fail "a failed export left $T/none.jsonl"
[ -z "$(ls "$T" | grep '\.tmp\.')" ] || fail "a failed export left a temporary file: $(ls "$T")"

# Memory: a page's, whatever the count (AddressSanitizer keeps freed memory, so only without it).
if ! sanitized "$LOKET"; then
	init_node "$T/n4" n4
	start_node "$T/n4"
	jsonl "$T/small.jsonl" 2000 s
	jsonl "$T/big.jsonl" 60000 b
	maxrss() { # COLL: the peak RSS in KiB of loket export COLL
		python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$LOKET" -c "$T/n4/loket.conf" export "$1"
	}
	loket_in "$T/n4" import "$T/small.jsonl" >/dev/null
	small=$(maxrss expert)
	loket_in "$T/n4" import "$T/big.jsonl" >/dev/null
	big=$(maxrss expert)
	echo "peak RSS of loket export: $small KiB for 2,000 entities, $big KiB for 62,000"
	[ $((big - small)) -lt 4096 ] || fail "export took $((big - small)) KiB more for 60,000 more entities"
fi
pass
