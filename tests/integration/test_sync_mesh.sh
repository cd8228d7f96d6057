#!/usr/bin/env bash
# (b) Five nodes in a full mesh, all writing at once (puts and an import
# each): all end with equal state digests and heads.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

N=5
make_nodes $N
mesh $N
for i in $(seq 1 $N); do start_node "$T/n$i"; done
for i in $(seq 1 $N); do wait_for "writes open at n$i" 20 writes_open "$i"; done

pids=()
for i in $(seq 1 $N); do
	jsonl "$T/ops$i.jsonl" 2000 "n${i}e"
	(
		l "$i" import "$T/ops$i.jsonl" >/dev/null
		for k in $(seq 1 20); do
			l "$i" put question "q$k" --json "{\"title\":\"Vraag $k van n$i\"}" >/dev/null
		done
	) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a writer failed"; done

wait_for "five nodes converged" 60 converged 1 2 3 4 5
for i in $(seq 1 $N); do
	assert_eq "$((N * 2000))" "$(status_json "$i" | jq -r .counts.expert)" "experts at n$i"
	assert_eq "[]" "$(status_json "$i" | jq -c .forks)" "forks at n$i"
done
for i in $(seq 1 $N); do stop_node "$T/n$i"; done
pass
