# loket verify: the offline audit of a store, with and without a roster,
# on a live store and a stopped one, and after the store was tampered with.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || fail "jq is needed"
command -v sqlite3 >/dev/null || fail "the sqlite3 command is needed"

init_node "$T/a" uni
init_node "$T/b" lumc
start_node "$T/a"
l() { loket_in "$T/a" "$@"; }
lb() { loket_in "$T/b" "$@"; }

expect_status 0 l put expert ada --json '{"name":"Ada Lovelace"}'
expect_status 0 l put expert grace --json '{"name":"Grace Hopper"}'
expect_status 0 l put expert ada --json '{"field":"engines"}'
digest=$(l status --json | jq -r .digest)

# A store the daemon is using can be audited.
expect_status 0 l verify
assert_eq "verified 3 changesets, 3 ops, digest $digest: ok" "$OUT" "verify of a live store"

stop_node "$T/a"

expect_status 0 l verify --json
assert_eq true "$(jq -r .ok <<<"$OUT")" "report ok"
assert_eq true "$(jq -r .roster_checked <<<"$OUT")" "roster checked with -c"
assert_eq 3 "$(jq -r .changesets <<<"$OUT")" "changesets verified"

# A store file alone: every check but the roster, and the output says so.
expect_status 0 "$LOKET" verify --db "$T/a/data/store.db"
assert_contains "$OUT" "roster: not checked"
assert_contains "$OUT" ": ok"
expect_status 0 env -u LOKET_CONF "$LOKET" verify --db "$T/a/data/store.db" --json
assert_eq false "$(jq -r .roster_checked <<<"$OUT")" "roster not checked with --db alone"

# Another node's roster does not hold uni: its changesets are named.
expect_status 1 loket_in "$T/b" verify --db "$T/a/data/store.db"
assert_contains "$OUT" "seq 1: "
assert_contains "$(tail -n 1 <<<"$OUT")" "problem"

# A backup (sqlite3's .backup: a WAL-mode file without a -wal) is audited
# without leaving anything beside it, and from read-only media.
mkdir "$T/bk" "$T/tmp"
sqlite3 "$T/a/data/store.db" ".backup '$T/bk/store.db'"
expect_status 0 env TMPDIR="$T/tmp" "$LOKET" verify --db "$T/bk/store.db"
assert_contains "$OUT" "3 changesets, 3 ops, digest $digest: ok"
assert_eq "store.db" "$(ls -A "$T/bk")" "files beside the backup after verify"
# A copy taken with its WAL (after a crash: the last writes may be only in
# the -wal) is read whole, through a temporary copy that is removed again.
start_node "$T/a"
expect_status 0 l put expert alan --json '{"name":"Alan Turing"}'
wal_digest=$(l status --json | jq -r .digest)
kill9_node "$T/a"
mkdir "$T/wal"
cp "$T/a/data/store.db" "$T/a/data/store.db-wal" "$T/wal/"
[ -s "$T/wal/store.db-wal" ] || fail "the crashed store has no WAL to test with"
expect_status 0 env TMPDIR="$T/tmp" "$LOKET" verify --db "$T/wal/store.db"
assert_contains "$OUT" "4 changesets, 4 ops, digest $wal_digest: ok"
assert_eq "store.db store.db-wal" "$(ls -A "$T/wal" | tr '\n' ' ' | sed 's/ $//')" \
	"files beside the copy with a WAL after verify"
assert_eq "" "$(ls -A "$T/tmp")" "temporary files left by verify"
# Read-only media: a read-only bind mount, where not even root may write
# (this part needs root).
if mount --bind "$T/bk" "$T/bk" 2>/dev/null; then
	AT_CLEANUP+=("umount -l '$T/bk' 2>/dev/null")
	mount -o remount,bind,ro "$T/bk" || fail "cannot make the bind mount read-only"
	{ : >"$T/bk/probe"; } 2>/dev/null && fail "the read-only mount is writable"
	expect_status 0 env TMPDIR="$T/tmp" "$LOKET" verify --db "$T/bk/store.db"
	assert_contains "$OUT" "3 changesets, 3 ops, digest $digest: ok"
	umount "$T/bk"
	mount --bind "$T/wal" "$T/wal" && AT_CLEANUP+=("umount -l '$T/wal' 2>/dev/null")
	mount -o remount,bind,ro "$T/wal" || fail "cannot make the bind mount read-only"
	expect_status 0 env TMPDIR="$T/tmp" "$LOKET" verify --db "$T/wal/store.db"
	assert_contains "$OUT" "4 changesets, 4 ops, digest $wal_digest: ok"
	umount "$T/wal"
	assert_eq "" "$(ls -A "$T/tmp")" "temporary files left by verify"
else
	echo "$TEST_NAME: not root: read-only media not tried"
fi
# The node's own store, stopped after the crash, audits as before.
start_node "$T/a"
stop_node "$T/a"

# Tampering with a signed changeset is found, naming its origin and seq.
cp "$T/a/data/store.db" "$T/pristine.db"
sqlite3 "$T/a/data/store.db" \
	"UPDATE changeset SET bytes = CAST(replace(bytes, 'Grace', 'Gracy') AS BLOB) WHERE seq = 2"
expect_status 1 l verify
assert_contains "$OUT" "uni seq 2: "
assert_contains "$(tail -n 1 <<<"$OUT")" "problem"
expect_status 1 l verify --json
assert_eq false "$(jq -r .ok <<<"$OUT")" "report after tampering"
assert_eq 2 "$(jq -r '[.problems[] | select(.origin == "uni")][0].seq' <<<"$OUT")" \
	"seq of the first problem"

# A store the daemon is writing to: the audit reads one moment of it, so a
# write landing meanwhile is no problem (it is either wholly in or out).
start_node "$T/b"
awk 'BEGIN { for (i = 1; i <= 20000; i++)
	printf "{\"coll\":\"expert\",\"id\":\"bulk%d\",\"fields\":{\"name\":\"Expert %d\"}}\n", i, i }' \
	>"$T/bulk.jsonl"
expect_status 0 lb import "$T/bulk.jsonl"
(for i in $(seq 1 300); do lb put expert "live$i" --json '{"name":"Live"}' >/dev/null || exit 1; done) &
writer=$!
audits=0
while kill -0 "$writer" 2>/dev/null; do
	expect_status 0 lb verify
	assert_contains "$OUT" ": ok"
	audits=$((audits + 1))
done
wait "$writer" || fail "the writer's puts failed"
[ "$audits" -ge 2 ] || fail "only $audits audits ran while the daemon wrote"
expect_status 0 lb verify
assert_contains "$OUT" "20300 ops"
stop_node "$T/b"

# A missing store is an error, not an empty success.
expect_status 1 "$LOKET" verify --db "$T/nothing.db"
assert_contains "$ERR" "cannot read the store"

pass
