/*
 * Fuzzes the audit bundle's reader (proto/bundle.c) with arbitrary bytes:
 * every record it hands out lies inside the input and within its tag's
 * bound, each payload decoder either refuses with a sentence or gives
 * pointers inside the payload, and a failure always comes with a
 * sentence. The seeds are valid bundles and damaged ones.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *p;
	size_t n, at;
};

static int read_input(void *arg, uint8_t *buf, size_t n, size_t *got)
{
	struct input *in = arg;

	/* Odd short reads, as a pipe gives them. */
	if (n > 1 && (in->at & 3) == 1)
		n = n / 2;
	*got = n < in->n - in->at ? n : in->n - in->at;
	memcpy(buf, in->p + in->at, *got);
	in->at += *got;
	return 0;
}

static void within(const void *p, size_t len, const uint8_t *base, size_t base_len)
{
	const uint8_t *q = p;

	if (len && (q < base || q + len > base + base_len))
		abort();
}

static void decode(const struct bundle_record *rec)
{
	char err[300];
	int rc = 0;

	err[0] = '\0';
	switch (rec->tag) {
	case BUNDLE_MEMBER: {
		struct bundle_member m;
		if ((rc = bundle_decode_member(rec->p, rec->len, &m, err, sizeof(err))) == 0)
			within(m.name, m.name_len, rec->p, rec->len);
		break;
	}
	case BUNDLE_FORK: {
		struct bundle_fork f;
		if ((rc = bundle_decode_fork(rec->p, rec->len, &f, err, sizeof(err))) == 0) {
			within(f.a, f.la, rec->p, rec->len);
			within(f.b, f.lb, rec->p, rec->len);
		}
		break;
	}
	case BUNDLE_SPLIT: {
		struct bundle_split s;
		if ((rc = bundle_decode_split(rec->p, rec->len, &s, err, sizeof(err))) == 0) {
			within(s.a, s.la, rec->p, rec->len);
			within(s.b, s.lb, rec->p, rec->len);
		}
		break;
	}
	case BUNDLE_MANIFEST: {
		struct bundle_manifest m;
		struct bundle_head h;
		if ((rc = bundle_decode_manifest(rec->p, rec->len, &m, err, sizeof(err))) == 0) {
			within(m.federation, m.federation_len, rec->p, rec->len);
			within(m.heads, (size_t)m.n_origins * 72u, rec->p, rec->len);
			for (size_t i = 0; i < m.n_origins; i++)
				bundle_manifest_head(&m, i, &h);
		}
		break;
	}
	default:
		break;
	}
	if (rc < 0 && err[0] == '\0')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size, 0};
	struct bundle_reader r;
	struct bundle_record rec;
	char err[512];
	int rc;

	err[0] = '\0';
	if (bundle_reader_init(&r, read_input, &in, err, sizeof(err)) < 0) {
		if (err[0] == '\0')
			abort();
		bundle_reader_fini(&r);
		return 0;
	}
	for (;;) {
		err[0] = '\0';
		rc = bundle_next(&r, &rec, err, sizeof(err));
		if (rc == 1)
			break;
		if (rc < 0) {
			if (err[0] == '\0')
				abort();
			break;
		}
		if (rec.len > BUNDLE_MAX_RECORD ||
		    rec.offset + BUNDLE_HEADER_BYTES + rec.len > size)
			abort();
		decode(&rec);
	}
	bundle_reader_fini(&r);
	return 0;
}
