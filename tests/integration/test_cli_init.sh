# loket init, member and pubkey, no daemon: files and modes, the [member]
# section to paste into a peer's configuration, refusal to overwrite,
# rejected names and endpoints, usage errors.
. "$(dirname "$0")/lib.sh"

mode() { stat -c %a "$1"; }

# A new node: the files with their modes, and its [member] section.
expect_status 0 "$LOKET" init "$T/a" --name uni-leiden --listen tcp://127.0.0.1:7401 \
	--federation leiden
block=$OUT
assert_eq 750 "$(mode "$T/a")" "mode of the node directory"
assert_eq 600 "$(mode "$T/a/node.key")" "mode of node.key"
assert_eq 600 "$(mode "$T/a/node.key.head")" "mode of node.key.head"
assert_eq 750 "$(mode "$T/a/data")" "mode of data"
[ -f "$T/a/loket.conf" ] || fail "no loket.conf"
# The record of the node's own head: seq 0 in both slots (common/own_head.h).
assert_eq 256 "$(stat -c %s "$T/a/node.key.head")" "size of node.key.head"
assert_eq 2 "$(grep -c '^loket-own-head 1 0 0\{64\} [0-9a-f]\{16\} *$' "$T/a/node.key.head")" \
	"slots of node.key.head"
[ -z "$(ls -A "$T/a" | grep -v -x -e loket.conf -e node.key -e node.key.head -e data)" ] ||
	fail "stray files left in the node directory: $(ls -A "$T/a")"
key=$(sed -n 's/^key = //p' <<<"$block")
assert_eq "[member uni-leiden]
key = $key
endpoint = tcp://127.0.0.1:7401" "$block" "the [member] section"
[[ "$key" =~ ^[A-Za-z0-9+/]{43}=$ ]] || fail "key '$key' is not 44 characters of base64"
grep -qx 'federation = leiden' "$T/a/loket.conf" || fail "federation not written"

# loket member prints the same section again, from the configuration.
expect_status 0 "$LOKET" -c "$T/a/loket.conf" member
assert_eq "$block" "$OUT" "loket member"

# pubkey prints the same key, with -c and with $LOKET_CONF.
expect_status 0 "$LOKET" -c "$T/a/loket.conf" pubkey
assert_eq "$key" "$OUT" "pubkey with -c"
expect_status 0 env LOKET_CONF="$T/a/loket.conf" "$LOKET" pubkey
assert_eq "$key" "$OUT" "pubkey with \$LOKET_CONF"

# Without --listen the section has no endpoint; the federation defaults.
expect_status 0 "$LOKET" init "$T/b" --name lumc
block_b=$OUT
key2=$(sed -n 's/^key = //p' <<<"$OUT")
assert_eq "[member lumc]
key = $key2" "$OUT" "no endpoint without --listen"
[ "$key" != "$key2" ] || fail "two nodes got the same key"
grep -qx 'federation = default' "$T/b/loket.conf" || fail "federation does not default"

# Pasted as it is, each node's section is a valid member of the other's roster.
printf '\n%s\n' "$block" >>"$T/b/loket.conf"
printf '\n%s\n' "$block_b" >>"$T/a/loket.conf"
expect_status 0 "$LOKETD" -t -c "$T/b/loket.conf"
assert_contains "$OUT" "1 member"
expect_status 0 "$LOKETD" -t -c "$T/a/loket.conf"
expect_status 0 "$LOKET" -c "$T/a/loket.conf" member
assert_eq "$block" "$OUT" "loket member with a roster"

# Listening on every address, the endpoint names this host, with a comment
# saying so; the section still pastes as it is.
expect_status 0 "$LOKET" init "$T/w" --name wide --listen tcp://0.0.0.0:7402
assert_contains "$OUT" "endpoint = tcp://$(hostname):7402"
assert_contains "$OUT" "; loketd listens on tcp://0.0.0.0:7402 (every address)"
printf '\n%s\n' "$OUT" >>"$T/b/loket.conf"
expect_status 0 "$LOKETD" -t -c "$T/b/loket.conf"
assert_contains "$OUT" "2 members"

# An existing node is never overwritten, whichever file exists.
sum_before=$(sha256sum "$T/a/node.key" "$T/a/loket.conf")
expect_status 1 "$LOKET" init "$T/a" --name other
assert_contains "$ERR" "not overwriting"
assert_eq "$sum_before" "$(sha256sum "$T/a/node.key" "$T/a/loket.conf")" "files after refusal"
mkdir "$T/c" && : >"$T/c/node.key"
expect_status 1 "$LOKET" init "$T/c" --name other
[ ! -e "$T/c/loket.conf" ] || fail "init wrote loket.conf next to an existing node.key"
[ ! -s "$T/c/node.key" ] || fail "init overwrote an existing node.key"
mkdir "$T/h" && echo keep >"$T/h/node.key.head"
expect_status 1 "$LOKET" init "$T/h" --name other
assert_contains "$ERR" "not overwriting"
[ ! -e "$T/h/node.key" ] || fail "init wrote node.key next to an existing node.key.head"
assert_eq keep "$(cat "$T/h/node.key.head")" "an existing node.key.head after refusal"

# Bad names and endpoints change nothing.
for bad in Uni "" "a b" "$(printf 'x%.0s' {1..65})" "a;b"; do
	expect_status 1 "$LOKET" init "$T/bad" --name "$bad"
	assert_contains "$ERR" "invalid name"
	[ ! -e "$T/bad" ] || fail "init --name '$bad' left $T/bad behind"
done
for bad in 127.0.0.1:7400 tcp://127.0.0.1 tcp://:7400 tcp://h:0 tcp://h:65536 "tcp://h;x:1"; do
	expect_status 1 "$LOKET" init "$T/bad" --name x --listen "$bad"
	assert_contains "$ERR" "invalid listen"
	[ ! -e "$T/bad" ] || fail "init --listen '$bad' left $T/bad behind"
done
expect_status 1 "$LOKET" init "$T/bad" --name x --federation Leiden
assert_contains "$ERR" "invalid federation"

# Usage errors exit 2 with the command's usage; help exits 0.
expect_status 2 "$LOKET" init "$T/d"
assert_contains "$ERR" "Usage: loket init"
expect_status 2 "$LOKET" init --name x
expect_status 2 "$LOKET" init "$T/d" --name x --bogus
expect_status 0 "$LOKET" init --help
assert_contains "$OUT" "Usage: loket init DIR --name NAME"
expect_status 2 "$LOKET"
assert_contains "$ERR" "Commands:"
expect_status 0 "$LOKET" --help
assert_contains "$OUT" "  verify "
expect_status 2 "$LOKET" frobnicate
assert_contains "$ERR" 'unknown command "frobnicate"'
expect_status 0 "$LOKET" --version
assert_contains "$OUT" "loket "

# --data puts the store elsewhere (as under systemd, /var/lib/loket).
expect_status 0 "$LOKET" init "$T/d" --name d --data "$T/state"
[ -d "$T/state" ] || fail "--data directory not created"
assert_contains "$(cat "$T/d/loket.conf")" "data = $T/state"
expect_status 1 "$LOKET" init "$T/e" --name e --data 'a;b'
assert_contains "$ERR" "invalid data directory"
[ ! -e "$T/e/loket.conf" ] || fail "a refused init left a configuration"

# loketd -t checks a configuration and its key file: 0 when both load, 1
# with the file and line (or the key file) of the first problem.
expect_status 0 "$LOKETD" -t -c "$T/d/loket.conf"
assert_contains "$OUT" "$T/d/loket.conf: ok: node d of federation default, 0 members"
cp "$T/d/loket.conf" "$T/d/broken.conf"
echo "sync_interval = often" >>"$T/d/broken.conf"
expect_status 1 "$LOKETD" -t -c "$T/d/broken.conf"
assert_contains "$ERR" "$T/d/broken.conf:$(wc -l <"$T/d/broken.conf"):"
assert_contains "$ERR" "often"
chmod 640 "$T/d/node.key"
expect_status 1 "$LOKETD" -t -c "$T/d/loket.conf"
assert_contains "$ERR" "$T/d/node.key"
chmod 600 "$T/d/node.key"
# -k names the key file instead of [node] key (as the unit does with the credential).
cp "$T/d/node.key" "$T/d.key"
expect_status 0 "$LOKETD" -t -c "$T/d/loket.conf" -k "$T/d.key"
assert_contains "$OUT" "key $T/d.key"
expect_status 1 "$LOKETD" -t -c "$T/d/loket.conf" -k "$T/nothing.key"
assert_contains "$ERR" "$T/nothing.key"
expect_status 2 "$LOKETD" -t -c "$T/d/loket.conf" extra

# No -c, no LOKET_CONF and no default file: the error says how to name one.
if [ ! -e /etc/loket/loket.conf ]; then
	expect_status 1 env -u LOKET_CONF "$LOKET" status
	assert_contains "$ERR" "give -c FILE, set LOKET_CONF, or create a node"
fi

# pubkey with a missing configuration, or a key others can read, fails.
expect_status 1 "$LOKET" -c "$T/nope.conf" pubkey
chmod 644 "$T/b/node.key"
expect_status 1 "$LOKET" -c "$T/b/loket.conf" pubkey
[ -n "$ERR" ] || fail "no message for a key file others can read"

pass
