/*
 * Tests of the configuration parser through its public API: a full config,
 * defaults, every kind of rejection with its exact "FILE:LINE: reason"
 * message, path resolution, roster look-ups, config_load on real files
 * (including the shipped conf/loket.conf.example) and the key encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "proto/error.h"

#define KEY_LUMC "y5/l8bK92CyMSKzGUGeaaMv8gVrJMDb2TqPSuq/eF34="
#define KEY_HS   "P87/1Y9tmOLjE17Zs4Ffoi0FcYvZKCQ1gECQz+Q5AIg="

/* snprintf that fails the test instead of truncating. */
static void fmt(char *buf, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));

static void fmt(char *buf, size_t size, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	int n = vsnprintf(buf, size, f, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < size);
}

/*
 * Feeds text line by line as "t.conf" with base directory /srv/loket.
 * Stops at the first rejected line, as config_load does.
 */
static int parse_text(const char *text, struct config **out, char *err, size_t errlen)
{
	struct config_parser *cp;
	int rc = config_parse_begin(&cp, "t.conf", "/srv/loket");
	assert_int_equal(rc, 0);
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		rc = config_parse_line(cp, p, len, err, errlen);
		if (rc < 0)
			break;
		p += len + (nl ? 1 : 0);
	}
	int frc = config_parse_finish(cp, out, rc < 0 ? NULL : err, rc < 0 ? 0 : errlen);
	if (rc < 0) {
		assert_int_equal(frc, rc);
		assert_null(*out);
		return rc;
	}
	return frc;
}

/* Asserts that text is rejected with exactly the message want. */
static void assert_rejects(const char *text, const char *want)
{
	struct config *cfg = (void *)1;
	char err[512] = "";
	int rc = parse_text(text, &cfg, err, sizeof(err));
	assert_int_equal(rc, LOKET_E_CONFIG);
	assert_null(cfg);
	assert_string_equal(err, want);
}

static void test_full(void **state)
{
	(void)state;
	struct config *cfg;
	char err[512] = "";
	int rc = parse_text("; a comment\n"
	                    "# another\n"
	                    "\n"
	                    "[node]\n"
	                    "  name   =  universiteit  \n"
	                    "federation = leiden\n"
	                    "listen = tcp://0.0.0.0:7400\n"
	                    "data = /var/lib/loket\n"
	                    "key = /etc/loket/node.key\n"
	                    "sync_interval = 30\n"
	                    "log_level = debug\n"
	                    "\n"
	                    "[member lumc]\n"
	                    "key = " KEY_LUMC "\n"
	                    "endpoint = tcp://127.0.0.1:7401   ; dialled\n"
	                    "[ member   hogeschool ]\r\n"
	                    "key=" KEY_HS "\r\n",
	                    &cfg, err, sizeof(err));
	assert_int_equal(rc, 0);
	assert_string_equal(err, "");
	assert_string_equal(cfg->path, "");
	assert_string_equal(cfg->name, "universiteit");
	assert_string_equal(cfg->federation, "leiden");
	assert_string_equal(cfg->listen, "tcp://0.0.0.0:7400");
	assert_string_equal(cfg->data, "/var/lib/loket");
	assert_string_equal(cfg->key, "/etc/loket/node.key");
	assert_int_equal(cfg->sync_interval_s, 30);
	assert_int_equal(cfg->log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(cfg->n_members, 2);
	assert_string_equal(cfg->members[0].name, "lumc");
	assert_string_equal(cfg->members[0].endpoint, "tcp://127.0.0.1:7401");
	assert_string_equal(cfg->members[1].name, "hogeschool");
	assert_string_equal(cfg->members[1].endpoint, "");
	uint8_t k[32];
	assert_int_equal(config_key_decode(KEY_HS, k), 0);
	assert_memory_equal(cfg->members[1].key, k, 32);
	config_free(cfg);
}

/* The example in common/config.h, inline comments and all, is valid input. */
static void test_header_example(void **state)
{
	(void)state;
	struct config *cfg;
	char err[512] = "";
	int rc =
	    parse_text("\xef\xbb\xbf[node]\n"
	               "name = universiteit             ; required, [a-z0-9_-], 1..64 bytes\n"
	               "federation = leiden             ; default \"default\"\n"
	               "listen = tcp://127.0.0.1:7400   ; optional; sync endpoint\n"
	               "data = data                     ; store directory; default \".\"\n"
	               "key = node.key                  ; default \"node.key\"\n"
	               "sync_interval = 10              ; seconds between anti-entropy rounds\n"
	               "log_level = info                ; error, warn, info, debug\n"
	               "\n"
	               "[member lumc]\n"
	               "key = " KEY_LUMC "\t# required: Ed25519 public key\n"
	               "endpoint = tcp://127.0.0.1:7401 ; optional: dialled if present\n",
	               &cfg, err, sizeof(err));
	if (rc != 0)
		fail_msg("%s", err);
	assert_string_equal(cfg->name, "universiteit");
	assert_string_equal(cfg->federation, "leiden");
	assert_string_equal(cfg->listen, "tcp://127.0.0.1:7400");
	assert_string_equal(cfg->data, "/srv/loket/data");
	assert_string_equal(cfg->key, "/srv/loket/node.key");
	assert_int_equal(cfg->n_members, 1);
	assert_string_equal(cfg->members[0].endpoint, "tcp://127.0.0.1:7401");
	config_free(cfg);

	/* A ';' inside a value, not after white space, is part of the value. */
	assert_int_equal(parse_text("[node]\nname = a\ndata = x;y#z\n", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->data, "/srv/loket/x;y#z");
	config_free(cfg);
}

static void test_defaults(void **state)
{
	(void)state;
	struct config *cfg;
	char err[512] = "";
	assert_int_equal(parse_text("[node]\nname = n1\n", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->name, "n1");
	assert_string_equal(cfg->federation, "default");
	assert_string_equal(cfg->listen, "");
	assert_string_equal(cfg->data, "/srv/loket");
	assert_string_equal(cfg->key, "/srv/loket/node.key");
	assert_int_equal(cfg->sync_interval_s, 10);
	assert_int_equal(cfg->log_level, LOG_LEVEL_INFO);
	assert_int_equal(cfg->n_members, 0);
	assert_null(cfg->members);
	config_free(cfg);
}

static void test_relative_paths(void **state)
{
	(void)state;
	struct config *cfg;
	char err[512] = "";
	assert_int_equal(parse_text("[node]\nname = n1\ndata = store/a b\nkey = keys/n1.key\n",
	                            &cfg, err, sizeof(err)),
	                 0);
	assert_string_equal(cfg->data, "/srv/loket/store/a b");
	assert_string_equal(cfg->key, "/srv/loket/keys/n1.key");
	config_free(cfg);

	/* Without a base directory, paths stay as written. */
	struct config_parser *cp;
	assert_int_equal(config_parse_begin(&cp, "x.conf", NULL), 0);
	const char *lines[] = {"[node]", "name = n1", "data = d"};
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(
		    config_parse_line(cp, lines[i], strlen(lines[i]), err, sizeof(err)), 0);
	assert_int_equal(config_parse_finish(cp, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->data, "d");
	assert_string_equal(cfg->key, "node.key");
	config_free(cfg);
}

static void test_err_unknown_key(void **state)
{
	(void)state;
	assert_rejects("[node]\nname = a\n\nlisen = tcp://x:1\n",
	               "t.conf:4: unknown key \"lisen\" in [node]");
	assert_rejects("[member b]\nkey = " KEY_LUMC "\nport = 1\n",
	               "t.conf:3: unknown key \"port\" in [member b]");
}

static void test_err_unknown_section(void **state)
{
	(void)state;
	assert_rejects("[node]\nname = a\n[peer b]\n", "t.conf:3: unknown section \"[peer b]\"");
	assert_rejects("[node\n", "t.conf:1: malformed section header \"[node\" (expected [node] "
	                          "or [member NAME])");
	assert_rejects("[member]\n",
	               "t.conf:1: malformed section header \"[member]\" (expected [member NAME])");
	assert_rejects("[node]\n[node]\n", "t.conf:2: duplicate section \"[node]\"");
}

static void test_err_malformed_line(void **state)
{
	(void)state;
	assert_rejects("[node]\nname universiteit\n",
	               "t.conf:2: malformed line \"name universiteit\" (expected KEY = VALUE)");
	assert_rejects("[node]\n = x\n", "t.conf:2: malformed line \"= x\" (expected KEY = VALUE)");
	assert_rejects("[node]\nname = a\x01\n",
	               "t.conf:2: control character in line \"name = a\\x01\"");
}

static void test_err_duplicate_key(void **state)
{
	(void)state;
	assert_rejects("[node]\nname = a\nname = b\n",
	               "t.conf:3: duplicate key \"name\" in [node]");
	assert_rejects("[node]\nname = a\n[member b]\nkey = " KEY_LUMC "\nkey = " KEY_HS "\n",
	               "t.conf:5: duplicate key \"key\" in [member b]");
}

static void test_err_outside_section(void **state)
{
	(void)state;
	assert_rejects("# hello\nname = a\n",
	               "t.conf:2: key \"name\" outside a section (start with [node])");
}

static void test_err_bad_key(void **state)
{
	(void)state;
	assert_rejects("[node]\nname = a\n[member b]\nkey = abc\n",
	               "t.conf:4: invalid key \"abc\" in [member b] (expected 44 characters of "
	               "base64 for 32 bytes)");
	/* 44 characters, but the padding bits are not zero: not the encoding of any key. */
	assert_rejects("[node]\nname = a\n[member b]\nkey = "
	               "y5/l8bK92CyMSKzGUGeaaMv8gVrJMDb2TqPSuq/eF35=\n",
	               "t.conf:4: invalid key \"y5/l8bK92CyMSKzGUGeaaMv8gVrJMDb2TqPSuq/eF35=\" in "
	               "[member b] (expected 44 characters of base64 for 32 bytes)");
	assert_rejects("[node]\nname = a\n[member b]\nkey = " KEY_LUMC
	               "\n[member c]\nkey = " KEY_LUMC "\n",
	               "t.conf:6: key \"" KEY_LUMC "\" of [member c] is already the key of "
	               "[member b]");
	assert_rejects("[node]\nname = a\n[member b]\nendpoint = tcp://x:1\n[member c]\n",
	               "t.conf:3: [member b] has no key");
	assert_rejects("[node]\nname = a\n[member b]\nendpoint = tcp://x:1\n",
	               "t.conf:3: [member b] has no key");
}

static void test_err_bad_name(void **state)
{
	(void)state;
	assert_rejects("[node]\nname = Universiteit\n",
	               "t.conf:2: invalid name \"Universiteit\" (use 1 to 64 of a-z, 0-9, '_' and "
	               "'-')");
	assert_rejects(
	    "[node]\nname = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	    "t.conf:2: invalid name "
	    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" (use 1 to "
	    "64 of a-z, 0-9, '_' and '-')");
	assert_rejects(
	    "[node]\nfederation = den haag\n",
	    "t.conf:2: invalid federation \"den haag\" (use 1 to 64 of a-z, 0-9, '_' and "
	    "'-')");
	/* Printable UTF-8 is quoted as written; a byte that is not UTF-8 is escaped. */
	assert_rejects("[node]\nname = zoë\xff\n",
	               "t.conf:2: invalid name \"zoë\\xff\" (use 1 to 64 of a-z, 0-9, '_' and "
	               "'-')");
	assert_rejects("[member B\"x]\n",
	               "t.conf:1: invalid member name \"B\\\"x\" (use 1 to 64 of a-z, 0-9, '_' and "
	               "'-')");
	assert_rejects("[node]\nname =\n", "t.conf:2: empty value for \"name\" in [node]");
	assert_rejects("[node]\nname = a\nlisten = udp://x:1\n",
	               "t.conf:3: invalid listen \"udp://x:1\" (expected tcp://HOST:PORT, at most "
	               "255 bytes)");
	assert_rejects("[node]\nname = a\nlog_level = loud\n",
	               "t.conf:3: unknown log_level \"loud\" (use error, warn, info or debug)");
}

static void test_err_missing_name(void **state)
{
	(void)state;
	assert_rejects("[node]\nfederation = leiden\n", "t.conf: no name in [node] (add: name = "
	                                                "NODE_NAME)");
	assert_rejects("", "t.conf: no name in [node] (add: name = NODE_NAME)");
}

static void test_err_duplicate_member(void **state)
{
	(void)state;
	assert_rejects("[node]\nname = a\n[member b]\nkey = " KEY_LUMC "\n\n[member b]\n",
	               "t.conf:6: duplicate member \"b\" (first at line 3)");
	assert_rejects("[node]\nname = a\n[member a]\n",
	               "t.conf:3: member \"a\" has the node's own name");
	assert_rejects("[member a]\nkey = " KEY_LUMC "\n[node]\nname = a\n",
	               "t.conf:4: name \"a\" is also the name of a [member]");
}

static void test_err_sync_interval(void **state)
{
	(void)state;
	assert_rejects("[node]\nname = a\nsync_interval = ten\n",
	               "t.conf:3: sync_interval \"ten\" is not a number of seconds");
	assert_rejects("[node]\nname = a\nsync_interval = 10s\n",
	               "t.conf:3: sync_interval \"10s\" is not a number of seconds");
	assert_rejects("[node]\nname = a\nsync_interval = -5\n",
	               "t.conf:3: sync_interval \"-5\" is not a number of seconds");
	assert_rejects("[node]\nname = a\nsync_interval = 0\n",
	               "t.conf:3: sync_interval \"0\" is out of range (1..3600)");
	assert_rejects("[node]\nname = a\nsync_interval = 3601\n",
	               "t.conf:3: sync_interval \"3601\" is out of range (1..3600)");
	assert_rejects("[node]\nname = a\nsync_interval = 99999999999999999999999\n",
	               "t.conf:3: sync_interval \"99999999999999999999999\" is out of range "
	               "(1..3600)");
}

/* The bounds of loket-http's clients: defaults, values, and each range refused. */
static void test_http_bounds(void **state)
{
	(void)state;
	struct config *cfg;
	char err[512] = "";
	assert_int_equal(parse_text("[node]\nname = a\n", &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->http_rate, CONFIG_HTTP_RATE_DEFAULT);
	assert_int_equal(cfg->http_burst, CONFIG_HTTP_BURST_DEFAULT);
	assert_int_equal(cfg->http_connections, CONFIG_HTTP_CONNECTIONS_DEFAULT);
	assert_int_equal(cfg->http_client_connections, CONFIG_HTTP_CLIENT_CONNECTIONS_DEFAULT);
	assert_int_equal(cfg->http_stream_max_s, CONFIG_HTTP_STREAM_MAX_DEFAULT);
	config_free(cfg);
	assert_int_equal(parse_text("[node]\nname = a\n[http]\nrate = 5\nburst = 1\nconnections = "
	                            "1024\nclient_connections = 2\nstream_max = 86400\n",
	                            &cfg, err, sizeof(err)),
	                 0);
	assert_int_equal(cfg->http_rate, 5);
	assert_int_equal(cfg->http_burst, 1);
	assert_int_equal(cfg->http_connections, 1024);
	assert_int_equal(cfg->http_client_connections, 2);
	assert_int_equal(cfg->http_stream_max_s, 86400);
	config_free(cfg);
	assert_rejects("[node]\nname = a\n[http]\nrate = 0\n",
	               "t.conf:4: rate \"0\" in [http] is not a number of requests a second from 1 "
	               "to 100000");
	assert_rejects("[node]\nname = a\n[http]\nburst = 100001\n",
	               "t.conf:4: burst \"100001\" in [http] is not a number of requests from 1 to "
	               "100000");
	assert_rejects("[node]\nname = a\n[http]\nconnections = 1025\n",
	               "t.conf:4: connections \"1025\" in [http] is not a number of connections "
	               "from 1 to 1024");
	assert_rejects("[node]\nname = a\n[http]\nclient_connections = 2x\n",
	               "t.conf:4: client_connections \"2x\" in [http] is not a number of "
	               "connections from 1 to 1024");
	assert_rejects("[node]\nname = a\n[http]\nstream_max = 99999999999\n",
	               "t.conf:4: stream_max \"99999999999\" in [http] is not a number of seconds "
	               "from 1 to 86400");
}

/* After a rejected line the parser keeps the first message, and finish repeats it. */
static void test_finish_after_error(void **state)
{
	(void)state;
	struct config_parser *cp;
	char err[512];
	assert_int_equal(config_parse_begin(&cp, "f.conf", "/"), 0);
	assert_int_equal(config_parse_line(cp, "[node]", 6, err, sizeof(err)), 0);
	assert_int_equal(config_parse_line(cp, "bogus", 5, err, sizeof(err)), LOKET_E_CONFIG);
	assert_int_equal(config_parse_line(cp, "name = a", 8, err, sizeof(err)), 0);
	struct config *cfg = (void *)1;
	assert_int_equal(config_parse_finish(cp, &cfg, err, sizeof(err)), LOKET_E_CONFIG);
	assert_null(cfg);
	assert_string_equal(err, "f.conf:2: malformed line \"bogus\" (expected KEY = VALUE)");
}

static void test_member_lookup(void **state)
{
	(void)state;
	struct config *cfg;
	char err[512];
	assert_int_equal(parse_text("[node]\nname = a\n[member lumc]\nkey = " KEY_LUMC
	                            "\n[member hs]\nkey = " KEY_HS "\n",
	                            &cfg, err, sizeof(err)),
	                 0);
	uint8_t k[32];
	assert_int_equal(config_key_decode(KEY_HS, k), 0);
	const struct config_member *m = config_member_by_key(cfg, k);
	assert_non_null(m);
	assert_string_equal(m->name, "hs");
	k[0] ^= 1;
	assert_null(config_member_by_key(cfg, k));

	m = config_member_by_name(cfg, "lumc");
	assert_non_null(m);
	assert_int_equal(config_key_decode(KEY_LUMC, k), 0);
	assert_memory_equal(m->key, k, 32);
	assert_null(config_member_by_name(cfg, "a"));
	assert_null(config_member_by_name(cfg, "lum"));
	config_free(cfg);
}

/* revoke = KEY after SEQ (proto/FORMAT.md 14.3): parsed, looked up, and its errors. */
/* Like assert_rejects, for a message that only has to hold want. */
static void rejects_with(const char *text, const char *want)
{
	struct config *cfg = (void *)1;
	char err[512] = "";
	assert_int_equal(parse_text(text, &cfg, err, sizeof(err)), LOKET_E_CONFIG);
	assert_null(cfg);
	if (!strstr(err, want))
		fail_msg("\"%s\" does not hold \"%s\"", err, want);
}

static void test_revoke(void **state)
{
	(void)state;
	struct config *cfg;
	char err[512];
	uint8_t lumc[32], hs[32];
	assert_int_equal(config_key_decode(KEY_LUMC, lumc), 0);
	assert_int_equal(config_key_decode(KEY_HS, hs), 0);
	assert_int_equal(parse_text("[node]\nname = a\n[member lumc]\nkey = " KEY_LUMC
	                            "\nrevoke = " KEY_HS " after 7\nrevoke = " KEY_LUMC
	                            " after 0\n",
	                            &cfg, err, sizeof(err)),
	                 0);
	const struct config_member *m = config_member_by_key(cfg, lumc);
	assert_int_equal(m->n_revoked, 2);
	assert_int_equal(m->revoked[0].after, 7);
	assert_null(config_revoked(cfg, lumc, hs, 7));
	assert_non_null(config_revoked(cfg, lumc, hs, 8));
	assert_non_null(config_revoked(cfg, lumc, lumc, 1));
	assert_null(config_revoked(cfg, hs, hs, 8)); /* hs is no member here */
	assert_true(config_key_revoked(cfg, lumc, hs));
	config_free(cfg);
	rejects_with("[node]\nname = a\n[member lumc]\nkey = " KEY_LUMC "\nrevoke = " KEY_HS
	             " before 7\n",
	             "invalid revoke");
	rejects_with("[node]\nname = a\n[member lumc]\nkey = " KEY_LUMC "\nrevoke = " KEY_HS
	             " after x\n",
	             "invalid seq in revoke");
	rejects_with("[node]\nname = a\n[member lumc]\nkey = " KEY_LUMC "\nrevoke = " KEY_HS
	             " after 9223372036854775808\n",
	             "invalid seq in revoke");
	rejects_with("[node]\nname = a\n[member lumc]\nkey = " KEY_LUMC "\nrevoke = " KEY_HS
	             " after 1\nrevoke = " KEY_HS " after 1\nrevoke = " KEY_HS
	             " after 1\nrevoke = " KEY_HS " after 1\nrevoke = " KEY_HS " after 1\n",
	             "more than 4 revoke lines");
}

static void test_many_members(void **state)
{
	(void)state;
	struct config_parser *cp;
	char err[512];
	char line[128];
	assert_int_equal(config_parse_begin(&cp, "m.conf", "/"), 0);
	assert_int_equal(config_parse_line(cp, "[node]", 6, err, sizeof(err)), 0);
	assert_int_equal(config_parse_line(cp, "name = me", 9, err, sizeof(err)), 0);
	int rc = 0;
	unsigned i;
	for (i = 0; i <= 1024 && rc == 0; i++) {
		/* Keys must be points of the curve: made from seeds. */
		uint8_t seed[32] = {0}, k[32], sk[64];
		char b64[45];
		seed[0] = (uint8_t)i;
		seed[1] = (uint8_t)(i >> 8);
		crypto_sign_seed_keypair(k, sk, seed);
		config_key_encode(k, b64);
		int n = snprintf(line, sizeof(line), "[member m%u]", i);
		rc = config_parse_line(cp, line, (size_t)n, err, sizeof(err));
		if (rc == 0) {
			n = snprintf(line, sizeof(line), "key = %s", b64);
			rc = config_parse_line(cp, line, (size_t)n, err, sizeof(err));
		}
	}
	assert_int_equal(rc, LOKET_E_CONFIG);
	assert_int_equal(i, 1025);
	assert_string_equal(err, "m.conf:2051: too many members (at most 1024)");
	struct config *cfg;
	assert_int_equal(config_parse_finish(cp, &cfg, err, sizeof(err)), LOKET_E_CONFIG);
}

static void test_key_codec(void **state)
{
	(void)state;
	uint8_t k[32], back[32];
	char b64[45];
	for (int i = 0; i < 32; i++)
		k[i] = (uint8_t)(i * 37 + 1);
	config_key_encode(k, b64);
	assert_int_equal(strlen(b64), 44);
	assert_int_equal(config_key_decode(b64, back), 0);
	assert_memory_equal(k, back, 32);

	assert_int_equal(config_key_decode("", back), LOKET_E_MALFORMED);
	assert_int_equal(config_key_decode(KEY_LUMC "=", back), LOKET_E_MALFORMED);
	/* URL-safe alphabet is not the one we write. */
	assert_int_equal(config_key_decode("y5_l8bK92CyMSKzGUGeaaMv8gVrJMDb2TqPSuq_eF34=", back),
	                 LOKET_E_MALFORMED);
	/* Without padding, 43 characters. */
	assert_int_equal(config_key_decode("y5/l8bK92CyMSKzGUGeaaMv8gVrJMDb2TqPSuq/eF34", back),
	                 LOKET_E_MALFORMED);
}

/* A fresh directory for the files of one test. */
static void temp_dir(char *out, size_t outsize)
{
	int n = snprintf(out, outsize, "/tmp/loket-test-config-XXXXXX");
	assert_true(n > 0 && (size_t)n < outsize);
	assert_non_null(mkdtemp(out));
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void test_load_file(void **state)
{
	(void)state;
	char dir[PATH_MAX], path[PATH_MAX], rel[PATH_MAX], cwd[PATH_MAX];
	temp_dir(dir, sizeof(dir));
	fmt(path, sizeof(path), "%s/loket.conf", dir);
	write_file(path, "[node]\nname = n1\ndata = data\n[member m]\nkey = " KEY_LUMC "\n");

	/* Load by a relative path from elsewhere: paths resolve against the file's directory. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir("/tmp"), 0);
	fmt(rel, sizeof(rel), "%s/loket.conf", dir + strlen("/tmp/"));
	struct config *cfg;
	char err[512] = "";
	assert_int_equal(config_load(rel, &cfg, err, sizeof(err)), 0);
	assert_int_equal(chdir(cwd), 0);

	char real[PATH_MAX], want[PATH_MAX + 16];
	assert_non_null(realpath(dir, real));
	fmt(want, sizeof(want), "%s/data", real);
	assert_string_equal(cfg->data, want);
	fmt(want, sizeof(want), "%s/node.key", real);
	assert_string_equal(cfg->key, want);
	fmt(want, sizeof(want), "%s/loket.conf", real);
	assert_string_equal(cfg->path, want);
	assert_int_equal(cfg->n_members, 1);
	config_free(cfg);

	/* Errors name the file as the caller gave it. */
	write_file(path, "[node]\nname = n1\n\n\n\n\nlisen = tcp://x:1\n");
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), LOKET_E_CONFIG);
	assert_null(cfg);
	fmt(want, sizeof(want), "%s:7: unknown key \"lisen\" in [node]", path);
	assert_string_equal(err, want);

	/* A line beyond 4096 bytes is refused, not cut. */
	char *big = malloc(5000);
	assert_non_null(big);
	memcpy(big, "[node]\nname = ", 14);
	memset(big + 14, 'a', 4990 - 14);
	memcpy(big + 4990, "\n", 2);
	write_file(path, big);
	free(big);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), LOKET_E_CONFIG);
	fmt(want, sizeof(want), "%s:2: line is longer than 4096 bytes", path);
	assert_string_equal(err, want);

	/* No final newline is fine. */
	write_file(path, "[node]\nname = n2");
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->name, "n2");
	config_free(cfg);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -ENOENT);
	assert_null(cfg);
	fmt(want, sizeof(want), "%s: cannot open: No such file or directory", path);
	assert_string_equal(err, want);
	assert_int_equal(rmdir(dir), 0);
}

/* Values are checked for meaning: ports in range, hosts that parse, keys that are points. */
static void test_err_values_meaningless(void **state)
{
	(void)state;
	assert_rejects("[node]\nname = a\nlisten = tcp://0.0.0.0:113646\n",
	               "t.conf:3: invalid listen \"tcp://0.0.0.0:113646\" (port \"113646\" is not "
	               "a number from 1 to 65535)");
	assert_rejects("[node]\nname = a\nlisten = tcp://0.0.0.0:65536\n",
	               "t.conf:3: invalid listen \"tcp://0.0.0.0:65536\" (port 65536 is out of "
	               "range (1..65535))");
	assert_rejects("[node]\nname = a\nlisten = tcp://0.0.0.0:0\n",
	               "t.conf:3: invalid listen \"tcp://0.0.0.0:0\" (port 0 is out of range "
	               "(1..65535))");
	assert_rejects("[node]\nname = a\nlisten = tcp://0.0.0.0\n",
	               "t.conf:3: invalid listen \"tcp://0.0.0.0\" (expected tcp://HOST:PORT)");
	assert_rejects("[node]\nname = a\n[member b]\nkey = " KEY_LUMC
	               "\nendpoint = tcp://256.1.1.1:7400\n",
	               "t.conf:5: invalid endpoint \"tcp://256.1.1.1:7400\" in [member b] (host "
	               "\"256.1.1.1\" is not an IPv4 address)");
	assert_rejects("[node]\nname = a\n[member b]\nkey = " KEY_LUMC
	               "\nendpoint = tcp://[::g]:7400\n",
	               "t.conf:5: invalid endpoint \"tcp://[::g]:7400\" in [member b] (host "
	               "\"[::g]\" is not an IPv6 address)");
	assert_rejects("[node]\nname = a\n[member b]\nkey = " KEY_LUMC
	               "\nendpoint = tcp://a;b:7400\n",
	               "t.conf:5: invalid endpoint \"tcp://a;b:7400\" in [member b] (host "
	               "\"a;b\" is not a host name, IPv4 address or [IPv6] address)");
	assert_rejects("[node]\nname = a\n[member b]\nkey = " KEY_LUMC
	               "\nendpoint = tcp://*:7400\n",
	               "t.conf:5: invalid endpoint \"tcp://*:7400\" in [member b] (host \"*\" is "
	               "for listen only; name the host to dial)");
	assert_rejects(
	    "[node]\nname = a\n[member b]\nkey = "
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	    "t.conf:4: key \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\" of [member b] "
	    "is not a valid Ed25519 public key");
	/* 32 bytes that are no point of the curve. */
	assert_rejects(
	    "[node]\nname = a\n[member b]\nkey = "
	    "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	    "t.conf:4: key \"AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\" of [member b] "
	    "is not a valid Ed25519 public key");

	struct config *cfg;
	char err[512];
	assert_int_equal(
	    parse_text("[node]\nname = a\nlisten = tcp://*:7400\n[member b]\nkey = " KEY_LUMC
	               "\nendpoint = tcp://[::1]:65535\n[member c]\nkey = " KEY_HS
	               "\nendpoint = tcp://hogeschool.example.org:1\n",
	               &cfg, err, sizeof(err)),
	    0);
	/* The node's own key is known once its key file is read. */
	uint8_t self[32];
	assert_int_equal(config_key_decode(KEY_HS, self), 0);
	assert_int_equal(config_check_self(cfg, self, err, sizeof(err)), LOKET_E_CONFIG);
	assert_string_equal(err, "<config>:8: key \"" KEY_HS "\" of [member c] is this node's own "
	                         "key (from /srv/loket/node.key)");
	self[0] ^= 1;
	assert_int_equal(config_check_self(cfg, self, err, sizeof(err)), 0);
	config_free(cfg);
}

/* A file that is not a regular file (a device, a FIFO) is refused before it is read. */
static void test_load_not_regular(void **state)
{
	(void)state;
	struct config *cfg;
	char err[512] = "";
	assert_int_equal(config_load("/dev/zero", &cfg, err, sizeof(err)), LOKET_E_CONFIG);
	assert_string_equal(err, "/dev/zero: not a regular file");
	assert_int_equal(config_load("/tmp", &cfg, err, sizeof(err)), LOKET_E_CONFIG);
	assert_string_equal(err, "/tmp: not a regular file");
}

/* The shipped example must parse: locate it from this file's path in the source tree. */
static void test_example(void **state)
{
	(void)state;
	static const char self[] = "tests/unit/test_config.c";
	const char *file = __FILE__;
	size_t flen = strlen(file);
	assert_true(flen >= sizeof(self) - 1);
	assert_string_equal(file + flen - (sizeof(self) - 1), self);
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%.*sconf/loket.conf.example",
	                 (int)(flen - (sizeof(self) - 1)), file);
	assert_true(n > 0 && (size_t)n < sizeof(path));

	struct config *cfg;
	char err[512] = "";
	int rc = config_load(path, &cfg, err, sizeof(err));
	if (rc != 0)
		fail_msg("%s", err);
	assert_string_equal(cfg->name, "universiteit");
	assert_string_equal(cfg->federation, "leiden");
	assert_string_equal(cfg->listen, "tcp://0.0.0.0:7400");
	assert_string_equal(cfg->data, "/var/lib/loket");
	/* The key lives beside the configuration, outside the state directory. */
	assert_string_equal(cfg->key, "/etc/loket/node.key");
	assert_int_equal(cfg->sync_interval_s, 10);
	assert_int_equal(cfg->log_level, LOG_LEVEL_INFO);
	assert_int_equal(cfg->n_members, 2);
	assert_non_null(config_member_by_name(cfg, "lumc"));
	assert_non_null(config_member_by_name(cfg, "hogeschool"));
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_header_example),
	    cmocka_unit_test(test_relative_paths),
	    cmocka_unit_test(test_err_unknown_key),
	    cmocka_unit_test(test_err_unknown_section),
	    cmocka_unit_test(test_err_malformed_line),
	    cmocka_unit_test(test_err_duplicate_key),
	    cmocka_unit_test(test_err_outside_section),
	    cmocka_unit_test(test_err_bad_key),
	    cmocka_unit_test(test_err_bad_name),
	    cmocka_unit_test(test_err_missing_name),
	    cmocka_unit_test(test_err_duplicate_member),
	    cmocka_unit_test(test_err_sync_interval),
	    cmocka_unit_test(test_finish_after_error),
	    cmocka_unit_test(test_http_bounds),
	    cmocka_unit_test(test_member_lookup),
	    cmocka_unit_test(test_revoke),
	    cmocka_unit_test(test_many_members),
	    cmocka_unit_test(test_key_codec),
	    cmocka_unit_test(test_load_file),
	    cmocka_unit_test(test_err_values_meaningless),
	    cmocka_unit_test(test_load_not_regular),
	    cmocka_unit_test(test_example),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
