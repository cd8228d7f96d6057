# Helpers for the sync tests (test_sync_*.sh), on top of lib.sh: free TCP
# ports on 127.0.0.1, federations of N nodes wired as a chain or a mesh,
# and the conditions the tests wait for (writes open, equal digests and
# heads). Source it after lib.sh.

command -v jq >/dev/null || fail "jq is needed"

declare -A USED_PORT=()

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on, below
# the kernel's ephemeral range: a node dialling a peer that is not up yet
# would otherwise, now and then, be given that peer's port as its own source
# port (a TCP self-connect), and the peer could not bind it.
free_port() {
	local p i low=32768
	[ -r /proc/sys/net/ipv4/ip_local_port_range ] &&
		read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	[ "$low" -gt 12000 ] || fail "the ephemeral port range starts at $low: no room for test ports"
	for i in $(seq 1 200); do
		p=$((10000 + (RANDOM * 32768 + RANDOM) % (low - 10000)))
		[ -z "${USED_PORT[$p]:-}" ] || continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			USED_PORT[$p]=1
			echo "$p"
			return 0
		fi
	done
	fail "no free TCP port found"
}

# make_nodes N: initialises nodes $T/n1 .. $T/nN, each listening on a free port.
make_nodes() {
	local i
	for i in $(seq 1 "$1"); do
		init_node "$T/n$i" "n$i" "tcp://127.0.0.1:$(free_port)"
	done
}

# knows A B [dial]: A's roster gets B, with B's endpoint if "dial" is given.
knows() {
	if [ "${3:-}" = dial ]; then
		add_member "$T/n$1" "$T/n$2.member"
	else
		add_member "$T/n$1" "$T/n$2.member" nodial
	fi
}

# mesh N: every node knows every other and dials those with a higher number.
mesh() {
	local i j
	for i in $(seq 1 "$1"); do
		for j in $(seq 1 "$1"); do
			[ "$i" = "$j" ] && continue
			if [ "$i" -lt "$j" ]; then knows "$i" "$j" dial; else knows "$i" "$j"; fi
		done
	done
}

# l I ARGS...: loket on node I.
l() {
	local i=$1
	shift
	loket_in "$T/n$i" "$@"
}

# writes_open I: succeeds once node I accepts local writes.
writes_open() {
	l "$1" put org "probe-n$1" --json '{"name":"write probe"}' >/dev/null 2>&1
}

# status_json I: node I's status as JSON, also when it is unhealthy (exit 3).
status_json() {
	local rc=0
	l "$1" status --json || rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 3 ]
}

# state I: digest and heads of node I, one line.
state() {
	status_json "$1" | jq -c '[.digest, (.heads | to_entries | map([.key, .value.seq, .value.hash]) | sort)]'
}

# converged I...: succeeds if the nodes given show the same digest and heads.
converged() {
	local first s i
	first=$(state "$1") || return 1
	for i in "${@:2}"; do
		s=$(state "$i") || return 1
		[ "$s" = "$first" ] || return 1
	done
}

# has I COLL ID OWNER: succeeds if node I holds OWNER's COLL/ID.
has() {
	l "$1" get "$2" "$3" --owner "$4" >/dev/null 2>&1
}

# jsonl FILE COUNT PREFIX: writes COUNT expert ops to FILE.
jsonl() {
	awk -v n="$2" -v p="$3" 'BEGIN { for (i = 1; i <= n; i++)
		printf "{\"coll\":\"expert\",\"id\":\"%s%d\",\"fields\":{\"name\":\"Expert %d\",\"topics\":[\"water\",\"data\"]}}\n", p, i, i }' >"$1"
}
