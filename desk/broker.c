/*
 * broker (the kennismakelaar): ranks the experts, resources and
 * projects of every institution by how well they fit one question, and
 * says why. Two signals are combined:
 *
 *   text    the words of the question's title, body and neighbourhood, in
 *           Dutch and English (the "_en" twins), and of its topics, folded,
 *           without stopwords, each looked up on its own in the FTS5 index
 *           (a word of 6 bytes or more as a prefix of its stem, so
 *           "eenzaamheid" finds "eenzaam" and "residents" "resident"); the
 *           bm25 scores of the words an entity matches are summed, which is
 *           bm25 of their OR, and scaled so the best text match gets 1;
 *   topics  the question's topics an entity also lists, compared folded.
 *
 * score = MATCH_TOPIC_WEIGHT * shared topics + MATCH_TEXT_WEIGHT * text.
 * Curated topics weigh one each; text can add up to two, so a strong text
 * match beats one shared topic but not three. Each result names its
 * shared topics and matched terms. Nothing here writes.
 */
#include "desk/broker.h"

#include <stdlib.h>
#include <string.h>

#include "desk/text.h"
#include "proto/error.h"
#include "proto/limits.h"
#include "store/store_sql.h"

/* Words looked up; one bit each in a hit's mask. */
#define MATCH_MAX_TERMS LOKET_MAX_MATCH_WORDS
_Static_assert(MATCH_MAX_TERMS <= 64, "a hit's mask has 64 bits");
#define MATCH_MIN_WORD 3  /* shorter words say too little */
#define MATCH_MAX_WORD 64 /* longer "words" are not words */
/* Hits kept per term, best first: bounds memory when a word is everywhere. */
#define MATCH_TERM_HITS_S  "5000"
#define MATCH_TOPIC_WEIGHT 1.0
#define MATCH_TEXT_WEIGHT  2.0

struct term {
	char *word; /* folded, as reported in "matched_terms" */
	char *fts;  /* the FTS5 query: "word" or "stem"* */
};

struct terms {
	struct term t[MATCH_MAX_TERMS];
	size_t n;
};

/* One entity's text matches: summed bm25 (higher is better) and which terms. */
struct hit {
	sqlite3_int64 rowid;
	double text;
	uint64_t mask;
};

struct hits {
	struct hit *h;
	size_t n, cap;
};

static void terms_free(struct terms *ts)
{
	for (size_t i = 0; i < ts->n; i++) {
		free(ts->t[i].word);
		free(ts->t[i].fts);
	}
	ts->n = 0;
}

static int all_digits(const char *w, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (w[i] < '0' || w[i] > '9')
			return 0;
	return 1;
}

static char *dup_n(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (!p)
		abort();
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* Adds the words of text (UTF-8) that are worth looking up, once each. */
static void terms_add_text(struct terms *ts, const char *text)
{
	char *folded = text_fold(text, strlen(text));
	const char *p = folded, *end = folded + strlen(folded), *w;
	size_t len;

	while (ts->n < MATCH_MAX_TERMS && text_next_word(&p, end, &w, &len)) {
		size_t stem = text_stem(w, len);
		char fts[MATCH_MAX_WORD + 8];
		int n, seen = 0;

		if (len < MATCH_MIN_WORD || len > MATCH_MAX_WORD || all_digits(w, len) ||
		    text_stopword(w, len))
			continue;
		/* Words are letters and digits only: nothing to escape inside the quotes. */
		if (len < 6)
			n = snprintf(fts, sizeof(fts), "\"%.*s\"", (int)len, w);
		else
			n = snprintf(fts, sizeof(fts), "\"%.*s\"*", (int)stem, w);
		if (n < 0 || (size_t)n >= sizeof(fts))
			continue;
		for (size_t i = 0; i < ts->n && !seen; i++)
			seen = !strcmp(ts->t[i].fts, fts);
		if (seen)
			continue;
		ts->t[ts->n].word = dup_n(w, len);
		ts->t[ts->n].fts = dup_n(fts, (size_t)n);
		ts->n++;
	}
	free(folded);
}

static void terms_add_field(struct terms *ts, const json_t *fields, const char *key)
{
	const char *v = json_string_value(json_object_get(fields, key));

	if (v)
		terms_add_text(ts, v);
}

static void hits_push(struct hits *hs, sqlite3_int64 rowid, double text, uint64_t mask)
{
	if (hs->n == hs->cap) {
		hs->cap = hs->cap ? 2 * hs->cap : 64;
		hs->h = realloc(hs->h, hs->cap * sizeof(*hs->h));
		if (!hs->h)
			abort();
	}
	hs->h[hs->n++] = (struct hit){rowid, text, mask};
}

static int hit_cmp(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;

	return (x->rowid > y->rowid) - (x->rowid < y->rowid);
}

/* Sorts the hits by rowid and merges those of one entity. */
static void hits_merge(struct hits *hs)
{
	size_t o = 0;

	if (hs->n == 0)
		return;
	qsort(hs->h, hs->n, sizeof(*hs->h), hit_cmp);
	for (size_t i = 1; i < hs->n; i++) {
		if (hs->h[i].rowid == hs->h[o].rowid) {
			hs->h[o].text += hs->h[i].text;
			hs->h[o].mask |= hs->h[i].mask;
		} else {
			hs->h[++o] = hs->h[i];
		}
	}
	hs->n = o + 1;
}

static const struct hit *hits_find(const struct hits *hs, sqlite3_int64 rowid)
{
	struct hit key = {.rowid = rowid};

	return hs->n ? bsearch(&key, hs->h, hs->n, sizeof(*hs->h), hit_cmp) : NULL;
}

/* Looks up every term on its own; bm25 of each is added to the entity's text score. */
static int text_hits(struct store *s, const struct terms *ts, struct hits *hs)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc = 0, step;

	if (ts->n == 0)
		return 0;
	if ((rc = store_search_db(s, &db)) < 0)
		return rc;
	if (sqlite3_prepare_v2(db,
	                       "SELECT e.rowid, search.rank FROM main.search"
	                       " JOIN store.entity e ON e.rowid = search.rowid"
	                       " WHERE search MATCH ?1 AND e.deleted = 0"
	                       " AND e.coll IN ('expert', 'resource', 'project')"
	                       " ORDER BY search.rank LIMIT " MATCH_TERM_HITS_S,
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail_db(s, db, "cannot prepare the match query");
	for (size_t i = 0; i < ts->n; i++) {
		sqlite3_bind_text(st, 1, ts->t[i].fts, -1, SQLITE_STATIC);
		while ((step = sqlite3_step(st)) == SQLITE_ROW)
			hits_push(hs, sqlite3_column_int64(st, 0), -sqlite3_column_double(st, 1),
			          (uint64_t)1 << i);
		sqlite3_reset(st);
		if (step != SQLITE_DONE) {
			rc = store_sqlite_fail_db(s, db, "cannot look up a term");
			break;
		}
	}
	sqlite3_finalize(st);
	hits_merge(hs);
	return rc;
}

/* The question's topics, folded once: folded[i] for element i (NULL if not a string). */
struct qtopics {
	const json_t *arr;
	char **folded;
	size_t n;
};

/* Folds s and trims spaces, as text_equal compares; a new malloc'd string. */
static char *fold_trim(const char *s)
{
	char *f = text_fold(s, strlen(s));
	size_t start = 0, len = strlen(f);

	while (f[start] == ' ')
		start++;
	while (len > start && f[len - 1] == ' ')
		len--;
	memmove(f, f + start, len - start);
	f[len - start] = '\0';
	return f;
}

static void qtopics_init(struct qtopics *qt, const json_t *arr)
{
	const json_t *t;
	size_t i;

	qt->arr = arr;
	qt->n = json_array_size(arr);
	qt->folded = calloc(qt->n ? qt->n : 1, sizeof(*qt->folded));
	if (!qt->folded)
		abort();
	json_array_foreach(arr, i, t)
	{
		if (json_is_string(t))
			qt->folded[i] = fold_trim(json_string_value(t));
	}
}

static void qtopics_fini(struct qtopics *qt)
{
	for (size_t i = 0; i < qt->n; i++)
		free(qt->folded[i]);
	free(qt->folded);
}

/*
 * Marks in seen (room for qt->n flags) the question's topics an entity's
 * topics (JSON text) also list, compared folded.
 */
static void shared_topics(const struct qtopics *qt, const char *topics_json, size_t len,
                          unsigned char *seen)
{
	json_t *topics, *t;
	json_error_t jerr;
	size_t i, j;

	memset(seen, 0, qt->n);
	topics = topics_json && qt->n ? json_loadb(topics_json, len, 0, &jerr) : NULL;
	json_array_foreach(topics, j, t)
	{
		char *f;

		if (!json_is_string(t))
			continue;
		f = fold_trim(json_string_value(t));
		for (i = 0; i < qt->n; i++)
			if (qt->folded[i] && !strcmp(qt->folded[i], f))
				seen[i] = 1;
		free(f);
	}
	json_decref(topics);
}

/* A candidate: enough to rank it; its JSON is made only if it makes the list. */
struct cand {
	sqlite3_int64 rowid;
	double text;
	double score;
	uint64_t mask;   /* terms matched, bit per term */
	uint64_t shared; /* question topics shared, bit per topic (the first 64) */
	unsigned n_shared;
	size_t owner; /* index into struct owners */
	char coll[LOKET_MAX_COLL_LEN + 1];
	char id[LOKET_MAX_ID_LEN + 1];
};

struct cands {
	struct cand *c;
	size_t n, cap;
};

/* The owners met while gathering, each named once (members are few). */
struct owners {
	uint8_t (*key)[32];
	json_t **name;
	size_t n, cap;
};

static size_t owners_index(struct store *s, struct owners *os, const uint8_t key[32])
{
	for (size_t i = 0; i < os->n; i++)
		if (!memcmp(os->key[i], key, 32))
			return i;
	if (os->n == os->cap) {
		os->cap = os->cap ? 2 * os->cap : 16;
		os->key = realloc(os->key, os->cap * sizeof(*os->key));
		os->name = realloc(os->name, os->cap * sizeof(*os->name));
		if (!os->key || !os->name)
			abort();
	}
	memcpy(os->key[os->n], key, 32);
	os->name[os->n] = store_owner_json(s, key);
	return os->n++;
}

static void owners_free(struct owners *os)
{
	for (size_t i = 0; i < os->n; i++)
		json_decref(os->name[i]);
	free(os->key);
	free(os->name);
}

static void cands_push(struct cands *cs, const struct cand *c)
{
	if (cs->n == cs->cap) {
		cs->cap = cs->cap ? 2 * cs->cap : 64;
		cs->c = realloc(cs->c, cs->cap * sizeof(*cs->c));
		if (!cs->c)
			abort();
	}
	cs->c[cs->n++] = *c;
}

/* Best first; ties by owner, then collection and id, so every node ranks alike. */
static int cand_cmp(const void *a, const void *b, void *arg)
{
	const struct cand *x = a, *y = b;
	const struct owners *os = arg;
	int c;

	if (x->score != y->score)
		return x->score < y->score ? 1 : -1;
	c = strcmp(json_string_value(os->name[x->owner]), json_string_value(os->name[y->owner]));
	if (c == 0)
		c = strcmp(x->coll, y->coll);
	if (c == 0)
		c = strcmp(x->id, y->id);
	return c;
}

/*
 * Walks every live expert, resource and project: those with a text hit or
 * a shared topic become candidates.
 */
static int gather(struct store *s, const json_t *qtopics, const struct hits *hs, struct owners *os,
                  struct cands *cs)
{
	sqlite3_stmt *st = NULL;
	struct qtopics qt;
	unsigned char *seen;
	int rc = 0, step;

	qtopics_init(&qt, qtopics);
	seen = malloc(qt.n ? qt.n : 1);
	if (!seen)
		abort();
	if (sqlite3_prepare_v2(store_sql_db(s),
	                       "SELECT e.rowid, e.coll, e.owner, e.id,"
	                       " json_extract(e.fields, '$.topics')"
	                       " FROM entity e WHERE e.deleted = 0"
	                       " AND e.coll IN ('expert', 'resource', 'project')",
	                       -1, &st, NULL) != SQLITE_OK) {
		rc = store_sqlite_fail(s, "cannot prepare the match query");
		goto cleanup;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const struct hit *h = hits_find(hs, sqlite3_column_int64(st, 0));
		const char *coll = (const char *)sqlite3_column_text(st, 1);
		const char *id = (const char *)sqlite3_column_text(st, 3);
		struct cand c = {.rowid = sqlite3_column_int64(st, 0)};

		shared_topics(&qt, (const char *)sqlite3_column_text(st, 4),
		              (size_t)sqlite3_column_bytes(st, 4), seen);
		for (size_t i = 0; i < qt.n; i++) {
			if (!seen[i])
				continue;
			c.n_shared++;
			if (i < 64)
				c.shared |= (uint64_t)1 << i;
		}
		if ((!h && c.n_shared == 0) || sqlite3_column_bytes(st, 2) != 32 || !coll || !id ||
		    strlen(coll) >= sizeof(c.coll) || strlen(id) >= sizeof(c.id))
			continue;
		c.text = h ? h->text : 0;
		c.mask = h ? h->mask : 0;
		c.owner = owners_index(s, os, sqlite3_column_blob(st, 2));
		memcpy(c.coll, coll, strlen(coll) + 1);
		memcpy(c.id, id, strlen(id) + 1);
		cands_push(cs, &c);
	}
	if (step != SQLITE_DONE)
		rc = store_sqlite_fail(s, "cannot read the directory");
cleanup:
	sqlite3_finalize(st);
	free(seen);
	qtopics_fini(&qt);
	return rc;
}

/* The result object of one ranked candidate. */
static int cand_json(struct store *s, sqlite3_stmt *name_st, const struct cand *c,
                     const struct owners *os, const json_t *qtopics, const struct terms *ts,
                     json_t **out)
{
	json_t *item = json_object(), *shared = json_array(), *matched = json_array();
	const char *name = NULL;
	int step;

	sqlite3_bind_int64(name_st, 1, c->rowid);
	step = sqlite3_step(name_st);
	if (step == SQLITE_ROW)
		name = (const char *)sqlite3_column_text(name_st, 0);
	json_object_set_new(item, "coll", json_string(c->coll));
	json_object_set(item, "owner", os->name[c->owner]);
	json_object_set_new(item, "id", json_string(c->id));
	json_object_set_new(item, "name", name ? json_string(name) : json_null());
	sqlite3_reset(name_st);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		json_decref(item);
		json_decref(shared);
		json_decref(matched);
		return store_sqlite_fail(s, "cannot read a match's name");
	}
	json_object_set_new(item, "score", json_real(c->score));
	for (size_t k = 0; k < json_array_size(qtopics) && k < 64; k++)
		if (c->shared & ((uint64_t)1 << k))
			json_array_append(shared, json_array_get(qtopics, k));
	for (size_t k = 0; k < ts->n; k++)
		if (c->mask & ((uint64_t)1 << k))
			json_array_append_new(matched, json_string(ts->t[k].word));
	json_object_set_new(item, "shared_topics", shared);
	json_object_set_new(item, "matched_terms", matched);
	*out = item;
	return 0;
}

int broker_match(struct store *s, const char *owner, const char *id, long limit, json_t **out)
{
	struct terms ts = {.n = 0};
	struct hits hs = {0};
	struct cands cs = {0};
	struct owners os = {0};
	sqlite3_stmt *name_st = NULL;
	json_t *qs = NULL, *q, *fields, *qtopics, *t, *arr = NULL, *item = NULL;
	double best = 0;
	size_t i;
	int rc;

	*out = NULL;
	store_clear_error(s);
	if ((rc = store_get(s, "question", id, owner, &qs)) < 0)
		goto cleanup;
	if (json_array_size(qs) == 0) {
		char qref[ERROR_QUOTE_SIZE];
		store_set_error(s, "%s not found",
		                error_quotef(qref, sizeof(qref), "question/%s/%s", owner, id));
		rc = LOKET_E_NOT_FOUND;
		goto cleanup;
	}
	q = json_array_get(qs, 0);
	fields = json_object_get(q, "fields");
	qtopics = json_object_get(fields, "topics");
	if (!json_is_array(qtopics))
		qtopics = NULL;
	json_array_foreach(qtopics, i, t)
	{
		if (json_is_string(t))
			terms_add_text(&ts, json_string_value(t));
	}
	terms_add_field(&ts, fields, "title");
	terms_add_field(&ts, fields, "title_en");
	terms_add_field(&ts, fields, "neighbourhood");
	terms_add_field(&ts, fields, "body");
	terms_add_field(&ts, fields, "body_en");

	if ((rc = text_hits(s, &ts, &hs)) < 0 || (rc = gather(s, qtopics, &hs, &os, &cs)) < 0)
		goto cleanup;
	for (i = 0; i < cs.n; i++)
		if (cs.c[i].text > best)
			best = cs.c[i].text;
	for (i = 0; i < cs.n; i++) {
		double text = best > 0 ? cs.c[i].text / best : 0;
		double score =
		    MATCH_TOPIC_WEIGHT * (double)cs.c[i].n_shared + MATCH_TEXT_WEIGHT * text;

		/* Three decimals: the same figure on every node and in every output. */
		cs.c[i].score = (double)(long long)(score * 1000 + 0.5) / 1000; /* score >= 0 */
	}
	qsort_r(cs.c, cs.n, sizeof(*cs.c), cand_cmp, &os);
	if (sqlite3_prepare_v2(store_sql_db(s),
	                       "SELECT json_extract(fields, '$.name') FROM entity"
	                       " WHERE rowid = ?1",
	                       -1, &name_st, NULL) != SQLITE_OK) {
		rc = store_sqlite_fail(s, "cannot prepare the match query");
		goto cleanup;
	}
	arr = json_array();
	for (i = 0; i < cs.n && (limit <= 0 || (long)i < limit); i++) {
		if ((rc = cand_json(s, name_st, &cs.c[i], &os, qtopics, &ts, &item)) < 0)
			goto cleanup;
		json_array_append_new(arr, item);
	}
	*out = arr;
	arr = NULL;
cleanup:
	sqlite3_finalize(name_st);
	json_decref(arr);
	json_decref(qs);
	free(cs.c);
	owners_free(&os);
	free(hs.h);
	terms_free(&ts);
	return rc;
}
