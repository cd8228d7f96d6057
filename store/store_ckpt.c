/*
 * Checkpoints on a thread of their own (see store_ckpt.h). The writer's WAL
 * hook runs inside each commit with the number of pages in the log; past
 * STORE_CKPT_SOON it wakes the thread, which copies the log back with a
 * passive checkpoint from its own connection while the writer goes on.
 */
#include "store/store_ckpt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/error.h"

struct store_ckpt {
	sqlite3 *writer; /* the writer's connection, whose hook this is */
	sqlite3 *db;     /* the thread's own */
	long page_size;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int due;    /* the log passed STORE_CKPT_SOON: checkpoint */
	int stop;   /* store_ckpt_stop: leave */
	int failed; /* a checkpoint failed; logged once */
};

/* Runs in the writer's commit, on the writer's thread. */
static int on_wal(void *arg, sqlite3 *db, const char *schema, int pages)
{
	struct store_ckpt *c = arg;
	long bytes = (long)pages * c->page_size;

	if (strcmp(schema, "main") != 0 || bytes < STORE_CKPT_SOON)
		return SQLITE_OK;
	if (bytes >= STORE_CKPT_LIMIT) {
		/* The thread fell far behind (or readers held the log): bound it here. */
		(void)sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		return SQLITE_OK;
	}
	pthread_mutex_lock(&c->lock);
	c->due = 1;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
	struct store_ckpt *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->stop && !c->due)
			pthread_cond_wait(&c->wake, &c->lock);
		if (c->stop)
			break;
		c->due = 0;
		pthread_mutex_unlock(&c->lock);
		/* Passive: copies what no reader still needs, and never waits for the writer. */
		int rc =
		    sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY && !c->failed) {
			c->failed = 1;
			log_warn("store: checkpoint failed: %s (the writer will checkpoint itself)",
			         sqlite3_errmsg(c->db));
		}
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static long page_size(sqlite3 *db)
{
	sqlite3_stmt *st;
	long size = 4096;

	if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL) != SQLITE_OK)
		return size;
	if (sqlite3_step(st) == SQLITE_ROW)
		size = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return size > 0 ? size : 4096;
}

int store_ckpt_start(sqlite3 *writer, struct store_ckpt **out, char *err, size_t errlen)
{
	const char *file = sqlite3_db_filename(writer, "main");
	struct store_ckpt *c;

	*out = NULL;
	if (!file || !file[0])
		return 0; /* an in-memory or temporary store has no log to copy */
	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->writer = writer;
	c->page_size = page_size(writer);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	if (sqlite3_open_v2(file, &c->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_exec(c->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK) {
		char q[ERROR_QUOTE_SIZE];
		snprintf(err, errlen, "cannot open %s for checkpoints: %s",
		         error_quote_str(q, sizeof(q), file),
		         c->db ? sqlite3_errmsg(c->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(c->db, 5000);
	if (pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
		snprintf(err, errlen, "cannot start the checkpoint thread");
		goto fail;
	}
	sqlite3_wal_hook(writer, on_wal, c);
	*out = c;
	return 0;
fail:
	sqlite3_close(c->db);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return LOKET_E_STORE;
}

void store_ckpt_stop(struct store_ckpt *c)
{
	if (!c)
		return;
	/* SQLite's own automatic checkpoints again, for whatever the writer does last. */
	sqlite3_wal_autocheckpoint(c->writer, 1000);
	pthread_mutex_lock(&c->lock);
	c->stop = 1;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	sqlite3_close(c->db);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
