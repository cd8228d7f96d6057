# Bash completion (completion/loket.bash): commands and options from the
# programs' own help, collections as desk/schema.c has them, members from
# the configuration being used, the values of enumerated options.
. "$(dirname "$0")/lib.sh"

PATH="$LOKET_BIN:$PATH"
export LC_ALL=C # sort orders as the expected lists are written
set +u # the completion functions, like bash's, use unset variables
. "$LOKET_SRC/completion/loket.bash"

# complete WORD...: the completions for the command line WORD... (the last
# word is the one being completed), sorted, on one line.
complete_line() {
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	case ${COMP_WORDS[0]} in
	loketd) _loketd ;;
	*) _loket ;;
	esac
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}

# Commands: exactly those of `loket --help`.
want=$("$LOKET" --help | awk '/^Commands:/ { on = 1; next } on && NF == 0 { exit } on { print $1 }' |
	sort | tr '\n' ' ' | sed 's/ $//')
assert_eq "$want" "$(complete_line loket "")" "commands"
assert_contains " $want " " member " "the command list"
assert_eq "verify" "$(complete_line loket ver)" "a command's prefix"
assert_eq "rotate-key" "$(complete_line loket rot)" "a command with a dash"
assert_eq "--help --version -c" "$(complete_line loket -)" "global options"

# Options of a command, from its usage line.
assert_eq "--help --json --kind --limit --status --topic" "$(complete_line loket board --)" \
	"options of board"
assert_eq "--bundle --db --help --json --key --proof" "$(complete_line loket verify --)" \
	"options of verify"
assert_eq "--db --help --json" "$(complete_line loket audit export --)" "options of audit"
assert_eq "--db --help --out" "$(complete_line loket prove --)" "options of prove"
assert_eq "export" "$(complete_line loket audit "")" "audit's subcommand"
touch "$T/audit.bundle"
assert_eq "$T/audit.bundle" "$(complete_line loket verify --bundle "$T/audit.b")" "a bundle file"
assert_eq "$T/audit.bundle" "$(complete_line loket audit export "$T/audit.b")" "the file to export to"
assert_eq "--help --owner -o" "$(complete_line loket export -)" "options of export"

# Collections: the ones the desk's schema knows.
schema=$(grep -o '{"[a-z_]*", [a-z_]*_rules}' "$LOKET_SRC/desk/schema.c" | cut -d'"' -f2 |
	sort | tr '\n' ' ' | sed 's/ $//')
[ -n "$schema" ] || fail "no collections found in desk/schema.c"
assert_eq "$schema" "$(complete_line loket get "")" "collections after get"
assert_eq "$schema" "$(complete_line loket search x --coll "")" "collections after --coll"
assert_eq "" "$(complete_line loket get expert "")" "nothing after get COLL"
assert_eq "$schema" "$(complete_line loket export expert "")" "collections after export COLL"
: >"$T/out.jsonl"
assert_eq "$T/out.jsonl" "$(complete_line loket export -o "$T/out")" "a file after export -o"
assert_eq "expert/" "$(complete_line loket show ex)" "show: the collection first"

# Members: the node and its roster, from -c FILE or $LOKET_CONF.
init_node "$T/a" uni
init_node "$T/b" lumc
add_member "$T/a" "$T/b.member"
assert_eq "lumc uni" "$(complete_line loket -c "$T/a/loket.conf" list expert --owner "")" \
	"members for --owner"
assert_eq "lumc uni" "$(LOKET_CONF="$T/a/loket.conf" complete_line loket log --origin "")" \
	"members for --origin with \$LOKET_CONF"
assert_eq "expert/lumc/ expert/uni/" "$(complete_line loket -c "$T/a/loket.conf" show expert/)" \
	"show: the owner second"
assert_eq "lumc/" "$(complete_line loket -c "$T/a/loket.conf" match l)" "a question's owner"
assert_eq "expert/lumc/ expert/uni/" "$(complete_line loket -c "$T/a/loket.conf" prove expert/)" \
	"prove: the owner second"
assert_eq "lumc" "$(complete_line loket -c "$T/a/loket.conf" prove lu)" "prove: an origin"
assert_eq "" "$(complete_line loket -c "$T/nothing.conf" list expert --owner "")" \
	"members of an unreadable configuration"

# Enumerated values.
assert_eq "answered closed in_progress matched open withdrawn" \
	"$(complete_line loket board --status "")" "statuses"
assert_eq "answer claim offer referral" "$(complete_line loket respond q --kind "")" \
	"response kinds"
assert_contains "$(complete_line loket ask --kind "")" "science-shop"

# loketd: its options, which its usage names.
assert_eq "--help --version -c -h -k -t" "$(complete_line loketd -)" "loketd's options"
for opt in -c -k -t --version; do
	assert_contains "$("$LOKETD" --help)" "$opt"
done

pass
