#!/usr/bin/env bash
# Durability: every write that `loket put` or `loket import` acknowledged
# survives a kill -9 of loketd at an arbitrary moment, and the store that
# comes back verifies.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=$T
"$LOKET" init "$dir/n" --name universiteit >/dev/null
conf="$dir/n/loket.conf"
start_node "$dir/n"

# A writer that records each put only after loketd acknowledged it.
acked="$dir/acked"
: >"$acked"
(
	for i in $(seq 1 100000); do
		if "$LOKET" -c "$conf" put expert "e$i" --json "{\"name\":\"Expert $i\"}" \
			>/dev/null 2>&1; then
			echo "e$i" >>"$acked"
		else
			break
		fi
	done
) &
writer=$!

# And an import running beside it, in batches.
awk 'BEGIN { for (i = 1; i <= 50000; i++)
	printf "{\"coll\":\"project\",\"id\":\"p%d\",\"fields\":{\"name\":\"Project %d\"}}\n", i, i }' \
	>"$dir/projects.jsonl"
"$LOKET" -c "$conf" import "$dir/projects.jsonl" >"$dir/import.out" 2>&1 &
importer=$!

acked_at_least() { [ "$(wc -l <"$acked")" -ge "$1" ]; }
wait_for "40 acknowledged puts" 60 acked_at_least 40
kill9_node "$dir/n"
wait "$writer" || true
wait "$importer" || true
n_acked=$(wc -l <"$acked")
echo "killed loketd after $n_acked acknowledged puts"

start_node "$dir/n"
missing=0
while read -r id; do
	"$LOKET" -c "$conf" get expert "$id" --owner universiteit >/dev/null 2>&1 || {
		echo "lost acknowledged write: expert/$id" >&2
		missing=$((missing + 1))
	}
done <"$acked"
assert_eq 0 "$missing" "acknowledged puts lost after kill -9"

# Whatever the import reported as applied is there too.
applied=$(grep -o 'applied lines 1-[0-9]*' "$dir/import.out" | head -n 1 || true)
last=${applied##*-}
if [ -n "$last" ] && [ "$last" -gt 0 ]; then
	"$LOKET" -c "$conf" get project "p$last" --owner universiteit >/dev/null ||
		fail "import reported line $last applied, but project/p$last is missing"
fi
stop_node "$dir/n"
"$LOKET" -c "$conf" verify >"$dir/verify.out" || {
	cat "$dir/verify.out" >&2
	fail "verify failed after kill -9"
}
echo "$n_acked acknowledged writes survived kill -9; the store verifies"
pass
