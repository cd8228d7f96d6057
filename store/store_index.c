/*
 * The search index and its indexer thread (see store_index.h). The thread
 * owns one connection (the index file as main, the store attached as
 * "store") and touches nothing else but the fields under mu; the loop
 * thread owns the read-only connection. The watermark only moves in a
 * transaction that also holds the FTS changes it stands for, so a crash
 * neither loses nor repeats an entity.
 */
#include "store/store_index.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/interrupt.h"
#include "common/log.h"
#include "proto/error.h"
#include "store/store_int.h"

#define INDEX_FORMAT 1 /* user_version of the index file */

static const char search_sql[] = "CREATE VIRTUAL TABLE search USING fts5(text, coll UNINDEXED,"
                                 " tokenize = 'unicode61 remove_diacritics 2');";

/* One entity of a batch; coll and text are offsets into ix->all. */
struct index_doc {
	sqlite3_int64 rowid;
	int live; /* not deleted: the index holds its text */
	size_t coll, coll_len;
	size_t text, text_len;
};

struct store_index {
	char *path;         /* the index file */
	char *store_path;   /* the store file, attached as "store" */
	sqlite3 *db;        /* the indexer's */
	sqlite3 *reader;    /* the loop thread's, read-only */
	sqlite3_stmt *pick; /* entities above a ver, in ver order */
	sqlite3_stmt *del;
	sqlite3_stmt *ins;
	sqlite3_stmt *mark;     /* the watermark */
	struct store_buf text;  /* one entity's text */
	struct store_buf all;   /* the batch's colls and texts */
	struct index_doc *docs; /* the batch, STORE_INDEX_BATCH of them */
	pthread_t thread;
	int running;
	pthread_mutex_t mu;
	pthread_cond_t wake;  /* to the indexer: new commits, or stop */
	pthread_cond_t moved; /* to readers: the watermark moved, or a batch failed */
	int64_t target;       /* highest entity ver committed to the store */
	int64_t watermark;    /* highest entity ver in the index */
	int stop;
	int failing;        /* the last batch failed: readers do not wait */
	int fail_code;      /* SQLite's error code of the last failed batch */
	char fail_msg[200]; /* and its message */
};

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : LOKET_E_STORE;
}

static char *dup_cat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 1);

	if (!p)
		abort();
	memcpy(p, a, la);
	memcpy(p + la, b, lb + 1);
	return p;
}

/*
 * Attaches the store as "store", read-only: a URI with mode=ro (the
 * connection is opened with SQLITE_OPEN_URI), so that the indexer cannot
 * take the store's write lock whatever it runs.
 */
static int attach_store(sqlite3 *db, const char *store_path)
{
	static const char hex[] = "0123456789ABCDEF";
	struct store_buf uri = {0};
	sqlite3_stmt *st = NULL;
	int step = SQLITE_ERROR;

	store_buf_put(&uri, "file:", 5);
	for (const unsigned char *p = (const unsigned char *)store_path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("/._-~", *p)) {
			store_buf_put(&uri, (const char *)p, 1);
		} else {
			char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};

			store_buf_put(&uri, esc, 3);
		}
	}
	store_buf_put(&uri, "?mode=ro", 8);
	if (sqlite3_prepare_v2(db, "ATTACH ?1 AS store", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, uri.p, (int)uri.n, SQLITE_STATIC);
		step = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	free(uri.p);
	return step == SQLITE_DONE ? 0 : LOKET_E_STORE;
}

/* An integer of the meta table (or a pragma), -1 if absent. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int step;

	*out = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return LOKET_E_STORE;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return step == SQLITE_ROW || step == SQLITE_DONE ? 0 : LOKET_E_STORE;
}

static int create_schema(struct store_index *ix, const uint8_t store_id[16])
{
	sqlite3_stmt *st = NULL;
	char sql[64];
	int n = snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", INDEX_FORMAT);
	int rc = LOKET_E_STORE;

	if (n < 0 || (size_t)n >= sizeof(sql) || exec(ix->db, "BEGIN IMMEDIATE") < 0)
		return LOKET_E_STORE;
	if (exec(ix->db, "CREATE TABLE index_meta(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;"
	                 "INSERT INTO index_meta(k, v) VALUES('watermark', 0);") < 0 ||
	    exec(ix->db, search_sql) < 0 || exec(ix->db, sql) < 0 ||
	    sqlite3_prepare_v2(ix->db, "INSERT INTO index_meta(k, v) VALUES('store', ?1)", -1, &st,
	                       NULL) != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_blob(st, 1, store_id, 16, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE || exec(ix->db, "COMMIT") < 0)
		goto cleanup;
	rc = 0;
cleanup:
	sqlite3_finalize(st);
	if (rc < 0)
		exec(ix->db, "ROLLBACK");
	return rc;
}

/*
 * Opens the index file for the indexer. 1 (with *why) when the file is not
 * this store's index as it stands: unreadable, another format, another
 * store, or ahead of the store's vers; the caller deletes it and tries again.
 */
static int open_writer(struct store_index *ix, const uint8_t store_id[16], int64_t ver,
                       const char **why)
{
	sqlite3_stmt *st = NULL;
	int64_t format, tables;
	int same;

	*why = "cannot be read";
	if (sqlite3_open_v2(ix->path, &ix->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
	                    NULL) != SQLITE_OK)
		return 1;
	sqlite3_busy_timeout(ix->db, 5000);
	/* Large pages for the same reason as the store's (store.c); only a new file takes them. */
	if (exec(ix->db, "PRAGMA page_size = 16384") < 0 ||
	    exec(ix->db, "PRAGMA journal_mode = WAL") < 0 ||
	    exec(ix->db, "PRAGMA synchronous = NORMAL") < 0 ||
	    exec(ix->db, "PRAGMA cache_size = -8192") < 0 ||
	    query_int(ix->db, "PRAGMA user_version", &format) < 0 ||
	    query_int(ix->db, "SELECT count(*) FROM sqlite_master", &tables) < 0)
		return 1;
	if (tables == 0) {
		if (create_schema(ix, store_id) < 0)
			return 1;
		format = INDEX_FORMAT;
	}
	if (format != INDEX_FORMAT) {
		*why = "has another format";
		return 1;
	}
	if (sqlite3_prepare_v2(ix->db, "SELECT v FROM index_meta WHERE k = 'store'", -1, &st,
	                       NULL) != SQLITE_OK)
		return 1;
	same = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16 &&
	       memcmp(sqlite3_column_blob(st, 0), store_id, 16) == 0;
	sqlite3_finalize(st);
	if (!same) {
		*why = "belongs to another store";
		return 1;
	}
	if (query_int(ix->db, "SELECT v FROM index_meta WHERE k = 'watermark'", &ix->watermark) <
	        0 ||
	    ix->watermark < 0)
		return 1;
	if (ix->watermark > ver) {
		*why = "is ahead of the store (a store restored from a backup?)";
		return 1;
	}
	*why = "cannot be set up";
	if (attach_store(ix->db, ix->store_path) < 0 ||
	    sqlite3_prepare_v3(ix->db,
	                       "SELECT rowid, coll, fields, deleted, ver FROM store.entity"
	                       " WHERE ver > ?1 ORDER BY ver LIMIT ?2",
	                       -1, SQLITE_PREPARE_PERSISTENT, &ix->pick, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(ix->db, "DELETE FROM main.search WHERE rowid = ?1", -1,
	                       SQLITE_PREPARE_PERSISTENT, &ix->del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(ix->db,
	                       "INSERT INTO main.search(rowid, text, coll) VALUES(?1, ?2, ?3)", -1,
	                       SQLITE_PREPARE_PERSISTENT, &ix->ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(ix->db, "UPDATE main.index_meta SET v = ?1 WHERE k = 'watermark'",
	                       -1, SQLITE_PREPARE_PERSISTENT, &ix->mark, NULL) != SQLITE_OK)
		return 1;
	return 0;
}

static void close_writer(struct store_index *ix)
{
	sqlite3_finalize(ix->pick);
	sqlite3_finalize(ix->del);
	sqlite3_finalize(ix->ins);
	sqlite3_finalize(ix->mark);
	sqlite3_close(ix->db);
	ix->pick = ix->del = ix->ins = ix->mark = NULL;
	ix->db = NULL;
}

static void unlink_index(const char *path)
{
	static const char *const sides[] = {"", "-wal", "-shm", "-journal"};

	for (size_t i = 0; i < sizeof(sides) / sizeof(sides[0]); i++) {
		char *p = dup_cat(path, sides[i]);
		char q[ERROR_QUOTE_SIZE];

		if (unlink(p) < 0 && errno != ENOENT)
			log_warn("store: cannot delete %s: %s", error_quote_str(q, sizeof(q), p),
			         strerror(errno));
		free(p);
	}
}

/*
 * Reads the entities above from (at most a batch) into ix->docs, in a read
 * transaction of the store that ends before the index is written, so that
 * the store's WAL is not held back while FTS5 works. *top gets the highest
 * ver read, *n how many.
 */
static int read_batch(struct store_index *ix, int64_t from, int64_t *top, size_t *n)
{
	int step;

	*n = 0;
	ix->all.n = 0;
	sqlite3_bind_int64(ix->pick, 1, from);
	sqlite3_bind_int64(ix->pick, 2, STORE_INDEX_BATCH);
	while ((step = sqlite3_step(ix->pick)) == SQLITE_ROW) {
		struct index_doc *d = &ix->docs[*n];
		const char *fields = (const char *)sqlite3_column_text(ix->pick, 2);
		size_t coll_len = (size_t)sqlite3_column_bytes(ix->pick, 1);

		d->rowid = sqlite3_column_int64(ix->pick, 0);
		d->live = !sqlite3_column_int(ix->pick, 3) && fields;
		d->coll = ix->all.n;
		d->coll_len = coll_len;
		store_buf_put(&ix->all, (const char *)sqlite3_column_text(ix->pick, 1), coll_len);
		d->text = ix->all.n;
		d->text_len = 0;
		if (d->live) {
			store_fts_text(&ix->text, fields,
			               (size_t)sqlite3_column_bytes(ix->pick, 2));
			store_buf_put(&ix->all, ix->text.p, ix->text.n);
			d->text_len = ix->text.n;
		}
		*top = sqlite3_column_int64(ix->pick, 4);
		(*n)++;
	}
	sqlite3_reset(ix->pick);
	return step == SQLITE_DONE ? 0 : LOKET_E_STORE;
}

/*
 * One batch: the entities above from folded into the index, and the new
 * watermark in *out, in one transaction of the index file. target was
 * committed before the batch was read, so a batch that is not full has
 * seen it all.
 */
static int index_batch(struct store_index *ix, int64_t from, int64_t target, int64_t *out)
{
	int64_t top = from;
	size_t n = 0;
	int step, rc = LOKET_E_STORE;

	if (read_batch(ix, from, &top, &n) < 0) {
		ix->fail_code = sqlite3_errcode(ix->db);
		snprintf(ix->fail_msg, sizeof(ix->fail_msg), "%s", sqlite3_errmsg(ix->db));
		return LOKET_E_STORE;
	}
	/* Deferred: the first write locks the index file, and only that. */
	if (exec(ix->db, "BEGIN") < 0)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		const struct index_doc *d = &ix->docs[i];

		sqlite3_bind_int64(ix->del, 1, d->rowid);
		step = sqlite3_step(ix->del);
		sqlite3_reset(ix->del);
		if (step != SQLITE_DONE)
			goto cleanup;
		if (!d->live)
			continue;
		sqlite3_bind_int64(ix->ins, 1, d->rowid);
		sqlite3_bind_text(ix->ins, 2, ix->all.p + d->text, (int)d->text_len, SQLITE_STATIC);
		sqlite3_bind_text(ix->ins, 3, ix->all.p + d->coll, (int)d->coll_len, SQLITE_STATIC);
		step = sqlite3_step(ix->ins);
		sqlite3_reset(ix->ins);
		if (step != SQLITE_DONE)
			goto cleanup;
	}
	if (n < STORE_INDEX_BATCH && top < target)
		top = target;
	sqlite3_bind_int64(ix->mark, 1, top);
	step = sqlite3_step(ix->mark);
	sqlite3_reset(ix->mark);
	if (step != SQLITE_DONE || exec(ix->db, "COMMIT") < 0)
		goto cleanup;
	*out = top;
	rc = 0;
cleanup:
	if (rc < 0) {
		ix->fail_code = sqlite3_errcode(ix->db);
		snprintf(ix->fail_msg, sizeof(ix->fail_msg), "%s", sqlite3_errmsg(ix->db));
		exec(ix->db, "ROLLBACK");
	}
	return rc;
}

/* Empties the index: a new search table and watermark 0, in one transaction. */
static int index_clear(struct store_index *ix)
{
	if (exec(ix->db, "BEGIN") < 0)
		return LOKET_E_STORE;
	if (exec(ix->db, "DROP TABLE main.search") < 0 || exec(ix->db, search_sql) < 0 ||
	    exec(ix->db, "UPDATE main.index_meta SET v = 0 WHERE k = 'watermark'") < 0 ||
	    exec(ix->db, "COMMIT") < 0) {
		exec(ix->db, "ROLLBACK");
		return LOKET_E_STORE;
	}
	return 0;
}

static void *index_main(void *arg)
{
	struct store_index *ix = arg;
	struct timespec until;
	char q[ERROR_QUOTE_SIZE];

	/*
	 * Behind the write path: a bulk import gets the cores, the index
	 * catches up after. The lowest priority, so that waking the writer
	 * or its client never waits for the indexer's time slice.
	 */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), STORE_INDEX_NICE) < 0)
		log_debug("store: cannot lower the indexer's priority: %s", strerror(errno));
	pthread_mutex_lock(&ix->mu);
	while (!ix->stop) {
		int64_t from = ix->watermark, target = ix->target, top = from;
		int rc;

		if (from >= target) {
			pthread_cond_wait(&ix->wake, &ix->mu);
			continue;
		}
		pthread_mutex_unlock(&ix->mu);
		rc = index_batch(ix, from, target, &top);
		if (rc < 0 && (ix->fail_code & 0xff) == SQLITE_CORRUPT && index_clear(ix) == 0) {
			log_warn("store: search index %s was corrupt; building it again",
			         error_quote_str(q, sizeof(q), ix->path));
			top = 0;
			rc = 0;
		}
		pthread_mutex_lock(&ix->mu);
		if (rc < 0 && !ix->failing)
			log_error("store: cannot update the search index %s: %s",
			          error_quote_str(q, sizeof(q), ix->path), ix->fail_msg);
		else if (rc == 0 && ix->failing)
			log_info("store: the search index %s is updated again", ix->path);
		ix->failing = rc < 0;
		if (rc == 0)
			ix->watermark = top;
		pthread_cond_broadcast(&ix->moved);
		if (rc < 0 && !ix->stop) {
			/* Try again in a second, or at the next commit. */
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&ix->wake, &ix->mu, &until);
		}
	}
	pthread_mutex_unlock(&ix->mu);
	return NULL;
}

static int start_thread(struct store_index *ix)
{
	ix->stop = 0;
	if (pthread_create(&ix->thread, NULL, index_main, ix) != 0)
		return LOKET_E_STORE;
	ix->running = 1;
	return 0;
}

static void stop_thread(struct store_index *ix)
{
	if (!ix->running)
		return;
	pthread_mutex_lock(&ix->mu);
	ix->stop = 1;
	pthread_cond_signal(&ix->wake);
	pthread_mutex_unlock(&ix->mu);
	pthread_join(ix->thread, NULL);
	ix->running = 0;
}

int store_index_start(const char *store_path, const uint8_t store_id[16], int64_t ver,
                      struct store_index **out, char *err, size_t errlen)
{
	struct store_index *ix = calloc(1, sizeof(*ix));
	pthread_condattr_t ca;
	const char *why = NULL;
	char q[ERROR_QUOTE_SIZE];
	int rc = LOKET_E_STORE;

	*out = NULL;
	if (!ix)
		abort();
	ix->path = dup_cat(store_path, "-index");
	ix->store_path = dup_cat(store_path, "");
	ix->target = ver;
	ix->docs = calloc(STORE_INDEX_BATCH, sizeof(*ix->docs));
	if (!ix->docs)
		abort();
	pthread_mutex_init(&ix->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ix->wake, &ca);
	pthread_cond_init(&ix->moved, &ca);
	pthread_condattr_destroy(&ca);

	if (access(ix->path, F_OK) < 0 && errno == ENOENT) {
		/* A WAL left beside a deleted index file must not come back with it. */
		if (ver > 0)
			log_info("store: no search index %s; building it", ix->path);
		unlink_index(ix->path);
	}
	if (open_writer(ix, store_id, ver, &why) != 0) {
		log_warn("store: search index %s %s; building it again",
		         error_quote_str(q, sizeof(q), ix->path), why);
		close_writer(ix);
		unlink_index(ix->path);
		ix->watermark = 0;
		if (open_writer(ix, store_id, ver, &why) != 0) {
			snprintf(err, errlen, "search index %s %s: %s",
			         error_quote_str(q, sizeof(q), ix->path), why,
			         ix->db ? sqlite3_errmsg(ix->db) : "cannot open it");
			goto fail;
		}
	}
	if (sqlite3_open_v2(ix->path, &ix->reader, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) !=
	        SQLITE_OK ||
	    attach_store(ix->reader, ix->store_path) < 0) {
		snprintf(err, errlen, "cannot open the search index %s for reading: %s",
		         error_quote_str(q, sizeof(q), ix->path),
		         ix->reader ? sqlite3_errmsg(ix->reader) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(ix->reader, 5000);
	if (start_thread(ix) < 0) {
		snprintf(err, errlen, "cannot start the indexer thread");
		goto fail;
	}
	*out = ix;
	return 0;
fail:
	store_index_stop(ix);
	return rc;
}

void store_index_stop(struct store_index *ix)
{
	if (!ix)
		return;
	stop_thread(ix);
	/* The writer last: the last connection to close checkpoints the WAL away. */
	sqlite3_close(ix->reader);
	close_writer(ix);
	pthread_cond_destroy(&ix->wake);
	pthread_cond_destroy(&ix->moved);
	pthread_mutex_destroy(&ix->mu);
	free(ix->text.p);
	free(ix->all.p);
	free(ix->docs);
	free(ix->path);
	free(ix->store_path);
	free(ix);
}

void store_index_publish(struct store_index *ix, int64_t ver)
{
	pthread_mutex_lock(&ix->mu);
	if (ver > ix->target) {
		ix->target = ver;
		pthread_cond_signal(&ix->wake);
	}
	pthread_mutex_unlock(&ix->mu);
}

int store_index_wait(struct store_index *ix, int64_t ver, int wait_ms)
{
	struct timespec until, slice;
	int64_t behind;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ix->mu);
	/* In slices, so that a stop signal ends the wait within STORE_INDEX_SLICE_MS. */
	while (ix->watermark < ver && !ix->failing && ix->running && !interrupt_requested()) {
		clock_gettime(CLOCK_MONOTONIC, &slice);
		slice.tv_nsec += STORE_INDEX_SLICE_MS * 1000000L;
		if (slice.tv_nsec >= 1000000000L) {
			slice.tv_sec++;
			slice.tv_nsec -= 1000000000L;
		}
		if (slice.tv_sec > until.tv_sec ||
		    (slice.tv_sec == until.tv_sec && slice.tv_nsec > until.tv_nsec))
			slice = until;
		if (pthread_cond_timedwait(&ix->moved, &ix->mu, &slice) == ETIMEDOUT &&
		    slice.tv_sec == until.tv_sec && slice.tv_nsec == until.tv_nsec)
			break;
	}
	behind = ver - ix->watermark;
	pthread_mutex_unlock(&ix->mu);
	if (behind <= 0)
		return 0;
	log_debug("store: the search index is behind (ver %lld of %lld); reading it as it is",
	          (long long)(ver - behind), (long long)ver);
	return 1;
}

int64_t store_index_watermark(struct store_index *ix)
{
	int64_t w;

	pthread_mutex_lock(&ix->mu);
	w = ix->watermark;
	pthread_mutex_unlock(&ix->mu);
	return w;
}

int store_index_failing(struct store_index *ix)
{
	int f;

	pthread_mutex_lock(&ix->mu);
	f = ix->failing;
	pthread_mutex_unlock(&ix->mu);
	return f;
}

sqlite3 *store_index_reader(struct store_index *ix)
{
	return ix->reader;
}

int store_index_reset(struct store_index *ix, char *err, size_t errlen)
{
	char q[ERROR_QUOTE_SIZE];
	int rc;

	stop_thread(ix);
	rc = index_clear(ix);
	if (rc < 0)
		snprintf(err, errlen, "cannot reset the search index %s: %s",
		         error_quote_str(q, sizeof(q), ix->path), sqlite3_errmsg(ix->db));
	else
		ix->watermark = 0; /* the thread is stopped: no lock needed */
	if (start_thread(ix) < 0 && rc == 0) {
		snprintf(err, errlen, "cannot start the indexer thread");
		rc = LOKET_E_STORE;
	}
	return rc;
}
