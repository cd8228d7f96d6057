#!/usr/bin/env bash
# make demo: a five-node federation of Leiden's knowledge institutions on
# 127.0.0.1, each node importing its own sample data from conf/demo/, and a
# story walked through with the loket command line. Stops every process it
# started, whatever happens.
#
#   scripts/demo.sh [BUILD_DIR]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
loket="$build/loket"
work=$(mktemp -d /tmp/loket-demo.XXXXXX)
nodes=(universiteit lumc hogeschool gemeente lakenhal)
declare -A pid=() port=()

cleanup() {
	local status=$?
	for n in "${!pid[@]}"; do
		kill "${pid[$n]}" 2>/dev/null || true
		wait "${pid[$n]}" 2>/dev/null || true
	done
	if [ "$status" = 0 ]; then
		rm -rf "$work"
	else
		echo "demo failed; logs kept in $work/*/loketd.log" >&2
	fi
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
at() { # at NODE ARGS...: loket at one node, the command shown first
	local n=$1
	shift
	printf '\033[2m%s$ loket' "$n"
	printf ' %q' "$@"
	printf '\033[0m\n'
	"$loket" -c "$work/$n/loket.conf" "$@"
}
quiet() { local n=$1; shift; "$loket" -c "$work/$n/loket.conf" "$@" >/dev/null 2>&1; }

# until_ok SECONDS CMD...: polls CMD until it succeeds, or fails after SECONDS.
until_ok() {
	local deadline=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$deadline" ] || { echo "timed out: $*" >&2; return 1; }
		sleep 0.1
	done
}

free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
	return 1
}

say "Five institutions each create a node: a key pair and a configuration"
for n in "${nodes[@]}"; do
	port[$n]=$(free_port)
	"$loket" init "$work/$n" --name "$n" --federation leiden \
		--listen "tcp://127.0.0.1:${port[$n]}" | tee "$work/$n.member"
done

say "They exchange [member] sections: each pastes the other four into its loket.conf"
for n in "${nodes[@]}"; do
	for m in "${nodes[@]}"; do
		[ "$n" = "$m" ] && continue
		{
			echo
			cat "$work/$m.member"
		} >>"$work/$n/loket.conf"
	done
done
echo "(each loket.conf now lists 4 members)"

say "Each starts loketd; nodes connect over ZeroMQ with CURVE"
for n in "${nodes[@]}"; do
	"$build/loketd" -c "$work/$n/loket.conf" 2>"$work/$n/loketd.log" &
	pid[$n]=$!
done
for n in "${nodes[@]}"; do
	until_ok 20 quiet "$n" status
done

say "Each imports its own part of the knowledge directory (conf/demo/)"
for n in "${nodes[@]}"; do
	# A node takes back its own chain from a peer before it signs: retry until then.
	until_ok 20 quiet "$n" import "$src/conf/demo/$n.jsonl"
	at "$n" import "$src/conf/demo/$n.jsonl"
done

all_have() { # all_have COLL OWNER/ID: every node holds it
	local ref=$2
	for n in "${nodes[@]}"; do
		quiet "$n" get "$1" "${ref#*/}" --owner "${ref%%/*}" || return 1
	done
}
until_ok 30 all_have org lakenhal/museum-de-lakenhal

say "Search works across institutions, with or without diacritics"
at lakenhal search cooperatie --limit 3

say "The gemeente puts a neighbourhood's question on the board"
at gemeente ask ouderen-in-beweging \
	--title "Hoe blijven ouderen in de Merenwijk langer zelfstandig en in beweging?" \
	--title-en "How can older people in the Merenwijk stay independent and active for longer?" \
	--body "Bewoners van de Merenwijk vragen hoe ouderen in de wijk langer zelfstandig kunnen wonen en actief blijven." \
	--topic ouderen --topic bewegen --topic "zelfstandig wonen" --topic wijken \
	--kind science-shop --asker "Bewonersvereniging Merenwijk" --asker-kind neighbourhood \
	--neighbourhood Merenwijk --deadline 2026-12-31

say "The kennismakelaar asks who could answer it, at every institution"
until_ok 20 all_have question gemeente/ouderen-in-beweging
at gemeente match gemeente/ouderen-in-beweging --limit 6

say "The hogeschool takes the question on"
at hogeschool respond gemeente/ouderen-in-beweging --kind offer --id beweegcoaches \
	--text "Studenten fysiotherapie en social work werken een half jaar met bewoners aan beweegprogramma's in de wijk." \
	--team "Lectoraat Zorg & Welzijn" --contact kenniswerkplaats@example.org

say "The gemeente accepts the offer"
until_ok 20 all_have response hogeschool/beweegcoaches
at gemeente accept ouderen-in-beweging hogeschool/beweegcoaches

say "The board, seen from the lakenhal"
matched() { "$loket" -c "$work/lakenhal/loket.conf" board --json |
	jq -e '.[] | select(.ref == "gemeente/ouderen-in-beweging" and .status == "matched")' >/dev/null; }
until_ok 20 matched
at lakenhal board

say "All five nodes hold the same state"
state() { "$loket" -c "$work/$1/loket.conf" status --json | jq -c '[.digest, .heads]'; }
converged() {
	local first
	first=$(state universiteit)
	for n in "${nodes[@]}"; do [ "$(state "$n")" = "$first" ] || return 1; done
}
until_ok 30 converged
for n in "${nodes[@]}"; do
	printf '%-13s digest %s\n' "$n" "$("$loket" -c "$work/$n/loket.conf" status --json | jq -r .digest)"
done

say "An auditor verifies the gemeente's signed history offline"
kill "${pid[gemeente]}"
wait "${pid[gemeente]}" || true
unset 'pid[gemeente]'
at gemeente verify

say "Done: every process stopped"
