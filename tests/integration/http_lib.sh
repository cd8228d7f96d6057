# Helpers for the loket-http tests, on top of lib.sh and sync_lib.sh (for
# free_port): one node with an [http] section, its tokens, and loket-http
# started beside it.
#
#   . "$(dirname "$0")/http_lib.sh"
#   http_node "$T/a" a        # init, [http] on a free port, tokens, loketd, loket-http
#   hcall GET /v1/status "$READ"; echo "$CODE $BODY"

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/sync_lib.sh"

LOKET_HTTP="$LOKET_BIN/loket-http"
PROBE="$(dirname "${BASH_SOURCE[0]}")/http_probe.py"
HTTP_PID=""
command -v curl >/dev/null || fail "curl is not installed (scripts/deps.sh)"

# Stops loket-http too when the test ends (lib.sh's trap stops the daemons).
http_cleanup() {
	if [ -n "$HTTP_PID" ]; then
		kill -KILL "$HTTP_PID" 2>/dev/null || true
		wait "$HTTP_PID" 2>/dev/null || true
	fi
	cleanup
}
trap http_cleanup EXIT

# http_node DIR NAME: a node with [http] on a free port (HTTP_PORT), a
# write:* token ($WRITE), a read token ($READ) and a write:expert token
# ($WEXPERT); starts loketd and loket-http. $HTTP_CONF, if set, is more
# lines of [http] (like "rate = 5"), $NODE_CONF one more line of [node]
# (like "log_level = debug").
http_node() {
	local dir=$1 name=$2
	init_node "$dir" "$name"
	[ -z "${NODE_CONF:-}" ] || sed -i "/^\[node\]\$/a $NODE_CONF" "$dir/loket.conf"
	HTTP_PORT=$(free_port)
	printf '\n[http]\nlisten = 127.0.0.1:%s\ntimeout = 2\n%s\n' "$HTTP_PORT" "${HTTP_CONF:-}" \
		>>"$dir/loket.conf"
	WRITE=$(loket_in "$dir" token add writer --scope 'write:*')
	READ=$(loket_in "$dir" token add reader --scope read)
	WEXPERT=$(loket_in "$dir" token add experts --scope write:expert)
	start_node "$dir"
	start_http "$dir"
}

# start_http DIR: runs loket-http (log in DIR/http.log) until it answers.
start_http() {
	local dir=$1
	"$LOKET_HTTP" -c "$dir/loket.conf" 2>>"$dir/http.log" &
	HTTP_PID=$!
	wait_for "loket-http on port $HTTP_PORT" 10 \
		curl -sf "http://127.0.0.1:$HTTP_PORT/v1/openapi.json"
}

# hcall METHOD PATH TOKEN [BODY]: sets CODE and BODY (the response's status and body).
hcall() {
	local method=$1 path=$2 token=$3 args=()
	[ -z "$token" ] || args+=(-H "Authorization: Bearer $token")
	[ $# -lt 4 ] || args+=(--data-binary "$4")
	BODY=$(curl -s -o - -w '\n%{http_code}' -X "$method" "${args[@]}" \
		"http://127.0.0.1:$HTTP_PORT$path") || true
	CODE=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
}

# expect_http STATUS METHOD PATH TOKEN [BODY]: hcall, which must answer STATUS.
expect_http() {
	local want=$1
	shift
	hcall "$@"
	[ "$CODE" = "$want" ] || fail "$1 $2 answered $CODE, expected $want: $BODY"
}

# jqb FILTER: FILTER applied to $BODY.
jqb() {
	jq -r "$1" <<<"$BODY"
}
