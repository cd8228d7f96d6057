/*
 * The broker (the kennismakelaar): ranks the experts, resources and
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
#include <stdlib.h>
#include <string.h>

#include "../proto/error.h"
#include "../proto/limits.h"
#include "store_int.h"
#include "store_text.h"

#define MATCH_MAX_TERMS 64 /* words looked up; one bit each in a hit's mask */
#define MATCH_MIN_WORD  3  /* shorter words say too little */
#define MATCH_MAX_WORD  64 /* longer "words" are not words */
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

/* A ranked result before it becomes JSON. */
struct cand {
	double text;
	double score;
	uint64_t mask;
	json_t *item; /* {"coll","owner","id","name","shared_topics"} so far */
	size_t n_shared;
};

struct cands {
	struct cand *c;
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
	char *folded = store_text_fold(text, strlen(text));
	const char *p = folded, *end = folded + strlen(folded), *w;
	size_t len;

	while (ts->n < MATCH_MAX_TERMS && store_text_next_word(&p, end, &w, &len)) {
		size_t stem = store_text_stem(w, len);
		char fts[MATCH_MAX_WORD + 8];
		int n, seen = 0;

		if (len < MATCH_MIN_WORD || len > MATCH_MAX_WORD || all_digits(w, len) ||
		    store_text_stopword(w, len))
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
	int rc = 0, step;

	if (ts->n == 0)
		return 0;
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT e.rowid, search.rank FROM search"
	                       " JOIN entity e ON e.rowid = search.rowid"
	                       " WHERE search MATCH ?1 AND e.deleted = 0"
	                       " AND e.coll IN ('expert', 'resource', 'project')"
	                       " ORDER BY search.rank LIMIT " MATCH_TERM_HITS_S,
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot prepare the match query");
	for (size_t i = 0; i < ts->n; i++) {
		sqlite3_bind_text(st, 1, ts->t[i].fts, -1, SQLITE_STATIC);
		while ((step = sqlite3_step(st)) == SQLITE_ROW)
			hits_push(hs, sqlite3_column_int64(st, 0), -sqlite3_column_double(st, 1),
			          (uint64_t)1 << i);
		sqlite3_reset(st);
		if (step != SQLITE_DONE) {
			rc = store_sqlite_fail(s, "cannot look up a term");
			break;
		}
	}
	sqlite3_finalize(st);
	hits_merge(hs);
	return rc;
}

/* The question's topics an entity's topics (JSON text) also list, in the question's order. */
static json_t *shared_topics(const json_t *qtopics, const char *topics_json, size_t len)
{
	json_t *shared = json_array(), *topics, *q, *t;
	json_error_t jerr;
	size_t i, j;

	topics = topics_json ? json_loadb(topics_json, len, 0, &jerr) : NULL;
	if (!json_is_array(topics)) {
		json_decref(topics);
		return shared;
	}
	json_array_foreach(qtopics, i, q)
	{
		if (!json_is_string(q))
			continue;
		json_array_foreach(topics, j, t)
		{
			if (json_is_string(t) &&
			    store_text_equal(json_string_value(q), json_string_value(t))) {
				json_array_append(shared, q);
				break;
			}
		}
	}
	json_decref(topics);
	return shared;
}

static void cands_push(struct cands *cs, struct cand c)
{
	if (cs->n == cs->cap) {
		cs->cap = cs->cap ? 2 * cs->cap : 64;
		cs->c = realloc(cs->c, cs->cap * sizeof(*cs->c));
		if (!cs->c)
			abort();
	}
	cs->c[cs->n++] = c;
}

static void cands_free(struct cands *cs)
{
	for (size_t i = 0; i < cs->n; i++)
		json_decref(cs->c[i].item);
	free(cs->c);
}

/* Best first; ties by owner, then collection and id, so every node ranks alike. */
static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	int c;

	if (x->score != y->score)
		return x->score < y->score ? 1 : -1;
	c = strcmp(json_string_value(json_object_get(x->item, "owner")),
	           json_string_value(json_object_get(y->item, "owner")));
	if (c == 0)
		c = strcmp(json_string_value(json_object_get(x->item, "coll")),
		           json_string_value(json_object_get(y->item, "coll")));
	if (c == 0)
		c = strcmp(json_string_value(json_object_get(x->item, "id")),
		           json_string_value(json_object_get(y->item, "id")));
	return c;
}

/*
 * Walks every live expert, resource and project: those with a text hit or
 * a shared topic become candidates.
 */
static int gather(struct store *s, const json_t *qtopics, const struct hits *hs, struct cands *cs)
{
	sqlite3_stmt *st = NULL;
	int rc = 0, step;

	if (sqlite3_prepare_v2(
	        s->db,
	        "SELECT e.rowid, e.coll, e.owner, e.id,"
	        " json_extract(e.fields, '$.name'), json_extract(e.fields, '$.topics')"
	        " FROM entity e WHERE e.deleted = 0"
	        " AND e.coll IN ('expert', 'resource', 'project')",
	        -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot prepare the match query");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const struct hit *h = hits_find(hs, sqlite3_column_int64(st, 0));
		const char *topics = (const char *)sqlite3_column_text(st, 5);
		const char *name = (const char *)sqlite3_column_text(st, 4);
		json_t *shared =
		    json_array_size(qtopics)
		        ? shared_topics(qtopics, topics, (size_t)sqlite3_column_bytes(st, 5))
		        : json_array();
		json_t *item;

		if (!h && json_array_size(shared) == 0) {
			json_decref(shared);
			continue;
		}
		item = json_object();
		json_object_set_new(item, "coll",
		                    json_string((const char *)sqlite3_column_text(st, 1)));
		if (sqlite3_column_bytes(st, 2) == 32)
			json_object_set_new(item, "owner",
			                    store_owner_json(s, sqlite3_column_blob(st, 2)));
		else
			json_object_set_new(item, "owner", json_string(""));
		json_object_set_new(item, "id",
		                    json_string((const char *)sqlite3_column_text(st, 3)));
		json_object_set_new(item, "name", name ? json_string(name) : json_null());
		cands_push(cs, (struct cand){.text = h ? h->text : 0,
		                             .mask = h ? h->mask : 0,
		                             .n_shared = json_array_size(shared),
		                             .item = item});
		json_object_set_new(item, "shared_topics", shared);
	}
	if (step != SQLITE_DONE)
		rc = store_sqlite_fail(s, "cannot read the directory");
	sqlite3_finalize(st);
	return rc;
}

int store_match(struct store *s, const char *owner, const char *id, long limit, json_t **out)
{
	struct terms ts = {.n = 0};
	struct hits hs = {0};
	struct cands cs = {0};
	json_t *qs = NULL, *q, *fields, *qtopics, *t, *arr = NULL;
	double best = 0;
	size_t i;
	int rc;

	*out = NULL;
	s->err[0] = '\0';
	if ((rc = store_get(s, "question", id, owner, &qs)) < 0)
		goto cleanup;
	if (json_array_size(qs) == 0) {
		snprintf(s->err, sizeof(s->err), "question/%.64s/%.128s not found", owner, id);
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

	if ((rc = text_hits(s, &ts, &hs)) < 0 || (rc = gather(s, qtopics, &hs, &cs)) < 0)
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
	qsort(cs.c, cs.n, sizeof(*cs.c), cand_cmp);
	arr = json_array();
	for (i = 0; i < cs.n && (limit <= 0 || (long)i < limit); i++) {
		json_t *item = cs.c[i].item, *matched = json_array();

		for (size_t k = 0; k < ts.n; k++)
			if (cs.c[i].mask & ((uint64_t)1 << k))
				json_array_append_new(matched, json_string(ts.t[k].word));
		json_object_set_new(item, "score", json_real(cs.c[i].score));
		json_object_set_new(item, "matched_terms", matched);
		json_array_append(arr, item);
	}
	*out = arr;
	arr = NULL;
cleanup:
	json_decref(arr);
	json_decref(qs);
	cands_free(&cs);
	free(hs.h);
	terms_free(&ts);
	return rc;
}
