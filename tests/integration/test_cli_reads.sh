# The daemon's commands through the CLI: put, get, list, search, log,
# status and del, in both output forms (--json checked with jq), and the
# errors a user can make.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || fail "jq is needed"

init_node "$T/a" uni
start_node "$T/a"
l() { loket_in "$T/a" "$@"; }

# An empty node.
expect_status 0 l status --json
assert_eq uni "$(jq -r .name <<<"$OUT")" "status name"
assert_eq default "$(jq -r .federation <<<"$OUT")" "status federation"
assert_eq 0 "$(jq -r .entities <<<"$OUT")" "entities of an empty node"
assert_eq "$(loket_in "$T/a" pubkey)" "$(jq -r .key <<<"$OUT")" "status key"

# put: the entity as stored, then the changeset.
expect_status 0 l put expert ada --json '{"name":"Ada Lovelace","field":"analytical engines","year":1843}'
assert_eq "expert/uni/ada
  field: analytical engines
  name: Ada Lovelace
  year: 1843
seq 1" "$OUT" "put output"
expect_status 0 l put expert ada --json '{"name":"Ada Lovelace"}'
assert_eq unchanged "$(tail -n 1 <<<"$OUT")" "put of the same value"
expect_status 0 l put expert ada --json '{"field":null,"tags":["math","poetry"]}' --output json
assert_eq 2 "$(jq -r .seq <<<"$OUT")" "seq of the second change"
assert_eq null "$(jq -r '.entity.fields.field' <<<"$OUT")" "a null clears a field"
assert_eq poetry "$(jq -r '.entity.fields.tags[1]' <<<"$OUT")" "array field"
expect_status 0 l put expert grace --json '{"name":"Grace Hopper","field":"compilers"}'
expect_status 0 l put resource boerhaave --json '{"name":"Rijksmuseum Boerhaave"}'

# get: every owner's version, or one owner's as an object.
expect_status 0 l get expert ada --json
assert_eq 1 "$(jq length <<<"$OUT")" "get returns an array"
assert_eq "Ada Lovelace" "$(jq -r '.[0].fields.name' <<<"$OUT")" "get name"
expect_status 0 l get expert ada --owner uni --json
assert_eq uni "$(jq -r .owner <<<"$OUT")" "get --owner returns one object"
assert_eq 2 "$(jq -r .seq <<<"$OUT")" "entity seq"
expect_status 0 l get expert ada
assert_eq "expert/uni/ada" "$(head -n 1 <<<"$OUT")" "human get header"
assert_contains "$OUT" '  tags: ["math","poetry"]'
expect_status 1 l get expert nobody
assert_eq 'loket: "expert/nobody" not found' "$ERR" "missing entity"

# list, with owner and limit.
expect_status 0 l list expert --json
assert_eq "ada grace" "$(jq -r '[.[].id] | sort | join(" ")' <<<"$OUT")" "list ids"
expect_status 0 l list expert --limit 1 --json
assert_eq 1 "$(jq length <<<"$OUT")" "list --limit 1"
expect_status 0 l list expert --owner uni
assert_eq 2 "$(grep -c '^expert/uni/' <<<"$OUT")" "human list"
expect_status 0 l list project --json
assert_eq 0 "$(jq length <<<"$OUT")" "list of an empty collection"
# A collection no schema names holds nothing: refused, not answered with [].
expect_status 1 l list experts --json
assert_contains "$ERR" 'unknown collection "experts" (known: org, expert,' "list of an unknown collection"

# search: several words, a collection, best first.
expect_status 0 l search lovelace --json
assert_eq ada "$(jq -r '.[0].id' <<<"$OUT")" "search hit"
expect_status 0 l search grace hopper --json
assert_eq grace "$(jq -r '.[0].id' <<<"$OUT")" "search of two words"
expect_status 0 l search boerhaave --coll expert --json
assert_eq 0 "$(jq length <<<"$OUT")" "search limited to a collection"

# A search waits for the index, so right after one nothing is left to index.
expect_status 0 l status --json
assert_eq 0 "$(jq -r .index.behind <<<"$OUT")" "index caught up after a search"
expect_status 0 l status
assert_contains "$OUT" "search index: 0 entity writes behind" "status shows the index"
expect_status 0 l search boerhaave
assert_eq "resource/uni/boerhaave" "$(head -n 1 <<<"$OUT")" "human search"

# log: newest first, by origin.
expect_status 0 l log --json
assert_eq 4 "$(jq -r '.[0].seq' <<<"$OUT")" "newest changeset first"
assert_eq uni "$(jq -r '.[0].origin' <<<"$OUT")" "log origin"
expect_status 0 l log --origin uni --limit 2 --json
assert_eq 2 "$(jq length <<<"$OUT")" "log --limit"
expect_status 0 l log
assert_contains "$(head -n 1 <<<"$OUT")" "uni seq 4 "

# status after the writes.
expect_status 0 l status --json
assert_eq 2 "$(jq -r .counts.expert <<<"$OUT")" "count of experts"
assert_eq 4 "$(jq -r .heads.uni.seq <<<"$OUT")" "head of uni"
digest=$(jq -r .digest <<<"$OUT")
expect_status 0 l status
assert_contains "$OUT" "  uni seq 4 hash "
assert_contains "$OUT" "  expert 2"
assert_contains "$OUT" "digest: $digest"

# rebuild gives the same digest.
expect_status 0 l rebuild --json
assert_eq "$digest" "$(jq -r .digest <<<"$OUT")" "digest after rebuild"
assert_eq 3 "$(jq -r .entities <<<"$OUT")" "entities after rebuild"

# del, twice.
expect_status 0 l del expert grace
assert_eq "seq 5" "$(tail -n 1 <<<"$OUT")" "del writes a changeset"
expect_status 0 l del expert grace --output json
assert_eq 0 "$(jq -r .seq <<<"$OUT")" "second del changes nothing"
expect_status 1 l get expert grace
assert_contains "$ERR" "not found"

# What a user can get wrong: failures exit 1, usage errors 2.
expect_status 1 l put Expert x --json '{"a":1}'
assert_contains "$ERR" 'invalid collection "Expert"'
expect_status 1 l put expert 'bad id' --json '{"a":1}'
assert_contains "$ERR" "invalid id"
expect_status 1 l put expert x --json '{"a":'
assert_contains "$ERR" "invalid JSON"
expect_status 1 l put expert x --json '["a"]'
assert_contains "$ERR" "must be a JSON object"
expect_status 1 l put expert x --json '{}'
assert_contains "$ERR" "empty"
expect_status 1 l put expert x --json '{"a":1,"a":2}'
assert_contains "$ERR" "invalid JSON"
expect_status 1 l get expert ada --owner nobody
assert_contains "$ERR" "nobody"
expect_status 2 l put expert x
assert_contains "$ERR" "Usage: loket put"
expect_status 2 l list expert --limit 0
assert_contains "$ERR" "limit"
expect_status 2 l list expert --limit 12x
expect_status 2 l list expert --limit 100001
expect_status 2 l get expert
expect_status 2 l status --bogus
expect_status 0 l search -- --limit
expect_status 0 l get --help
assert_contains "$OUT" "Usage: loket get COLL ID"

# Nothing was written by the failures.
expect_status 0 l status --json
assert_eq 5 "$(jq -r .heads.uni.seq <<<"$OUT")" "head after the failures"

# A daemon that is gone: one line, at once.
stop_node "$T/a"
expect_status 1 l status
assert_eq "loket: cannot reach loketd at \"ipc://$T/a/data/control.sock\": is it running?" "$ERR" \
	"message when loketd is down"

# A daemon killed outright leaves its socket file behind; the CLI still
# answers at once instead of waiting for a reply that cannot come.
start_node "$T/a"
kill9_node "$T/a"
[ -S "$T/a/data/control.sock" ] || fail "expected a stale socket file after SIGKILL"
started=$(date +%s)
expect_status 1 l list expert
assert_contains "$ERR" "cannot reach loketd"
[ $(($(date +%s) - started)) -lt 5 ] || fail "loket waited for a dead daemon"

pass
