/*
 * The audit bundle's framing (proto/FORMAT.md, section 15): the writer
 * that puts records in section order and hashes them, the strict reader
 * that takes them one at a time with a bound per tag, and the fixed
 * layouts of the roster, fork, split-view and manifest records. Every
 * refusal says where in the file it was and what was wrong.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/bundle.h"
#include "proto/changeset.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "proto/mpread.h"

#include <stdio.h>

#define MEMBER_FIXED   (1u + 32u + 1u)
#define FORK_FIXED     (32u + 8u + 4u)
#define MANIFEST_FIXED (1u + 5u * 4u + 3u * 8u + 32u + BUNDLE_N_SECTIONS * 32u)
#define HEAD_BYTES     72u

static const char *const section_names[BUNDLE_N_SECTIONS] = {
    "roster", "checkpoints", "split views", "forks", "changesets",
};

const char *bundle_section_name(enum bundle_section s)
{
	return (unsigned)s < BUNDLE_N_SECTIONS ? section_names[s] : "?";
}

int bundle_tag_section(uint8_t tag)
{
	switch (tag) {
	case BUNDLE_MEMBER:
		return BUNDLE_S_ROSTER;
	case BUNDLE_CHECKPOINT:
		return BUNDLE_S_CHECKPOINTS;
	case BUNDLE_SPLIT:
		return BUNDLE_S_SPLITS;
	case BUNDLE_FORK:
		return BUNDLE_S_FORKS;
	case BUNDLE_CHANGESET:
		return BUNDLE_S_CHANGESETS;
	default:
		return -1;
	}
}

/* The largest payload a tag may have; 0 for an unknown tag. */
static size_t tag_max(uint8_t tag)
{
	switch (tag) {
	case BUNDLE_MEMBER:
		return MEMBER_FIXED + LOKET_MAX_NAME_LEN + 1 + 40 * BUNDLE_MAX_REVOKES;
	case BUNDLE_CHECKPOINT:
		return BUNDLE_MAX_NOTE_BYTES;
	case BUNDLE_SPLIT:
		return 4u + 2u * BUNDLE_MAX_NOTE_BYTES;
	case BUNDLE_FORK:
		return FORK_FIXED + 2u * LOKET_MAX_CHANGESET_BYTES;
	case BUNDLE_CHANGESET:
		return LOKET_MAX_CHANGESET_BYTES;
	case BUNDLE_MANIFEST:
		return MANIFEST_FIXED + LOKET_MAX_FEDERATION_LEN + BUNDLE_MAX_ORIGINS * HEAD_BYTES;
	case BUNDLE_END:
		return 32u;
	default:
		return 0;
	}
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = n; i-- > 0; v >>= 8)
		p[i] = (uint8_t)(v & 0xffu);
}

static int valid_name(const char *s, size_t len)
{
	if (len < 1 || len > LOKET_MAX_NAME_LEN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

void bundle_manifest_head(const struct bundle_manifest *m, size_t i, struct bundle_head *h)
{
	const uint8_t *p = m->heads + i * HEAD_BYTES;

	memcpy(h->origin, p, 32);
	h->seq = mpread_be64(p + 32);
	memcpy(h->hash, p + 40, 32);
}

int bundle_decode_member(const uint8_t *p, size_t len, struct bundle_member *m, char *err,
                         size_t errlen)
{
	char q[ERROR_QUOTE_SIZE];

	memset(m, 0, sizeof(*m));
	if (len < 1) {
		snprintf(err, errlen, "the roster entry is empty");
		return LOKET_E_TRUNCATED;
	}
	if (p[0] != 1 && p[0] != 2) {
		/* Version 3 and up are not defined (FORMAT.md, 15.2). */
		snprintf(err, errlen,
		         "the roster entry is of version %u; this loket reads versions 1 and 2",
		         p[0]);
		return LOKET_E_VERSION;
	}
	if (len < MEMBER_FIXED || len < MEMBER_FIXED + p[33] + (p[0] == 2 ? 1u : 0u) ||
	    (p[0] == 1 && len != MEMBER_FIXED + p[33])) {
		snprintf(
		    err, errlen,
		    "the roster entry is %zu bytes; version %u with a name of %u bytes is %s%u",
		    len, p[0], len < MEMBER_FIXED ? 0u : p[33], p[0] == 2 ? "at least " : "",
		    MEMBER_FIXED + (len < MEMBER_FIXED ? 0u : p[33]) + (p[0] == 2 ? 1u : 0u));
		return len < MEMBER_FIXED ? LOKET_E_TRUNCATED : LOKET_E_MALFORMED;
	}
	m->version = p[0];
	memcpy(m->key, p + 1, 32);
	m->name = (const char *)p + MEMBER_FIXED;
	m->name_len = p[33];
	if (p[0] == 2) {
		const uint8_t *r = p + MEMBER_FIXED + m->name_len;
		size_t n = r[0];
		if (n < 1 || n > BUNDLE_MAX_REVOKES ||
		    len != MEMBER_FIXED + m->name_len + 1 + 40 * n) {
			snprintf(err, errlen,
			         "the version 2 roster entry lists %zu revocations in %zu bytes; "
			         "it holds 1 to %u, 40 bytes each, and nothing after",
			         n, len - MEMBER_FIXED - m->name_len - 1, BUNDLE_MAX_REVOKES);
			return LOKET_E_MALFORMED;
		}
		for (size_t i = 0; i < n; i++) {
			memcpy(m->revoked[i].key, r + 1 + 40 * i, 32);
			m->revoked[i].after = mpread_be64(r + 1 + 40 * i + 32);
			if (m->revoked[i].after > INT64_MAX) {
				snprintf(err, errlen,
				         "revocation %zu of the roster entry is after seq %llu, "
				         "beyond 2^63 - 1",
				         i + 1, (unsigned long long)m->revoked[i].after);
				return LOKET_E_MALFORMED;
			}
		}
		m->n_revoked = n;
	}
	if (!valid_name(m->name, m->name_len)) {
		snprintf(err, errlen,
		         "the roster entry's name %s is not 1 to %u bytes of [a-z0-9_-]",
		         error_quote(q, sizeof(q), m->name, m->name_len), LOKET_MAX_NAME_LEN);
		return LOKET_E_MALFORMED;
	}
	return 0;
}

int bundle_decode_fork(const uint8_t *p, size_t len, struct bundle_fork *f, char *err,
                       size_t errlen)
{
	uint32_t la;

	memset(f, 0, sizeof(*f));
	if (len < FORK_FIXED) {
		snprintf(err, errlen, "the fork record is %zu bytes, less than its fixed %u", len,
		         FORK_FIXED);
		return LOKET_E_TRUNCATED;
	}
	memcpy(f->origin, p, 32);
	f->seq = mpread_be64(p + 32);
	la = mpread_be32(p + 40);
	if (f->seq < 1 || f->seq > INT64_MAX) {
		snprintf(err, errlen, "the fork record's seq %llu is not 1 to 2^63-1",
		         (unsigned long long)f->seq);
		return LOKET_E_BAD_SEQ;
	}
	if (la > len - FORK_FIXED || la > LOKET_MAX_CHANGESET_BYTES ||
	    len - FORK_FIXED - la > LOKET_MAX_CHANGESET_BYTES || la == 0 ||
	    la == len - FORK_FIXED) {
		snprintf(err, errlen,
		         "the fork record's first changeset is %u bytes of the %zu that follow its "
		         "header; each of the two must be 1 byte to 1 MiB",
		         la, len - FORK_FIXED);
		return LOKET_E_MALFORMED;
	}
	f->a = p + FORK_FIXED;
	f->la = la;
	f->b = f->a + la;
	f->lb = len - FORK_FIXED - la;
	return 0;
}

int bundle_decode_split(const uint8_t *p, size_t len, struct bundle_split *s, char *err,
                        size_t errlen)
{
	uint32_t la;

	memset(s, 0, sizeof(*s));
	if (len < 4) {
		snprintf(err, errlen, "the split-view record is %zu bytes, less than its fixed 4",
		         len);
		return LOKET_E_TRUNCATED;
	}
	la = mpread_be32(p);
	if (la == 0 || la > len - 4 || la > BUNDLE_MAX_NOTE_BYTES ||
	    len - 4 - la > BUNDLE_MAX_NOTE_BYTES) {
		snprintf(
		    err, errlen,
		    "the split-view record's first note is %u bytes of the %zu that follow; the "
		    "first must be 1 byte to 64 KiB, the second (none for a one-note proof) at "
		    "most 64 KiB",
		    la, len - 4);
		return LOKET_E_MALFORMED;
	}
	s->a = p + 4;
	s->la = la;
	s->b = s->a + la;
	s->lb = len - 4 - la;
	return 0;
}

int bundle_decode_manifest(const uint8_t *p, size_t len, struct bundle_manifest *m, char *err,
                           size_t errlen)
{
	size_t fl, at;

	memset(m, 0, sizeof(*m));
	if (len < MANIFEST_FIXED) {
		snprintf(err, errlen, "the manifest is %zu bytes, less than its fixed %u", len,
		         MANIFEST_FIXED);
		return LOKET_E_TRUNCATED;
	}
	fl = p[0];
	if (fl < 1 || fl > LOKET_MAX_FEDERATION_LEN || len < MANIFEST_FIXED + fl) {
		snprintf(err, errlen, "the manifest's federation is %zu bytes; it must be 1 to %u",
		         fl, LOKET_MAX_FEDERATION_LEN);
		return LOKET_E_MALFORMED;
	}
	m->federation = (const char *)p + 1;
	m->federation_len = fl;
	at = 1 + fl;
	m->n_members = mpread_be32(p + at);
	m->n_checkpoints = mpread_be32(p + at + 4);
	m->n_splits = mpread_be32(p + at + 8);
	m->n_forks = mpread_be32(p + at + 12);
	m->n_origins = mpread_be32(p + at + 16);
	at += 20;
	m->n_changesets = mpread_be64(p + at);
	m->n_ops = mpread_be64(p + at + 8);
	m->n_entities = mpread_be64(p + at + 16);
	at += 24;
	memcpy(m->digest, p + at, 32);
	at += 32;
	for (size_t i = 0; i < BUNDLE_N_SECTIONS; i++, at += 32)
		memcpy(m->section_hash[i], p + at, 32);
	if (m->n_origins > BUNDLE_MAX_ORIGINS || len - at != (size_t)m->n_origins * HEAD_BYTES) {
		snprintf(
		    err, errlen,
		    "the manifest lists %u origins in %zu bytes of heads; each head is %u bytes, "
		    "and at most %u origins",
		    m->n_origins, len - at, HEAD_BYTES, BUNDLE_MAX_ORIGINS);
		return LOKET_E_MALFORMED;
	}
	m->heads = p + at;
	return 0;
}

/* Writing. */

static int emit(struct bundle_writer *w, const void *p, size_t n)
{
	if (w->rc == 0 && n)
		w->rc = w->write(w->arg, p, n);
	sha256_update(&w->file, p, n);
	return w->rc;
}

int bundle_writer_init(struct bundle_writer *w, bundle_write_fn *fn, void *arg)
{
	memset(w, 0, sizeof(*w));
	w->write = fn;
	w->arg = arg;
	w->section = 0;
	sha256_init(&w->file);
	for (size_t i = 0; i < BUNDLE_N_SECTIONS; i++)
		sha256_init(&w->hash[i]);
	return emit(w, BUNDLE_MAGIC, BUNDLE_MAGIC_BYTES);
}

/* One record; sec is its section, or -1 for the manifest and the end (not section-hashed). */
static int put_record(struct bundle_writer *w, uint8_t tag, int sec,
                      const struct bundle_part *parts, size_t n_parts)
{
	uint8_t hdr[BUNDLE_HEADER_BYTES];
	size_t len = 0;

	for (size_t i = 0; i < n_parts; i++)
		len += parts[i].len;
	if (len > tag_max(tag) || (sec >= 0 && sec < w->section))
		return w->rc ? w->rc : (w->rc = LOKET_E_MALFORMED);
	hdr[0] = tag;
	put_be(hdr + 1, len, 4);
	emit(w, hdr, sizeof(hdr));
	if (sec >= 0)
		sha256_update(&w->hash[sec], hdr, sizeof(hdr));
	for (size_t i = 0; i < n_parts; i++) {
		emit(w, parts[i].p, parts[i].len);
		if (sec >= 0)
			sha256_update(&w->hash[sec], parts[i].p, parts[i].len);
	}
	if (sec >= 0) {
		w->section = sec;
		w->count[sec]++;
	}
	return w->rc;
}

int bundle_write(struct bundle_writer *w, uint8_t tag, const struct bundle_part *parts,
                 size_t n_parts)
{
	int sec = bundle_tag_section(tag);

	if (sec < 0)
		return w->rc ? w->rc : (w->rc = LOKET_E_MALFORMED);
	return put_record(w, tag, sec, parts, n_parts);
}

int bundle_write_member(struct bundle_writer *w, const uint8_t key[32], const char *name,
                        size_t name_len, const struct bundle_revoke *revoked, size_t n_revoked)
{
	uint8_t fixed[MEMBER_FIXED], rev[1 + 40 * BUNDLE_MAX_REVOKES];
	struct bundle_part parts[3] = {
	    {fixed, sizeof(fixed)}, {name, name_len}, {rev, n_revoked ? 1 + 40 * n_revoked : 0}};

	if (!valid_name(name, name_len) || n_revoked > BUNDLE_MAX_REVOKES)
		return w->rc ? w->rc : (w->rc = LOKET_E_MALFORMED);
	fixed[0] = n_revoked ? 2 : 1;
	memcpy(fixed + 1, key, 32);
	fixed[33] = (uint8_t)name_len;
	rev[0] = (uint8_t)n_revoked;
	for (size_t i = 0; i < n_revoked; i++) {
		memcpy(rev + 1 + 40 * i, revoked[i].key, 32);
		for (size_t b = 0; b < 8; b++)
			rev[1 + 40 * i + 32 + b] = (uint8_t)(revoked[i].after >> (56 - 8 * b));
	}
	return bundle_write(w, BUNDLE_MEMBER, parts, n_revoked ? 3 : 2);
}

int bundle_write_fork(struct bundle_writer *w, const uint8_t origin[32], uint64_t seq,
                      const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
	uint8_t fixed[FORK_FIXED];
	struct bundle_part parts[3] = {{fixed, sizeof(fixed)}, {a, la}, {b, lb}};

	memcpy(fixed, origin, 32);
	put_be(fixed + 32, seq, 8);
	put_be(fixed + 40, la, 4);
	return bundle_write(w, BUNDLE_FORK, parts, 3);
}

int bundle_write_finish(struct bundle_writer *w, const struct bundle_manifest *m,
                        const struct bundle_head *heads)
{
	uint8_t fixed[MANIFEST_FIXED + LOKET_MAX_FEDERATION_LEN], head[HEAD_BYTES], end[32];
	struct sha256 c;
	size_t at;

	if (m->federation_len < 1 || m->federation_len > LOKET_MAX_FEDERATION_LEN ||
	    m->n_origins > BUNDLE_MAX_ORIGINS)
		return w->rc ? w->rc : (w->rc = LOKET_E_MALFORMED);
	fixed[0] = (uint8_t)m->federation_len;
	memcpy(fixed + 1, m->federation, m->federation_len);
	at = 1 + m->federation_len;
	put_be(fixed + at, w->count[BUNDLE_S_ROSTER], 4);
	put_be(fixed + at + 4, w->count[BUNDLE_S_CHECKPOINTS], 4);
	put_be(fixed + at + 8, w->count[BUNDLE_S_SPLITS], 4);
	put_be(fixed + at + 12, w->count[BUNDLE_S_FORKS], 4);
	put_be(fixed + at + 16, m->n_origins, 4);
	at += 20;
	put_be(fixed + at, w->count[BUNDLE_S_CHANGESETS], 8);
	put_be(fixed + at + 8, m->n_ops, 8);
	put_be(fixed + at + 16, m->n_entities, 8);
	at += 24;
	memcpy(fixed + at, m->digest, 32);
	at += 32;
	for (size_t i = 0; i < BUNDLE_N_SECTIONS; i++, at += 32) {
		c = w->hash[i];
		sha256_final(&c, fixed + at);
	}
	uint8_t hdr[BUNDLE_HEADER_BYTES];
	hdr[0] = BUNDLE_MANIFEST;
	put_be(hdr + 1, at + (size_t)m->n_origins * HEAD_BYTES, 4);
	emit(w, hdr, sizeof(hdr));
	emit(w, fixed, at);
	for (size_t i = 0; i < m->n_origins; i++) {
		memcpy(head, heads[i].origin, 32);
		put_be(head + 32, heads[i].seq, 8);
		memcpy(head + 40, heads[i].hash, 32);
		emit(w, head, sizeof(head));
	}
	c = w->file;
	sha256_final(&c, end);
	hdr[0] = BUNDLE_END;
	put_be(hdr + 1, 32, 4);
	emit(w, hdr, sizeof(hdr));
	return emit(w, end, sizeof(end));
}

/* Reading. */

/* Reads exactly n bytes; 1 when the input ended first (*got says how many came). */
static int read_exact(struct bundle_reader *r, uint8_t *buf, size_t n, size_t *got)
{
	size_t have = 0;
	int rc;

	while (have < n) {
		size_t k = 0;
		if ((rc = r->read(r->arg, buf + have, n - have, &k)) < 0)
			return rc;
		if (k == 0)
			break;
		have += k;
	}
	*got = have;
	r->offset += have;
	return have < n;
}

int bundle_reader_init(struct bundle_reader *r, bundle_read_fn *fn, void *arg, char *err,
                       size_t errlen)
{
	uint8_t magic[BUNDLE_MAGIC_BYTES];
	size_t got;
	int rc;

	memset(r, 0, sizeof(*r));
	r->read = fn;
	r->arg = arg;
	r->section = -1;
	sha256_init(&r->file);
	for (size_t i = 0; i < BUNDLE_N_SECTIONS; i++)
		sha256_init(&r->hash[i]);
	rc = read_exact(r, magic, sizeof(magic), &got);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read the bundle: %s", loket_strerror(rc));
		return rc;
	}
	if (rc > 0 || memcmp(magic, BUNDLE_MAGIC, BUNDLE_MAGIC_BYTES - 1) != 0) {
		snprintf(err, errlen, "not a loket bundle: it does not start with \"loketbd\"");
		r->stage = 3;
		return LOKET_E_MALFORMED;
	}
	if (magic[BUNDLE_MAGIC_BYTES - 1] != 1) {
		snprintf(err, errlen, "a bundle of format version %u; this loket reads version 1",
		         magic[BUNDLE_MAGIC_BYTES - 1]);
		r->stage = 3;
		return LOKET_E_VERSION;
	}
	sha256_update(&r->file, magic, sizeof(magic));
	return 0;
}

void bundle_reader_fini(struct bundle_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
}

/* A printable name of a tag for messages. */
static const char *tag_name(uint8_t tag, char buf[8])
{
	if (tag >= 0x21 && tag < 0x7f)
		snprintf(buf, 8, "'%c'", tag);
	else
		snprintf(buf, 8, "0x%02x", tag);
	return buf;
}

static int fail(struct bundle_reader *r, int rc)
{
	r->stage = 3;
	return rc;
}

int bundle_next(struct bundle_reader *r, struct bundle_record *rec, char *err, size_t errlen)
{
	uint8_t hdr[BUNDLE_HEADER_BYTES], extra;
	uint64_t at = r->offset;
	size_t got, len;
	char tn[8];
	int rc, sec;

	memset(rec, 0, sizeof(*rec));
	if (r->stage == 3) {
		snprintf(err, errlen, "the bundle was not read to its end");
		return LOKET_E_MALFORMED;
	}
	if (r->stage == 2) {
		rc = read_exact(r, &extra, 1, &got);
		if (rc < 0) {
			snprintf(err, errlen, "cannot read the bundle: %s", loket_strerror(rc));
			return fail(r, rc);
		}
		if (rc == 0) {
			snprintf(err, errlen, "at byte %llu: bytes follow the end record",
			         (unsigned long long)at);
			return fail(r, LOKET_E_TRAILING);
		}
		return 1;
	}
	rc = read_exact(r, hdr, sizeof(hdr), &got);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read the bundle: %s", loket_strerror(rc));
		return fail(r, rc);
	}
	if (rc > 0) {
		if (got == 0)
			snprintf(err, errlen, "at byte %llu: the bundle ends before its %s",
			         (unsigned long long)at, r->stage ? "end record" : "manifest");
		else
			snprintf(err, errlen,
			         "at byte %llu: the bundle ends inside a record header",
			         (unsigned long long)at);
		return fail(r, LOKET_E_TRUNCATED);
	}
	len = mpread_be32(hdr + 1);
	sec = bundle_tag_section(hdr[0]);
	if (!tag_max(hdr[0])) {
		snprintf(err, errlen, "at byte %llu: record tag %s is none of R K S F C M E",
		         (unsigned long long)at, tag_name(hdr[0], tn));
		return fail(r, LOKET_E_MALFORMED);
	}
	if ((r->stage == 0 && hdr[0] == BUNDLE_END) || (r->stage == 1 && hdr[0] != BUNDLE_END)) {
		snprintf(err, errlen, "at byte %llu: a record %s where the %s must come",
		         (unsigned long long)at, tag_name(hdr[0], tn),
		         r->stage ? "end record" : "manifest");
		return fail(r, LOKET_E_MALFORMED);
	}
	if (sec >= 0 && sec < r->section) {
		snprintf(err, errlen,
		         "at byte %llu: a record of the %s section after the %s section; sections "
		         "come in the order roster, checkpoints, split views, forks, changesets",
		         (unsigned long long)at, bundle_section_name((enum bundle_section)sec),
		         bundle_section_name((enum bundle_section)r->section));
		return fail(r, LOKET_E_MALFORMED);
	}
	if (len > tag_max(hdr[0]) || (hdr[0] == BUNDLE_END && len != 32)) {
		snprintf(err, errlen,
		         "at byte %llu: record %s is %zu bytes, more than the %zu it may be",
		         (unsigned long long)at, tag_name(hdr[0], tn), len, tag_max(hdr[0]));
		return fail(r, LOKET_E_TOO_BIG);
	}
	if (len > r->cap) {
		/* Grown only as large as the record, which the bound above keeps small. */
		uint8_t *nb = realloc(r->buf, len);
		if (!nb)
			abort();
		r->buf = nb;
		r->cap = len;
	}
	rc = read_exact(r, r->buf, len, &got);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read the bundle: %s", loket_strerror(rc));
		return fail(r, rc);
	}
	if (rc > 0) {
		snprintf(err, errlen,
		         "at byte %llu: record %s says %zu bytes, and the bundle ends after %zu",
		         (unsigned long long)at, tag_name(hdr[0], tn), len, got);
		return fail(r, LOKET_E_TRUNCATED);
	}
	if (hdr[0] == BUNDLE_END) {
		struct sha256 c = r->file;
		sha256_final(&c, r->file_hash);
		r->stage = 2;
	} else {
		sha256_update(&r->file, hdr, sizeof(hdr));
		sha256_update(&r->file, r->buf, len);
	}
	if (sec >= 0) {
		sha256_update(&r->hash[sec], hdr, sizeof(hdr));
		sha256_update(&r->hash[sec], r->buf, len);
		r->section = sec;
		r->count[sec]++;
	} else if (hdr[0] == BUNDLE_MANIFEST) {
		for (size_t i = 0; i < BUNDLE_N_SECTIONS; i++) {
			struct sha256 c = r->hash[i];
			sha256_final(&c, r->section_hash[i]);
		}
		r->stage = 1;
	}
	rec->tag = hdr[0];
	rec->p = r->buf;
	rec->len = len;
	rec->offset = at;
	rec->index = r->records++;
	return 0;
}
