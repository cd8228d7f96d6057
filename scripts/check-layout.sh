#!/usr/bin/env bash
# Checks that the includes between the parts of the tree run one way:
#
#   proto <- common <- store <- desk <- daemon <- daemon/sync <- main
#   proto, common, store, desk <- cli
#   proto, common <- http
#
# where main is daemon/main.c, the program that wires the modules, and
# every other file belongs to the part of its folder. It reads each
# `#include "..."` of the tracked .c and .h files of those folders and
# fails, naming file and line, on an include of a part the includer may not
# use, on one that names no file (includes are written from the repo root,
# so "node.h" is wrong and "daemon/node.h" right), and on two files in
# different folders that include each other. tests/ and bench/ may include
# anything and are not read. Only bash, git, grep and awk are needed.

set -euo pipefail

cd "$(git rev-parse --show-toplevel)"

parts=(proto common store desk daemon cli http)

# The files read: tracked C sources of the parts that are on disk.
mapfile -t files < <(git ls-files -- "${parts[@]}" | grep -E '\.[ch]$' |
	while IFS= read -r f; do if [[ -f $f ]]; then printf '%s\n' "$f"; fi; done)
if [[ ${#files[@]} -eq 0 ]]; then
	echo "check-layout: no C files found under ${parts[*]}" >&2
	exit 1
fi

# Every file an include may name, tracked or new, so that a header not yet
# added to git is not reported missing.
existing=$(git ls-files --cached --others --exclude-standard |
	while IFS= read -r f; do if [[ -f $f ]]; then printf '%s\n' "$f"; fi; done)

awk -v nfiles="${#files[@]}" '
# The part a path belongs to, "" if none.
function part(p) {
	if (p == "daemon/main.c")
		return "main"
	if (p ~ /^daemon\/sync\//)
		return "daemon/sync"
	if (p ~ /^(proto|common|store|desk|daemon|cli|http)\//)
		return substr(p, 1, index(p, "/") - 1)
	return ""
}

# The folder of a path: what "files in different folders" compares.
function folder(p) {
	sub(/\/[^\/]*$/, "", p)
	return p
}

# Whether part a may include a header of part b.
function may_use(a, b) {
	if (a == "cli")
		return b == "cli" || (b in rank && rank[b] <= rank["desk"])
	if (a == "http")
		return b == "http" || b == "proto" || b == "common"
	if (b == "cli" || b == "http")
		return 0
	return rank[b] <= rank[a]
}

function fail(msg) {
	print msg > "/dev/stderr"
	bad++
}

BEGIN {
	n = split("proto common store desk daemon daemon/sync main", order, " ")
	for (i = 1; i <= n; i++)
		rank[order[i]] = i
	rank["cli"] = 0 # never compared by rank; cli is off the chain
	rank["http"] = 0 # nor is http, which uses proto and common only
}

# The first input is the list of files that exist.
FNR == NR {
	exists[$0] = 1
	next
}

/^[ \t]*#[ \t]*include[ \t]*"/ {
	if (!match($0, /"[^"]*"/))
		next
	target = substr($0, RSTART + 1, RLENGTH - 2)
	from = FILENAME
	where = from ":" FNR
	nincludes++
	if (!(target in exists)) {
		fail(where ": includes " target " (no such file; includes are written from the repo root)")
		next
	}
	a = part(from)
	b = part(target)
	if (b == "") {
		fail(where ": includes " target " (part " a " may not use " folder(target) "/, which is not a part)")
		next
	}
	if (!may_use(a, b))
		fail(where ": includes " target " (part " a " may not use part " b ")")
	if (folder(from) != folder(target) && !((from, target) in edge)) {
		edge[from, target] = where
		edges[++nedges] = from SUBSEP target
	}
}

END {
	for (i = 1; i <= nedges; i++) {
		split(edges[i], e, SUBSEP)
		if ((e[2], e[1]) in edge && e[1] < e[2])
			fail(edge[e[1], e[2]] ": includes " e[2] ", and " edge[e[2], e[1]] \
			     " includes " e[1] " (files in different folders include each other)")
	}
	if (bad) {
		printf "check-layout: %d problem%s; the direction is proto <- common <- store <- desk <- daemon <- daemon/sync <- daemon/main.c, cli uses proto, common, store and desk, and http proto and common\n", bad, bad == 1 ? "" : "s" > "/dev/stderr"
		exit 1
	}
	printf "check-layout: %d includes in %d files follow proto <- common <- store <- desk <- daemon <- daemon/sync <- daemon/main.c; cli uses proto..desk, http proto and common\n", nincludes, nfiles
}
' <(printf '%s\n' "$existing") "${files[@]}"
