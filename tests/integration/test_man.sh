# The man pages as the build makes them (build/man): mandoc finds nothing to
# warn about, loket(1) has every command of `loket --help` with its usage,
# loketd(8) every option of `loketd --help`, and loket.conf(5) every key
# that common/config.c reads, as does conf/loket.conf.example.
. "$(dirname "$0")/lib.sh"

command -v mandoc >/dev/null || fail "mandoc is needed (scripts/deps.sh installs it)"
MAN="$LOKET_BIN/man"
for page in loket.1 loketd.8 loket.conf.5; do
	[ -f "$MAN/$page" ] || fail "no $MAN/$page: the build makes it"
	[ -f "$MAN/$page.gz" ] || fail "no $MAN/$page.gz, the page as installed"
	expect_status 0 mandoc -T lint -W warning "$MAN/$page"
	assert_eq "" "$OUT$ERR" "mandoc -T lint on $page"
done

# loket(1): each command of the table as a subsection, with its usage
# exactly as `loket CMD --help` prints it.
page=$(mandoc -T ascii "$MAN/loket.1" | sed 's/.\x08//g')
commands=$("$LOKET" --help | awk '/^Commands:/ { on = 1; next } on && NF == 0 { exit } on { print $1 }')
[ "$(wc -l <<<"$commands")" -ge 20 ] || fail "too few commands in loket --help: $commands"
for cmd in $commands; do
	usage=$("$LOKET" "$cmd" --help | head -n 1 | sed 's/^Usage: //')
	grep -qF -- "$usage" <<<"$(tr -s ' \n' ' ' <<<"$page")" ||
		fail "loket(1) lacks '$usage'"
done
# ... and no command the table does not have.
# (roff writes a command's '-' as '\-')
for cmd in $(grep -o '^\.SS "loket [a-z\\-]*' "$MAN/loket.1" | sed 's/.* //; s/\\//g'); do
	grep -qx "$cmd" <<<"$commands" || fail "loket(1) has a command '$cmd' that loket lacks"
done

# loketd(8): every option of its usage.
page=$(mandoc -T ascii "$MAN/loketd.8" | sed 's/.\x08//g')
for opt in $("$LOKETD" --help | grep -o -- ' -[a-z-]*' | sort -u); do
	assert_contains "$page" "$opt" "loketd(8)"
done
for what in SIGTERM SIGHUP "EXIT STATUS" FILES LOGGING READY=1 WATCHDOG=1; do
	assert_contains "$page" "$what" "loketd(8)"
done

# loket.conf(5) and the example: every key of [node], [member NAME] and [http].
keys=$(sed -n 's/^ *\[\(NODE\|MEMBER\|HTTP\)_[A-Z_]*\] = "\([a-z_]*\)",$/\2/p' "$LOKET_SRC/common/config.c" |
	sort -u)
[ "$(wc -l <<<"$keys")" -ge 8 ] || fail "too few keys found in common/config.c: $keys"
for key in $keys; do
	grep -q "^\.B $key\$" "$MAN/loket.conf.5" || fail "loket.conf(5) does not describe '$key'"
	grep -q "^$key = " "$LOKET_SRC/conf/loket.conf.example" ||
		fail "conf/loket.conf.example does not show '$key'"
done

pass
