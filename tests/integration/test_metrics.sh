#!/usr/bin/env bash
# Metrics and health. n1 serves /metrics on [node] metrics; a scrape is
# valid Prometheus text (promtool check metrics) and shows n1's head, its
# entities, whether writes are open, and its member's session. `loket
# status` exits 0 on a healthy node, 3 with the reason when writes are
# refused (a wiped data directory waiting for its own chain), and 1 within
# its --timeout when loketd is stopped.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

command -v curl >/dev/null || fail "curl is needed"
command -v promtool >/dev/null || fail "promtool (Debian package prometheus) is needed"
make_nodes 2
knows 1 2 dial
knows 2 1
mport=$(free_port)
sed -i "/^\[node\]/a metrics = 127.0.0.1:$mport" "$T/n1/loket.conf"
start_node "$T/n1"
start_node "$T/n2"
l 1 put expert ada --json '{"name":"Ada"}' >/dev/null
url="http://127.0.0.1:$mport/metrics"
scrape() { curl -fsS --max-time 5 "$url"; }
value() { scrape | awk -v s="$1" '$1 == s { print $2 }'; }
head_one() { [ "$(value 'loket_origin_head_seq{origin="n1"}')" = 1 ]; }
wait_for "n1's head in the metrics" 10 head_one
peer_up() { [ "$(value 'loket_peer_session_up{member="n2"}')" = 1 ]; }
wait_for "n2's session in the metrics" 20 peer_up

scrape >"$T/metrics.txt"
promtool check metrics <"$T/metrics.txt" || fail "promtool refuses the metrics"
assert_eq 1 "$(value 'loket_writes_open')" "writes open in the metrics"
assert_eq 1 "$(value 'loket_entities{collection="expert"}')" "experts in the metrics"
grep -q '^process_resident_memory_bytes [1-9]' "$T/metrics.txt" || fail "no RSS in the metrics"
grep -q '^loket_received_changesets_total{result="accepted"} ' "$T/metrics.txt" ||
	fail "no received changesets in the metrics"
# Per origin: n2's two writes applied at n1, n1's own one counted as written.
l 2 put expert bo --json '{"name":"Bo"}' >/dev/null
l 2 put expert cy --json '{"name":"Cy"}' >/dev/null
n2_applied() { [ "$(value 'loket_origin_applied_ops_total{origin="n2"}')" = 2 ]; }
wait_for "n2's two ops applied at n1 in the metrics" 20 n2_applied
assert_eq 2 "$(value 'loket_origin_applied_changesets_total{origin="n2"}')" "n2's changesets applied"
assert_eq 1 "$(value 'loket_written_ops_total')" "n1's own op written"
assert_eq 1 "$(value 'loket_written_changesets_total')" "n1's own changeset written"
assert_eq 0 "$(value 'loket_origin_refused_changesets_total{origin="n2",reason="invalid"}')" \
	"nothing of n2 refused"
scrape >"$T/metrics.txt"
promtool check metrics <"$T/metrics.txt" || fail "promtool refuses the per-origin metrics"
assert_eq 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/other")" "another path"
assert_eq 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url")" "a POST"

# Healthy: 0, and the status says version, uptime, peers and disk.
expect_status 0 "$LOKET" -c "$T/n1/loket.conf" status --json
assert_eq 1 "$(jq .peers.up <<<"$OUT")" "peers up in status"
[ "$(jq .disk.store_bytes <<<"$OUT")" -gt 0 ] || fail "no store size in status"
assert_eq "$(jq -r .version <<<"$OUT")" "$("$LOKET" --version | awk '{ print $2 }')" "version in status"

# Writes refused (the data directory wiped, the record kept): 3, and why.
stop_node "$T/n1"
rm -rf "$T/n1/data"
stop_node "$T/n2"
start_node "$T/n1"
expect_status 3 "$LOKET" -c "$T/n1/loket.conf" status
assert_contains "$ERR" "unhealthy: local writes are refused" "status of a node waiting for its chain"
refused() { [ "$(value 'loket_writes_open')" = 0 ]; }
wait_for "writes refused in the metrics" 10 refused

# Stopped: 1, within the timeout.
stop_node "$T/n1"
start=$(date +%s%N)
expect_status 1 "$LOKET" -c "$T/n1/loket.conf" status --timeout 2
[ $(($(date +%s%N) - start)) -lt 4000000000 ] || fail "status waited past its --timeout"
pass
