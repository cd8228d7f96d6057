# loketd on a full disk: after a crash (kill -9) with the disk full and a
# roster change to record, it still comes up, serves reads, says in its log
# why it cannot record the roster, refuses writes with the store's reason,
# and takes writes again (and the names, on reload) once there is room.
# The disk is a small tmpfs, so this needs root (CAP_SYS_ADMIN) and is
# skipped (exit 77) without it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

mkdir "$T/disk"
if ! mount -t tmpfs -o size=16m,mode=0755 tmpfs "$T/disk" 2>/dev/null; then
	echo "$TEST_NAME: skipped: cannot mount a tmpfs here (needs root)"
	exit 77
fi
AT_CLEANUP+=("umount -l '$T/disk'")

"$LOKET" init "$T/a" --name uni --data "$T/disk/data" \
	--listen "tcp://127.0.0.1:$(free_port)" >"$T/a.member"
start_node "$T/a"
for i in $(seq 1 20); do
	loket_in "$T/a" put expert "e$i" --json "{\"name\":\"Expert $i\"}" >/dev/null
done
kill9_node "$T/a"

# Fill the disk to the last block, and give the roster a member to record:
# lumc, on a disk with room, which dials uni.
dd if=/dev/zero of="$T/disk/fill" bs=4k 2>/dev/null || true
[ "$(df --output=avail "$T/disk" | tail -n 1 | tr -d ' ')" = 0 ] || fail "the disk is not full"
init_node "$T/b" lumc
add_member "$T/a" "$T/b.member"
add_member "$T/b" "$T/a.member"

start_node "$T/a"
grep -q "cannot record the roster's names: .*full.*starting anyway" "$T/a/loketd.log" ||
	fail "no log line saying why the roster is not recorded: $(tail -n 3 "$T/a/loketd.log")"
# With a member, uni signs again once lumc has shown it its own chain.
start_node "$T/b"
wait_for "writes open at uni" 20 grep -q "local writes are open" "$T/a/loketd.log"
expect_status 0 loket_in "$T/a" get expert e20
assert_contains "$OUT" "Expert 20"
expect_status 0 loket_in "$T/a" list expert --limit 100
assert_eq 20 "$(grep -c '^expert/uni/' <<<"$OUT")" "entities read on a full disk"
expect_status 1 loket_in "$T/a" put expert new --json '{"name":"New"}'
assert_contains "$ERR" "disk is full"

# Room again: writes go through, and a reload records the roster.
rm "$T/disk/fill"
expect_status 0 loket_in "$T/a" put expert new --json '{"name":"New"}'
expect_status 0 loket_in "$T/a" reload
stop_node "$T/a"
expect_status 0 loket_in "$T/a" verify
assert_contains "$OUT" ": ok"

pass
