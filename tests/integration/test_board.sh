#!/usr/bin/env bash
# The question board across nodes: the gemeente asks, the hogeschool sees
# the question, responds, the gemeente sees the response and accepts, and
# the hogeschool's board shows the question matched; close and withdraw;
# every validation error of ask, respond, accept, close, withdraw and board
# is refused with a sentence and exit 1. The lakenhal first admits only the
# hogeschool, so the response reaches it before the question does: the
# board links them once the question arrives (joined when read, not when
# written).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sync_lib.sh"

for name in gemeente hogeschool lakenhal; do
	init_node "$T/$name" "$name" "tcp://127.0.0.1:$(free_port)"
done
# meet A B [dial]: A's roster gets B, with B's endpoint if "dial" is given.
meet() {
	if [ "${3:-}" = dial ]; then
		add_member "$T/$1" "$T/$2.member"
	else
		add_member "$T/$1" "$T/$2.member" nodial
	fi
}
meet gemeente hogeschool
meet hogeschool gemeente dial
meet hogeschool lakenhal
meet lakenhal hogeschool dial
for name in gemeente hogeschool lakenhal; do start_node "$T/$name"; done
for name in gemeente hogeschool lakenhal; do
	wait_for "writes open at $name" 20 grep -q "local writes are open" "$T/$name/loketd.log"
done

g() { loket_in "$T/gemeente" "$@"; }
h() { loket_in "$T/hogeschool" "$@"; }
k() { loket_in "$T/lakenhal" "$@"; }
# board_has NODE JQ: succeeds once NODE's board --json satisfies JQ.
board_has() {
	loket_in "$T/$1" board --json | jq -e "$2" >/dev/null
}
# refused STATUS TEXT CMD...: CMD exits STATUS and says TEXT on stderr.
refused() {
	local status=$1 text=$2
	shift 2
	expect_status "$status" "$@"
	assert_contains "$ERR" "$text" "stderr of $*"
	assert_eq "" "$OUT" "stdout of refused $*"
}
ASK=(--body "Veel ouderen in de Merenwijk zijn eenzaam. Wat helpt?" --topic eenzaamheid
	--topic ouderen --kind research --asker "Wijkraad Merenwijk" --asker-kind neighbourhood)

# ask: an id made from the title, diacritics folded; -2 when taken.
expect_status 0 g ask --title "Eenzaamheid in de Merenwijk" "${ASK[@]}" --deadline 2031-06-30 \
	--neighbourhood Merenwijk --title-en "Loneliness in the Merenwijk"
Q=gemeente/eenzaamheid-in-de-merenwijk
assert_eq "$Q" "$OUT" "reference printed by ask"
expect_status 0 g ask --title "Eenzaamheid in de Merenwijk" "${ASK[@]}"
assert_eq "$Q-2" "$OUT" "second question of the same title"
expect_status 0 g ask --title "Coöperatie in Ĳmuiden: wat kán er?" "${ASK[@]/research/advice}"
assert_eq gemeente/cooperatie-in-ijmuiden-wat-kan-er "$OUT" "folded id"
expect_status 0 g ask pitch-1 --title "Slimme fietsenstalling" "${ASK[@]/research/pitch}"
assert_eq gemeente/pitch-1 "$OUT" "given id"
long=$(printf 'Woord%.0s ' $(seq 1 30))
expect_status 0 g ask --title "$long" "${ASK[@]}"
assert_eq 64 "$(printf %s "${OUT#gemeente/}" | wc -c)" "length of an id made from a long title"
g get question eenzaamheid-in-de-merenwijk --owner gemeente --json >"$T/q.json"
assert_eq open "$(jq -r .fields.status "$T/q.json")" "status of a new question"
assert_eq "Wijkraad Merenwijk/neighbourhood" "$(jq -r '.fields.asker | "\(.name)/\(.kind)"' "$T/q.json")" "asker"
assert_eq '["eenzaamheid","ouderen"]' "$(jq -c .fields.topics "$T/q.json")" "topics"
assert_eq "Loneliness in the Merenwijk" "$(jq -r .fields.title_en "$T/q.json")" "English title"
assert_eq 2031-06-30 "$(jq -r .fields.deadline "$T/q.json")" "deadline"

# ask: what is refused, and nothing written by it.
before=$(g status --json | jq .changesets)
refused 1 "needs --title" g ask "${ASK[@]}"
refused 1 "needs --title" g ask --title "" "${ASK[@]}"
refused 1 "needs --asker" g ask --title T --body B --topic t --kind research --asker-kind citizen
refused 1 "at least one --topic" g ask --title T --body B --kind research --asker A --asker-kind citizen
refused 1 'field "kind" must be one of research, thesis' g ask --title T "${ASK[@]/research/onderzoek}"
refused 1 'field "asker.kind" must be one of' g ask --title T "${ASK[@]/neighbourhood/buurt}"
refused 1 'field "deadline" must be a date YYYY-MM-DD (got "2031-02-30")' \
	g ask --title T "${ASK[@]}" --deadline 2031-02-30
refused 1 'field "deadline" must be a date' g ask --title T "${ASK[@]}" --deadline morgen
refused 1 'field "title" must be at most 8192 bytes' g ask --title "$(head -c 9000 /dev/zero | tr '\0' x)" "${ASK[@]}"
refused 1 'already has question "gemeente/pitch-1"' g ask pitch-1 --title T "${ASK[@]}"
refused 1 "invalid id" g ask 'bad id' --title T "${ASK[@]}"
refused 2 "unknown option" g ask --title T "${ASK[@]}" --colour red
assert_eq "$before" "$(g status --json | jq .changesets)" "changesets after refused asks"

# board filters: unknown values are refused with the allowed ones.
refused 1 'unknown status "bogus": use one of open, matched, in_progress, answered, closed, withdrawn' \
	g board --status bogus
refused 1 'unknown kind "bogus": use one of research' g board --kind bogus
refused 2 'limit "nul" is not a number' g board --limit nul

# The hogeschool sees the question; before that it cannot respond to it.
refused 1 "not a reference OWNER/ID" h respond eenzaamheid --kind offer --text T
refused 1 'does not hold question "gemeente/nope"' h respond gemeente/nope --kind offer --text T
wait_for "the question on the hogeschool's board" 30 board_has hogeschool ".[] | select(.ref == \"$Q\")"
refused 1 "needs --kind" h respond "$Q" --text T
refused 1 "needs --text" h respond "$Q" --kind offer
refused 1 'field "kind" must be one of claim, offer, answer, referral' h respond "$Q" --kind bod --text T
expect_status 0 h respond "$Q" --kind offer --text "Twee studenten Toegepaste Psychologie onderzoeken dit." \
	--team "Lectoraat Participatie" --contact "lectoraat@example.org"
R=hogeschool/gemeente-eenzaamheid-in-de-merenwijk
assert_eq "$R" "$OUT" "response reference"
h get response "${R#*/}" --owner hogeschool --json >"$T/r.json"
assert_eq "$Q/offered/offer" "$(jq -r '.fields | "\(.question)/\(.status)/\(.kind)"' "$T/r.json")" "response fields"
expect_status 0 h respond "$Q" --kind claim --text "Wij nemen dit op" --id claim-1
assert_eq hogeschool/claim-1 "$OUT" "response with a given id"
refused 1 'already has response "hogeschool/claim-1"' h respond "$Q" --kind claim --text T --id claim-1

# Only the owner's node changes a question or a response.
refused 1 "only gemeente's node can change it (this node is hogeschool)" h accept "$Q" "$R"
refused 1 "only gemeente's node can change it" h close "$Q"
refused 1 "only gemeente's node can change it" h withdraw "$Q"
refused 1 "only hogeschool's node can change it" g withdraw --response "$R"
refused 1 'this node has no question "nope"' g close nope
refused 1 'this node has no response "nope"' h withdraw --response nope

# The gemeente sees the response, then accepts it.
wait_for "two responses on the gemeente's board" 30 board_has gemeente ".[] | select(.ref == \"$Q\" and .responses == 2)"
refused 1 'does not hold response "hogeschool/nope"' g accept eenzaamheid-in-de-merenwijk hogeschool/nope
refused 1 "answers question \"$Q\", not \"$Q-2\"" g accept "$Q-2" "$R"
expect_status 0 g accept eenzaamheid-in-de-merenwijk "$R"
assert_eq "$Q: accepted $R (status matched)" "$OUT" "accept's report"
expect_status 0 g accept "$Q" "$R"
assert_contains "$OUT" "already accepted" "accepting twice"
assert_eq "[\"$R\"]" "$(g get question eenzaamheid-in-de-merenwijk --owner gemeente --json | jq -c .fields.accepted)" "accepted[]"
wait_for "matched on the hogeschool's board" 30 board_has hogeschool \
	".[] | select(.ref == \"$Q\" and .status == \"matched\" and .accepted == 1 and .responses == 2)"

# The board as JSON: newest first, every documented member, typed.
h board --json >"$T/board.json"
assert_eq "$Q" "$(jq -r '.[0].ref' "$T/board.json")" "newest (last changed) first"
assert_eq '["accepted","asker","deadline","hlc","hlc_text","id","kind","owner","ref","responses","status","title","topics"]' \
	"$(jq -c '[.[] | keys] | unique | .[]' "$T/board.json")" "members of a board entry"
assert_eq true "$(jq '[.[].hlc] | . == (sort | reverse)' "$T/board.json")" "ordered by hlc"
jq -e ".[] | select(.ref == \"$Q\") | .owner == \"gemeente\" and .id == \"eenzaamheid-in-de-merenwijk\"
	and .title == \"Eenzaamheid in de Merenwijk\" and .kind == \"research\"
	and .topics == [\"eenzaamheid\",\"ouderen\"] and .asker == \"Wijkraad Merenwijk\"
	and .deadline == \"2031-06-30\"" "$T/board.json" >/dev/null || fail "board entry of $Q: $(cat "$T/board.json")"
assert_eq null "$(jq -r ".[] | select(.ref == \"$Q-2\") | .deadline" "$T/board.json")" "absent deadline"
# Filters.
assert_eq "[\"$Q\"]" "$(h board --status matched --json | jq -c 'map(.ref)')" "--status matched"
assert_eq '["gemeente/pitch-1"]' "$(h board --kind pitch --json | jq -c 'map(.ref)')" "--kind pitch"
assert_eq 5 "$(h board --topic OUDEREN --json | jq length)" "--topic, any case"
assert_eq 0 "$(h board --topic water --json | jq length)" "--topic with no question"
assert_eq 2 "$(h board --limit 2 --json | jq length)" "--limit"
# For people: one block per question.
expect_status 0 h board --status matched
assert_contains "$OUT" "$Q  [matched]  research" "header line"
assert_contains "$OUT" "  Eenzaamheid in de Merenwijk" "title line"
assert_contains "$OUT" "  asked by Wijkraad Merenwijk" "asker line"
assert_contains "$OUT" "  topics: eenzaamheid, ouderen" "topics line"
assert_contains "$OUT" "  deadline: 2031-06-30" "deadline line"
assert_contains "$OUT" "  2 responses, 1 accepted" "counts line"
expect_status 0 h board --status answered
assert_eq "no questions" "$OUT" "an empty board"

# The lakenhal admits only the hogeschool: it holds the responses but not
# the question (gemeente's changesets are refused). Once it admits the
# gemeente, the question arrives and the board counts the responses.
has_at() { loket_in "$T/$1" get "$2" "$3" --owner "$4" >/dev/null 2>&1; }
wait_for "the responses at the lakenhal" 30 has_at lakenhal response claim-1 hogeschool
has_at lakenhal response gemeente-eenzaamheid-in-de-merenwijk hogeschool || fail "first response not at the lakenhal"
assert_eq 0 "$(k board --json | jq length)" "the lakenhal's board without the gemeente"
meet lakenhal gemeente
k reload >/dev/null
wait_for "the question at the lakenhal, linked" 30 board_has lakenhal \
	".[] | select(.ref == \"$Q\" and .responses == 2 and .accepted == 1 and .status == \"matched\")"

# close, withdraw: the owner's state changes; a withdrawn response no longer counts.
expect_status 0 g close "$Q"
assert_eq "$Q: closed (was matched)" "$OUT" "close's report"
expect_status 0 g close eenzaamheid-in-de-merenwijk
assert_eq "$Q: already closed" "$OUT" "closing twice"
refused 1 "question \"$Q\" is closed" g accept "$Q" hogeschool/claim-1
expect_status 0 g withdraw "$Q-2"
assert_eq "$Q-2: withdrawn (was open)" "$OUT" "withdraw's report"
refused 1 'question "gemeente/eenzaamheid-in-de-merenwijk-2" is withdrawn' g close "$Q-2"
expect_status 0 h withdraw --response claim-1
assert_eq "hogeschool/claim-1: withdrawn (was offered)" "$OUT" "withdrawing a response"
wait_for "closed and one response at the lakenhal" 30 board_has lakenhal \
	".[] | select(.ref == \"$Q\" and .status == \"closed\" and .responses == 1 and .accepted == 1)"
wait_for "withdrawn at the hogeschool" 30 board_has hogeschool ".[] | select(.ref == \"$Q-2\" and .status == \"withdrawn\")"
refused 1 "question \"$Q\" is closed and takes no more responses" h respond "$Q" --kind answer --text T
wait_for "the withdrawal at the gemeente" 30 board_has gemeente ".[] | select(.ref == \"$Q\" and .responses == 1)"
refused 1 'response "hogeschool/claim-1" was withdrawn' g accept "$Q" hogeschool/claim-1
# same_state: the three nodes show the same state digest and entity count.
same_state() {
	local a b c
	a=$(g status --json | jq -c '[.digest, .entities]') &&
		b=$(h status --json | jq -c '[.digest, .entities]') &&
		c=$(k status --json | jq -c '[.digest, .entities]') &&
		[ "$a" = "$b" ] && [ "$a" = "$c" ]
}
wait_for "all three converged" 30 same_state
for name in gemeente hogeschool lakenhal; do stop_node "$T/$name"; done
pass
