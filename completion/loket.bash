# Bash completion for loket(1) and loketd(8). bash-completion loads it on
# demand under either name (/usr/share/bash-completion/completions/loket
# and .../loketd); it needs nothing of bash-completion itself.
#
# The commands and each command's options come from `loket --help` and
# `loket CMD --help`, the same table that runs them, so they cannot drift.
# Members (for --owner, --origin and OWNER/ID references) are the node's
# name and its [member NAME] sections, read from the configuration that
# loket itself would read (-c FILE, $LOKET_CONF, /etc/loket/loket.conf)
# when this user may read it. Collections are desk/schema.c's.

_loket_collections="org expert resource project question response"
_loket_question_kinds="research thesis internship contest pitch science-shop advice"
_loket_response_kinds="offer claim answer referral"
_loket_statuses="open matched in_progress answered closed withdrawn"
_loket_asker_kinds="citizen neighbourhood association company municipality school institution"

# The configuration file of the command line being completed.
_loket_conf() {
	local i
	for ((i = 1; i < COMP_CWORD; i++)); do
		if [[ ${COMP_WORDS[i]} == -c ]]; then
			printf '%s\n' "${COMP_WORDS[i + 1]}"
			return
		fi
	done
	printf '%s\n' "${LOKET_CONF:-/etc/loket/loket.conf}"
}

# This node's name and the roster's member names, one per line.
_loket_members() {
	local conf
	conf=$(_loket_conf)
	[[ -r $conf ]] || return 0
	awk '
		/^[ \t]*\[/ { node = ($0 ~ /^[ \t]*\[node\]/) }
		/^[ \t]*\[member[ \t]+[a-z0-9_-]+[ \t]*\]/ {
			sub(/^[ \t]*\[member[ \t]+/, ""); sub(/[ \t]*\].*/, ""); print; next
		}
		node && /^[ \t]*name[ \t]*=/ { sub(/^[^=]*=[ \t]*/, ""); sub(/[ \t;#].*/, ""); print }
	' "$conf" 2>/dev/null
}

# The commands, from the "Commands:" part of `loket --help`.
_loket_commands() {
	"${1:-loket}" --help 2>/dev/null | awk '/^Commands:/ { on = 1; next } on && NF == 0 { exit } on { print $1 }'
}

# The options of one command, from its usage line.
_loket_options() {
	"$1" "$2" --help 2>/dev/null | head -n 1 | grep -o -- '--[a-z][a-z-]*' | sort -u
}

_loket() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local prog=${COMP_WORDS[0]} cmd="" i n_args=0
	COMPREPLY=()

	# The command is the first word after the global options (-c FILE).
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-c) i=$((i + 1)) ;;
		-*) ;;
		*)
			if [[ -z $cmd ]]; then cmd=${COMP_WORDS[i]}; else n_args=$((n_args + 1)); fi
			;;
		esac
	done

	if [[ $prev == -c ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
		return
	fi
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-c --help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_loket_commands "$prog")" -- "$cur"))
		fi
		return
	fi

	case $prev in
	--coll)
		COMPREPLY=($(compgen -W "$_loket_collections" -- "$cur"))
		return
		;;
	--owner | --origin)
		COMPREPLY=($(compgen -W "$(_loket_members)" -- "$cur"))
		return
		;;
	--status)
		COMPREPLY=($(compgen -W "$_loket_statuses" -- "$cur"))
		return
		;;
	--kind)
		if [[ $cmd == respond ]]; then
			COMPREPLY=($(compgen -W "$_loket_response_kinds" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$_loket_question_kinds" -- "$cur"))
		fi
		return
		;;
	--asker-kind)
		COMPREPLY=($(compgen -W "$_loket_asker_kinds" -- "$cur"))
		return
		;;
	--db | --bundle | --proof | --out | -o)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--data)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--output)
		COMPREPLY=($(compgen -W "json" -- "$cur"))
		return
		;;
	--name | --listen | --federation | --limit | --json | --title | --body | --topic | \
		--asker | --neighbourhood | --deadline | --title-en | --body-en | --text | --team | \
		--contact | --text-en | --id | --org | --response | --key)
		return # a value of the user's
		;;
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_loket_options "$prog" "$cmd") --help" -- "$cur"))
		[[ $cmd == export && $cur == - ]] && COMPREPLY+=(-o)
		return
	fi

	local m members=()
	case $cmd in
	get | list | put | del)
		[[ $n_args == 0 ]] && COMPREPLY=($(compgen -W "$_loket_collections" -- "$cur"))
		;;
	export)
		COMPREPLY=($(compgen -W "$_loket_collections" -- "$cur")) # COLL...
		;;
	prove)
		# COLL/OWNER/ID, like show; or ORIGIN SEQ, whose ORIGIN is a member.
		if [[ $n_args == 0 && $cur != */* ]]; then
			COMPREPLY=($(compgen -S / -W "$_loket_collections" -- "$cur"))
			COMPREPLY+=($(compgen -W "$(_loket_members)" -- "$cur"))
		elif [[ $n_args == 0 && $cur != */*/* ]]; then
			while read -r m; do members+=("${cur%%/*}/$m/"); done < <(_loket_members)
			COMPREPLY=($(compgen -W "${members[*]}" -- "$cur"))
		fi
		compopt -o nospace 2>/dev/null
		;;
	audit)
		# audit export FILE.
		if [[ $n_args == 0 ]]; then
			COMPREPLY=($(compgen -W "export" -- "$cur"))
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi
		;;
	show)
		# COLL/OWNER/ID: the collection, then the owner.
		if [[ $cur != */* ]]; then
			COMPREPLY=($(compgen -S / -W "$_loket_collections" -- "$cur"))
		elif [[ $cur != */*/* ]]; then
			while read -r m; do members+=("${cur%%/*}/$m/"); done < <(_loket_members)
			COMPREPLY=($(compgen -W "${members[*]}" -- "$cur"))
		fi
		compopt -o nospace 2>/dev/null
		;;
	match | respond | accept)
		# QUESTION-REF (and accept's RESPONSE-REF): OWNER/ID.
		if [[ $cur != */* && ($cmd != accept || $n_args == 1) ]]; then
			COMPREPLY=($(compgen -S / -W "$(_loket_members)" -- "$cur"))
			compopt -o nospace 2>/dev/null
		fi
		;;
	import)
		COMPREPLY=($(compgen -f -- "$cur"))
		;;
	init)
		COMPREPLY=($(compgen -d -- "$cur"))
		;;
	esac
}

_loketd() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()
	case $prev in
	-c | -k)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	esac
	COMPREPLY=($(compgen -W "-c -k -t -h --help --version" -- "$cur"))
}

complete -F _loket loket
complete -F _loketd loketd
