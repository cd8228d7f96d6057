/*
 * Fuzzes the configuration parser exactly as config_load drives it: the
 * input is split on '\n' and fed line by line, then finished. Lines after a
 * rejected one are still fed, so the parser's state after an error is
 * exercised too; the first message must survive to finish.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_parser *cp;
	char err[512];
	int failed = 0;

	if (config_parse_begin(&cp, "fuzz.conf", "/srv/loket") != 0)
		abort();
	const char *p = (const char *)data;
	const char *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		err[0] = '\0';
		if (config_parse_line(cp, p, len, err, sizeof(err)) != 0) {
			/* Every rejection explains itself. */
			if (err[0] == '\0')
				abort();
			failed = 1;
		}
		p += len + (nl ? 1 : 0);
	}

	struct config *cfg;
	err[0] = '\0';
	int rc = config_parse_finish(cp, &cfg, err, sizeof(err));
	if (rc == 0) {
		if (failed || !cfg || cfg->name[0] == '\0')
			abort();
		/* What was accepted is consistent: every member findable both ways. */
		for (size_t i = 0; i < cfg->n_members; i++) {
			if (config_member_by_name(cfg, cfg->members[i].name) != &cfg->members[i] ||
			    config_member_by_key(cfg, cfg->members[i].key) != &cfg->members[i])
				abort();
		}
		config_free(cfg);
	} else if (cfg || err[0] == '\0') {
		abort();
	}
	return 0;
}
