#!/usr/bin/env bash
# The directory, the broker, search and read-only SQL over a federation of
# four nodes (universiteit, lumc, hogeschool, gemeente), each importing its
# own conf/demo file; the hogeschool and the universiteit respond to the
# gemeente's question and the gemeente accepts one. Read at the lumc, which
# wrote none of it:
#   show     an entity with its links: an expert's org, a project's partners
#            (one not held stays a string), a question's responses and who
#            sent them, its accepted response, a response's question, an
#            org's experts; a missing entity and a bad reference;
#   experts  --topic and --org, ignoring case and diacritics, --limit;
#   match    the gemeente's question ranks experts of the universiteit, the
#            lumc and the hogeschool, best first, each with its reasons;
#   search   "coöperatie" and "cooperatie" find each other, "coop*" is a
#            prefix, English text is found, ranks come best first, --coll;
#   query    SELECTs over the views work; INSERT, UPDATE, DELETE, PRAGMA,
#            ATTACH, DDL, a transaction and two statements are refused with
#            a sentence and change nothing; rows and time are bounded.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

NODES=(universiteit lumc hogeschool gemeente)
for name in "${NODES[@]}"; do
	init_node "$T/$name" "$name" "tcp://127.0.0.1:$(free_port)"
done
# A mesh: every node knows every other and dials those after it.
for i in "${!NODES[@]}"; do
	for j in "${!NODES[@]}"; do
		[ "$i" = "$j" ] && continue
		if [ "$i" -lt "$j" ]; then
			add_member "$T/${NODES[$i]}" "$T/${NODES[$j]}.member"
		else
			add_member "$T/${NODES[$i]}" "$T/${NODES[$j]}.member" nodial
		fi
	done
done
for name in "${NODES[@]}"; do start_node "$T/$name"; done
for name in "${NODES[@]}"; do
	wait_for "writes open at $name" 20 grep -q "local writes are open" "$T/$name/loketd.log"
done

u() { loket_in "$T/universiteit" "$@"; }
m() { loket_in "$T/lumc" "$@"; }
h() { loket_in "$T/hogeschool" "$@"; }
g() { loket_in "$T/gemeente" "$@"; }
# node_state NAME: digest and heads of a node, one line.
node_state() {
	loket_in "$T/$1" status --json | jq -c '[.digest, (.heads | to_entries | map([.key, .value.seq]) | sort)]'
}
all_converged() {
	local first s name
	first=$(node_state universiteit) || return 1
	for name in lumc hogeschool gemeente; do
		s=$(node_state "$name") || return 1
		[ "$s" = "$first" ] || return 1
	done
}
holds() { loket_in "$T/$1" get "$2" "$3" --owner "$4" >/dev/null 2>&1; }

for name in "${NODES[@]}"; do
	expect_status 0 loket_in "$T/$name" import "$LOKET_SRC/conf/demo/$name.jsonl"
done
wait_for "the question at the hogeschool" 20 holds hogeschool question eenzaamheid-merenwijk gemeente
wait_for "the question at the universiteit" 20 holds universiteit question eenzaamheid-merenwijk gemeente
Q=gemeente/eenzaamheid-merenwijk
expect_status 0 h put response merenwijk-wijkleerbedrijf --json '{"question":"'$Q'","kind":"offer",
	"team":"Wijkleerbedrijf Merenwijk","contact":"m.dolstra@example.org","status":"offered",
	"text":"Studenten sociaal werk gaan een half jaar op huisbezoek."}'
expect_status 0 u put response merenwijk-scriptie --json '{"question":"'$Q'","kind":"claim",
	"team":"Sociologie","text":"Een masterscriptie over ontmoeting in de wijk."}'
wait_for "the response at the gemeente" 20 holds gemeente response merenwijk-wijkleerbedrijf hogeschool
expect_status 0 g put question eenzaamheid-merenwijk \
	--json '{"accepted":["hogeschool/merenwijk-wijkleerbedrijf"],"status":"matched"}'
wait_for "all four converged" 30 all_converged

# --- show -------------------------------------------------------------------

expect_status 0 m show expert/universiteit/ineke-brandsma --json
assert_eq "universiteit/universiteit-leiden" "$(jq -r .fields.org <<<"$OUT")" "the org field"
assert_eq "org universiteit universiteit-leiden Universiteit Leiden" \
	"$(jq -r '.links.org | "\(.coll) \(.owner) \(.id) \(.fields.name)"' <<<"$OUT")" "an expert's org"
expect_status 0 m show expert/universiteit/ineke-brandsma
assert_eq "expert/universiteit/ineke-brandsma" "$(head -n 1 <<<"$OUT")" "human show header"
assert_contains "$OUT" "  name: Prof. dr. Ineke Brandsma"
assert_contains "$OUT" "org:
  org/universiteit/universiteit-leiden  Universiteit Leiden"

# A project's partners: those held resolve, the lakenhal's (no such node here) stays a string.
expect_status 0 m show project/gemeente/stedelijk-kennisloket --json
assert_eq "Universiteit Leiden|Leids Universitair Medisch Centrum|Hogeschool Leiden|lakenhal/museum-de-lakenhal" \
	"$(jq -r '[.links.partners[] | if type == "object" then .fields.name else . end] | join("|")' <<<"$OUT")" \
	"a project's partners"
assert_eq "Gemeente Leiden" "$(jq -r .links.org.fields.name <<<"$OUT")" "a project's org"
expect_status 0 m show project/gemeente/stedelijk-kennisloket
assert_contains "$OUT" "partners (4):"
assert_contains "$OUT" "  lakenhal/museum-de-lakenhal (not held here)"

# A question's responses with who sent them, and its accepted response.
expect_status 0 m show question/gemeente/eenzaamheid-merenwijk --json
assert_eq "hogeschool/merenwijk-wijkleerbedrijf/offer/offered universiteit/merenwijk-scriptie/claim/null" \
	"$(jq -r '[.links.responses[] | "\(.owner)/\(.id)/\(.fields.kind)/\(.fields.status)"] | sort | join(" ")' <<<"$OUT")" \
	"a question's responses"
assert_eq "response hogeschool merenwijk-wijkleerbedrijf" \
	"$(jq -r '.links.accepted[0] | "\(.coll) \(.owner) \(.id)"' <<<"$OUT")" "the accepted response"
expect_status 0 m show question/gemeente/eenzaamheid-merenwijk
assert_contains "$OUT" "responses (2):"
assert_contains "$OUT" "  response/hogeschool/merenwijk-wijkleerbedrijf  offer, offered, team Wijkleerbedrijf Merenwijk"
assert_contains "$OUT" "accepted (1):"

# A response's question; an org's experts, resources and projects.
expect_status 0 m show response/hogeschool/merenwijk-wijkleerbedrijf --json
assert_eq "question gemeente eenzaamheid-merenwijk" \
	"$(jq -r '.links.question | "\(.coll) \(.owner) \(.id)"' <<<"$OUT")" "a response's question"
expect_status 0 m show org/universiteit/universiteit-leiden --json
assert_eq 6 "$(jq '.links.experts | length' <<<"$OUT")" "an org's experts"
assert_eq '["universiteit"]' "$(jq -c '[.links.experts[].owner] | unique' <<<"$OUT")" "owners of an org's experts"
# The gemeente's projects name the universiteit as a partner.
assert_contains "$(jq -r '[.links.projects[].id] | join(" ")' <<<"$OUT")" "stedelijk-kennisloket"

# What a user can get wrong.
expect_status 1 m show expert/universiteit/nobody
assert_eq 'loket: "expert/universiteit/nobody" not found' "$ERR" "a missing entity"
expect_status 1 m show expert/nobody/ineke-brandsma
assert_contains "$ERR" 'no member named "nobody"'
expect_status 2 m show expert/ineke-brandsma
assert_contains "$ERR" "is not a reference COLL/OWNER/ID"
expect_status 2 m show expert/universiteit/a/b
expect_status 2 m show 'expert/universiteit/bad id'
assert_contains "$ERR" "invalid id"
expect_status 2 m show
expect_status 0 m show --help
assert_contains "$OUT" "Usage: loket show COLL/OWNER/ID [--json]"

# --- experts ----------------------------------------------------------------

expect_status 0 m experts --topic eenzaamheid --json
lonely=$(jq -r '[.[] | "\(.owner)/\(.id)"] | join(" ")' <<<"$OUT")
for e in universiteit/ineke-brandsma universiteit/joris-kalverda lumc/hanneke-verbeek \
	hogeschool/marieke-dolstra hogeschool/thijs-koornneef gemeente/gerrit-jan-mulder; do
	assert_contains "$lonely" "$e" "experts on eenzaamheid"
done
assert_eq 6 "$(jq length <<<"$OUT")" "number of experts on eenzaamheid"
assert_eq true "$(jq 'all(.[]; .fields.topics | index("eenzaamheid"))' <<<"$OUT")" "every one has the topic"
assert_eq "$OUT" "$(m experts --topic ' EENZAAMHEID' --json)" "--topic ignores case"
expect_status 0 m experts --topic Cooperatie --json
assert_eq "universiteit/sven-oudshoorn" "$(jq -r '[.[] | "\(.owner)/\(.id)"] | join(" ")' <<<"$OUT")" \
	"--topic Cooperatie finds coöperatie"
expect_status 0 m experts --topic "patiëntenparticipatie" --json
assert_eq "lumc/annelies-huisman" "$(jq -r '.[0] | "\(.owner)/\(.id)"' <<<"$OUT")" "a topic with a diaeresis"
expect_status 0 m experts --org lumc --json
assert_eq 5 "$(jq length <<<"$OUT")" "--org by owner"
assert_eq '["Leids Universitair Medisch Centrum"]' "$(jq -c '[.[].org_name] | unique' <<<"$OUT")" "org_name"
expect_status 0 m experts --org "universiteit leiden" --json
assert_eq 6 "$(jq length <<<"$OUT")" "--org by the org's name, any case"
expect_status 0 m experts --org universiteit/universiteit-leiden --topic eenzaamheid --json
assert_eq "ineke-brandsma joris-kalverda" "$(jq -r '[.[].id] | sort | join(" ")' <<<"$OUT")" \
	"--org by reference with --topic"
expect_status 0 m experts --limit 3 --json
assert_eq 3 "$(jq length <<<"$OUT")" "--limit"
expect_status 0 m experts --topic eenzaamheid
assert_contains "$OUT" "expert/lumc/hanneke-verbeek  "
assert_contains "$OUT" "  topics: eenzaamheid, ouderen, gezondheid, preventie, huisartsenzorg"
expect_status 0 m experts --topic "no such topic"
assert_eq "(no experts found)" "$OUT" "no experts"
expect_status 2 m experts --topic ""
expect_status 2 m experts extra

# --- match ------------------------------------------------------------------

expect_status 0 m match $Q --limit 25 --json
[ -z "${SHOW_MATCH:-}" ] || m match $Q --limit 25 >&2
matches=$OUT
assert_eq true "$(jq 'length > 10' <<<"$matches")" "enough suggestions"
for owner in universiteit lumc hogeschool; do
	assert_eq true "$(jq --arg o "$owner" 'any(.[]; .coll == "expert" and .owner == $o)' <<<"$matches")" \
		"an expert of $owner among the matches"
done
assert_eq '["expert","project","resource"]' "$(jq -c '[.[].coll] | unique' <<<"$matches")" \
	"only experts, resources and projects"
assert_eq true "$(jq '[.[].score] | . == (sort | reverse)' <<<"$matches")" "best first"
assert_eq true "$(jq 'all(.[]; (.shared_topics | length) + (.matched_terms | length) > 0)' <<<"$matches")" \
	"every match says why"
# The top of the list: experts who share the most topics and words.
top=$(jq -r '.[0:4] | map("\(.owner)/\(.id)") | join(" ")' <<<"$matches")
assert_contains "$top" "hogeschool/marieke-dolstra" "top four"
assert_contains "$top" "universiteit/ineke-brandsma" "top four"
assert_eq '["eenzaamheid","ouderen","sociale cohesie","wijken"]' \
	"$(jq -c '.[] | select(.id == "ineke-brandsma") | .shared_topics' <<<"$matches")" "shared topics"
terms=$(jq -r '.[] | select(.id == "ineke-brandsma") | .matched_terms | join(" ")' <<<"$matches")
for t in eenzaamheid ouderen vrijwilligers loneliness; do
	assert_contains " $terms " " $t " "matched terms of ineke-brandsma"
done
# Stopwords are no reason to match.
assert_eq 0 "$(jq '[.[].matched_terms[] | select(. == "de" or . == "het" or . == "van" or . == "the" or . == "and")] | length' <<<"$matches")" \
	"stopwords dropped"
assert_eq "$matches" "$(g match question/$Q --limit 25 --json)" "the same ranking at the asker's node"
expect_status 0 m match $Q --limit 3
assert_contains "$(head -n 1 <<<"$OUT")" " 1. "
assert_contains "$OUT" "    shared topics: eenzaamheid"
assert_contains "$OUT" "    matched terms: "
expect_status 1 m match gemeente/nothing-here
assert_eq 'loket: "question/gemeente/nothing-here" not found' "$ERR" "match of a missing question"
expect_status 2 m match eenzaamheid-merenwijk
assert_contains "$ERR" "is not a reference OWNER/ID"

# --- search -----------------------------------------------------------------

# search_ids TEXT... : "coll/owner/id" of every hit, in rank order.
search_ids() { m search "$@" --json | jq -r '[.[] | "\(.coll)/\(.owner)/\(.id)"] | join(" ")'; }
with=$(search_ids coöperatie)
without=$(search_ids cooperatie)
assert_eq "$with" "$without" "coöperatie and cooperatie find the same"
assert_contains "$with" "expert/universiteit/sven-oudshoorn"
assert_contains "$with" "question/gemeente/eenzaamheid-merenwijk" "the question's body says coöperatie"
assert_eq "$with" "$(search_ids COÖPERATIE)" "case folded"
assert_contains "$(search_ids 'coop*')" "expert/universiteit/sven-oudshoorn" "a prefix"
assert_contains "$(search_ids 'coö*')" "expert/universiteit/sven-oudshoorn" "a prefix with a diaeresis"
assert_eq "$(search_ids cafe)" "$(search_ids café)" "café and cafe"
english=$(search_ids loneliness)
assert_contains "$english" "question/gemeente/eenzaamheid-merenwijk" "English title"
assert_contains "$english" "expert/universiteit/ineke-brandsma" "English description"
assert_contains "$(search_ids eenzaamheid ouderen)" "expert/lumc/hanneke-verbeek" "two Dutch words"
expect_status 0 m search eenzaamheid --json
assert_eq true "$(jq '[.[].rank] | . == (sort | reverse)' <<<"$OUT")" "ranked best first"
assert_eq true "$(jq '[.[].coll] | unique | length > 1' <<<"$OUT")" "hits of several collections"
expect_status 0 m search eenzaamheid --coll expert --json
assert_eq '["expert"]' "$(jq -c '[.[].coll] | unique' <<<"$OUT")" "--coll expert"
assert_contains "$(m search Merenwijk --coll question)" "question/gemeente/eenzaamheid-merenwijk"
assert_contains "$(m search Merenwijk --coll question --json | jq -r '.[0].snippet')" "[Merenwijk]" "snippet"

# --- query ------------------------------------------------------------------

expect_status 0 m query "SELECT owner, id, name, org FROM expert WHERE owner = 'lumc' ORDER BY id" --json
assert_eq 5 "$(jq length <<<"$OUT")" "experts of the lumc"
assert_eq "lumc annelies-huisman lumc/lumc" "$(jq -r '.[0] | "\(.owner) \(.id) \(.org)"' <<<"$OUT")" "columns"
assert_eq '["owner","id","name","org"]' "$(jq -c '.[0] | keys_unsorted' <<<"$OUT")" "column order"
expect_status 0 m query "SELECT e.owner, e.id FROM expert e, json_each(e.topics) t
	WHERE t.value = 'eenzaamheid' ORDER BY e.owner, e.id" --json
assert_eq 6 "$(jq length <<<"$OUT")" "json_each over topics"
expect_status 0 m query "SELECT q.id, q.status, q.accepted, count(r.id) AS responses FROM question q
	LEFT JOIN response r ON r.question = q.owner || '/' || q.id GROUP BY q.owner, q.id ORDER BY q.id" --json
assert_eq "broedplaatsen-de-kooi:0 eenzaamheid-merenwijk:2" \
	"$(jq -r '[.[] | "\(.id):\(.responses)"] | join(" ")' <<<"$OUT")" "questions and their responses"
assert_eq '["hogeschool/merenwijk-wijkleerbedrijf"]' \
	"$(jq -r '.[] | select(.id == "eenzaamheid-merenwijk") | .accepted' <<<"$OUT")" "arrays as JSON text"
for view in org expert resource project question response; do
	expect_status 0 m query "SELECT * FROM $view LIMIT 1" --json
	assert_eq '["owner","id","seq","hlc"]' "$(jq -c '.[0] | keys_unsorted | .[0:4]' <<<"$OUT")" "columns of $view"
	assert_eq fields "$(jq -r '.[0] | keys_unsorted | last' <<<"$OUT")" "last column of $view"
done
expect_status 0 m query "SELECT owner, count(*) AS n FROM expert GROUP BY owner ORDER BY owner"
assert_eq "owner         n
------------  -
gemeente      4
hogeschool    6
lumc          5
universiteit  6
(4 rows)" "$OUT" "the table"

before=$(node_state lumc)
for sql in "INSERT INTO member(key, name) VALUES(x'00', 'x')" \
	"UPDATE entity SET id = 'x'" \
	"DELETE FROM entity" \
	"REPLACE INTO member VALUES(x'00', 'y')" \
	"WITH x AS (SELECT 1) DELETE FROM entity" \
	"PRAGMA user_version = 7" \
	"PRAGMA journal_mode" \
	"ATTACH DATABASE '$T/other.db' AS other" \
	"CREATE TABLE t(x)" \
	"CREATE TEMP TABLE t(x)" \
	"DROP VIEW expert" \
	"BEGIN" \
	"VACUUM" \
	"SELECT 1; DELETE FROM entity" \
	"SELECT 1; SELECT 2"; do
	expect_status 1 m query "$sql"
	assert_contains "$ERR" "loket: query: refused: " "refusal of $sql"
	assert_eq "" "$OUT" "stdout of $sql"
done
expect_status 1 m query "DELETE FROM entity"
assert_eq "loket: query: refused: loket query runs only reads (SELECT); DELETE is not allowed" "$ERR"
expect_status 1 m query "PRAGMA user_version = 7"
assert_contains "$ERR" "PRAGMA is not allowed"
expect_status 1 m query "ATTACH DATABASE '$T/other.db' AS other"
assert_contains "$ERR" "ATTACH is not allowed"
[ ! -e "$T/other.db" ] || fail "ATTACH created a file"
expect_status 1 m query "SELECT 1; DELETE FROM entity"
assert_contains "$ERR" "exactly one SELECT statement"
assert_eq "$before" "$(node_state lumc)" "nothing changed"
expect_status 0 m query "SELECT count(*) AS n FROM entity WHERE deleted = 0" --json
assert_eq "$(m status --json | jq .entities)" "$(jq '.[0].n' <<<"$OUT")" "every entity still there"
expect_status 0 m query "SELECT 1 AS one; -- a comment after the statement is fine" --json
assert_eq '[{"one":1}]' "$OUT" "a trailing comment"
expect_status 1 m query "SELEC 1"
assert_contains "$ERR" "syntax error"
expect_status 1 m query "SELECT x FROM nowhere"
assert_contains "$ERR" "no such table: nowhere"

# Bounds: at most 10000 rows, at most 2 seconds.
expect_status 0 m query "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 20000)
	SELECT x FROM c" --json
assert_eq 10000 "$(jq length <<<"$OUT")" "rows cut at the limit"
assert_contains "$ERR" "stopped after 10000 rows"
expect_status 1 m query "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
	SELECT count(*) FROM c"
assert_contains "$ERR" "ran longer than 2000 ms and was stopped"
expect_status 0 m status
expect_status 2 m query
expect_status 2 m query "SELECT 1" "SELECT 2"
expect_status 0 m query --help
assert_contains "$OUT" "Usage: loket query SQL [--json]"

# A result too big for one reply is an error, and the daemon carries on.
for i in 1 2 3 4; do
	jq -cn --arg i "$i" '{coll: "expert", id: "big-\($i)", fields: ({name: "Groot \($i)",
		topics: ["groot"]} + ([range(11)] | map({key: "extra\(.)", value: ("x" * 60000)})
		| from_entries))}'
done >"$T/big.jsonl"
expect_status 0 m import "$T/big.jsonl"
expect_status 1 m experts --topic groot --json
assert_contains "$ERR" "the reply would exceed the size of one message"
expect_status 0 m experts --topic groot --limit 1 --json
assert_eq big-1 "$(jq -r '.[0].id' <<<"$OUT")" "a smaller request still works"
expect_status 0 m query "SELECT id, length(fields) > 600000 AS big FROM expert WHERE id LIKE 'big-%'
	ORDER BY id" --json
assert_eq "big-1:1 big-2:1 big-3:1 big-4:1" "$(jq -r '[.[] | "\(.id):\(.big)"] | join(" ")' <<<"$OUT")" \
	"the big experts"
expect_status 0 m query "SELECT id, fields FROM expert WHERE id LIKE 'big-%' ORDER BY id" --json
assert_eq "big-1" "$(jq -r '[.[].id] | join(" ")' <<<"$OUT")" "rows cut at about 1 MiB"
assert_contains "$ERR" "stopped after 1 row;"
expect_status 0 m status

for name in "${NODES[@]}"; do stop_node "$T/$name"; done
pass
