/*
 * bundle: the audit bundle's file format (proto/FORMAT.md, section 15), a
 * magic and then length-prefixed records, one section after another
 * (roster, checkpoints, split views, forks, changesets), closed by a
 * manifest and an end record that hashes the whole file. This module owns
 * the framing and the fixed layouts of the records: a writer that puts
 * records in order and hashes each section and the file as they pass, and
 * a strict reader that takes records one at a time, so that a bundle of
 * any size is written and read in the memory of its largest record. Bytes
 * go through callbacks: proto/ does no I/O. What a record's payload means
 * (a changeset's signature, a fork's two changesets, the heads) is checked
 * by the verifier (store/store_bundle.c); this module checks only that
 * each record is where it may be and has its layout.
 */
#ifndef LOKET_BUNDLE_H
#define LOKET_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/sha256.h"

/* "loketbd" and the format version, 1. */
#define BUNDLE_MAGIC        "loketbd\001"
#define BUNDLE_MAGIC_BYTES  8u
#define BUNDLE_HEADER_BYTES 5u /* tag, then the payload's length (4 bytes, big-endian) */

enum bundle_tag {
	BUNDLE_MEMBER = 'R',     /* a roster entry */
	BUNDLE_CHECKPOINT = 'K', /* a signed checkpoint with its cosignatures */
	BUNDLE_SPLIT = 'S',      /* a split-view proof: two signed checkpoints */
	BUNDLE_FORK = 'F',       /* a fork proof: two changesets of one seq */
	BUNDLE_CHANGESET = 'C',  /* a signed changeset */
	BUNDLE_MANIFEST = 'M',
	BUNDLE_END = 'E',
};

/* The sections in the order they come; each is hashed on its own. */
enum bundle_section {
	BUNDLE_S_ROSTER,
	BUNDLE_S_CHECKPOINTS,
	BUNDLE_S_SPLITS,
	BUNDLE_S_FORKS,
	BUNDLE_S_CHANGESETS,
	BUNDLE_N_SECTIONS,
};

/* Bounds (FORMAT.md 15.2): origins a manifest lists, bytes of one signed note. */
#define BUNDLE_MAX_ORIGINS    4096u
#define BUNDLE_MAX_NOTE_BYTES (64u * 1024u)
#define BUNDLE_MAX_RECORD     (2u * 1024u * 1024u + 64u) /* a fork record, the largest */

/* "roster", "checkpoints", ... as messages name them. */
const char *bundle_section_name(enum bundle_section s);

/* The section a tag belongs to, or -1 for the manifest, the end and unknown tags. */
int bundle_tag_section(uint8_t tag);

/* A key the roster revokes for a member after a seq (FORMAT.md, 14.3). */
#define BUNDLE_MAX_REVOKES 4u
struct bundle_revoke {
	uint8_t key[32];
	uint64_t after;
};

/*
 * A roster entry: one key (the member's origin) and the member's name,
 * and (version 2) the keys the exporting node's configuration revokes
 * for it. A member with no revocation is written as version 1.
 */
struct bundle_member {
	uint8_t version;
	uint8_t key[32];
	const char *name; /* into the payload, name_len bytes, [a-z0-9_-] */
	size_t name_len;
	size_t n_revoked;
	struct bundle_revoke revoked[BUNDLE_MAX_REVOKES];
};

struct bundle_fork {
	uint8_t origin[32];
	uint64_t seq;
	const uint8_t *a, *b; /* the two signed changesets, into the payload */
	size_t la, lb;
};

struct bundle_split {
	const uint8_t *a, *b; /* the two signed notes; lb 0 for a one-note proof */
	size_t la, lb;
};

struct bundle_head {
	uint8_t origin[32];
	uint64_t seq;
	uint8_t hash[32];
};

struct bundle_manifest {
	const char *federation; /* 1..64 bytes, not NUL-terminated */
	size_t federation_len;
	uint32_t n_members, n_checkpoints, n_splits, n_forks, n_origins;
	uint64_t n_changesets, n_ops, n_entities;
	uint8_t digest[32];
	const uint8_t *heads; /* n_origins heads of 72 bytes each; bundle_manifest_head reads one */
	uint8_t section_hash[BUNDLE_N_SECTIONS][32];
};

/* Head i of a decoded manifest. */
void bundle_manifest_head(const struct bundle_manifest *m, size_t i, struct bundle_head *h);

/*
 * Payload decoders: 0, or a LOKET_E_* code with a sentence in err. The
 * results point into p.
 */
int bundle_decode_member(const uint8_t *p, size_t len, struct bundle_member *m, char *err,
                         size_t errlen);
int bundle_decode_fork(const uint8_t *p, size_t len, struct bundle_fork *f, char *err,
                       size_t errlen);
int bundle_decode_split(const uint8_t *p, size_t len, struct bundle_split *s, char *err,
                        size_t errlen);
int bundle_decode_manifest(const uint8_t *p, size_t len, struct bundle_manifest *m, char *err,
                           size_t errlen);

/* Writes n bytes; 0 or a negative code (the writer stops at the first). */
typedef int bundle_write_fn(void *arg, const void *p, size_t n);

struct bundle_writer {
	bundle_write_fn *write;
	void *arg;
	int section; /* the section of the last record written */
	uint32_t count[BUNDLE_N_SECTIONS];
	struct sha256 file;
	struct sha256 hash[BUNDLE_N_SECTIONS];
	int rc; /* the first failure */
};

/* A part of a record's payload; a record is written from up to 4. */
struct bundle_part {
	const void *p;
	size_t len;
};

/* Writes the magic. */
int bundle_writer_init(struct bundle_writer *w, bundle_write_fn *fn, void *arg);
/*
 * Writes one record of a section's tag from parts; records must come in
 * section order (LOKET_E_MALFORMED otherwise, or for a payload beyond its
 * tag's bound: a bug of the caller).
 */
int bundle_write(struct bundle_writer *w, uint8_t tag, const struct bundle_part *parts,
                 size_t n_parts);
/* Version 1 when n_revoked is 0, else version 2 (at most BUNDLE_MAX_REVOKES). */
int bundle_write_member(struct bundle_writer *w, const uint8_t key[32], const char *name,
                        size_t name_len, const struct bundle_revoke *revoked, size_t n_revoked);
int bundle_write_fork(struct bundle_writer *w, const uint8_t origin[32], uint64_t seq,
                      const uint8_t *a, size_t la, const uint8_t *b, size_t lb);
/*
 * The manifest from m (its section hashes and record counts are the
 * writer's own, n_members and the like taken from what was written; heads
 * from the array), then the end record. The bundle is then complete.
 */
int bundle_write_finish(struct bundle_writer *w, const struct bundle_manifest *m,
                        const struct bundle_head *heads);

/*
 * Reads up to n bytes into buf: 0 with *got the number read, fewer than n
 * only at the end of the input; or a negative code.
 */
typedef int bundle_read_fn(void *arg, uint8_t *buf, size_t n, size_t *got);

struct bundle_reader {
	bundle_read_fn *read;
	void *arg;
	uint8_t *buf; /* the current record's payload */
	size_t cap;
	uint64_t offset;  /* bytes read so far */
	int section;      /* of the last record; -1 before the first */
	int stage;        /* 0 sections, 1 after the manifest, 2 after the end */
	uint64_t records; /* records read */
	uint32_t count[BUNDLE_N_SECTIONS];
	struct sha256 file;
	struct sha256 hash[BUNDLE_N_SECTIONS];
	/* Made when the manifest is read: what the sections and the file before the end hash to. */
	uint8_t section_hash[BUNDLE_N_SECTIONS][32];
	uint8_t file_hash[32];
};

struct bundle_record {
	uint8_t tag;
	const uint8_t *p; /* the payload, valid until the next bundle_next */
	size_t len;
	uint64_t offset; /* of the record's first byte in the file */
	uint64_t index;  /* 0 for the first record */
};

/* Reads and checks the magic: 0, or a negative code with a sentence in err. */
int bundle_reader_init(struct bundle_reader *r, bundle_read_fn *fn, void *arg, char *err,
                       size_t errlen);
void bundle_reader_fini(struct bundle_reader *r);

/*
 * The next record: 0 with *rec filled (the end record included: its
 * payload is the file hash it claims, r->file_hash the file's), 1 once the
 * end record was read and nothing follows it, or a negative code with a
 * sentence in err naming the offset and what is wrong there (a record out
 * of order, of an unknown tag, longer than its tag allows, cut short,
 * bytes after the end). After a failure the reader reads no further.
 */
int bundle_next(struct bundle_reader *r, struct bundle_record *rec, char *err, size_t errlen);

#endif
