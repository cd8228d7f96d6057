/*
 * The state digest as the store keeps it: the LtHash16 sum (proto/lthash.h)
 * of every entity row's digest, 4096 bytes in the one row of the digest
 * table, read at open and after a rollback, and written by the commit of
 * every transaction that changed an entity, in that transaction. The
 * published digest (status, verify) is SHA-256 of those bytes. A store of
 * schema 2 kept a XOR of the entity digests in meta instead: opened
 * read-write it is upgraded once, the sum made from the entity rows'
 * digests; opened read-only it is left as it is, and the sum is made from
 * its rows when it is read (verify checks the replay against the rows).
 * The sums themselves are kept by store_lanes, which expands the digests
 * of changed entities in batches, on a thread of its own when it keeps up
 * and on the writer's thread when it does not.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "proto/error.h"
#include "store/store_int.h"

/*
 * Changes per batch, and full batches that may wait for the thread: a
 * batch is handed over every 256 entity writes (a mutex and a wake-up),
 * and up to 32 wait (half a megabyte). When the queue is full the writer
 * sums the oldest batch itself rather than wait, so the thread never
 * holds the writer up, and whatever it does is time saved.
 */
#define LANES_BATCH  256
#define LANES_QUEUED 32

/* One change of a sum: an entity digest in, or one replacing another. */
struct lanes_change {
	uint8_t old[32];
	uint8_t new_d[32];
	uint8_t replace; /* 0: new_d comes in; 1: old goes out too */
};

struct lanes_batch {
	size_t n;
	struct lanes_change c[LANES_BATCH];
};

/*
 * The batches: fill (the writer's), queue[first .. first + n) (full, in
 * order, mod LANES_QUEUED), one the thread may be summing (working), and
 * the empty ones in spare. Under mu but fill, and acc while working: the
 * thread's sum of what it has taken, read and reset by the writer when the
 * thread is idle.
 */
struct lanes_queue {
	struct lanes_batch *fill;
	struct lanes_batch *queue[LANES_QUEUED];
	size_t first, n;
	struct lanes_batch *spare[LANES_QUEUED + 1];
	size_t n_spare;
	int working;
	int quit;
	int started; /* the thread runs; 0: every sum is made on the writer's thread */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t more; /* a batch is queued, or quit */
	pthread_cond_t done; /* the thread has summed a batch */
	struct lthash acc;
};

static void sum_into(struct lthash *sum, struct lanes_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->c[i].replace)
			lthash_replace(sum, b->c[i].old, b->c[i].new_d);
		else
			lthash_add(sum, b->c[i].new_d);
	}
	b->n = 0;
}

/* The oldest queued batch, taken off the queue (under mu); NULL if none. */
static struct lanes_batch *take(struct lanes_queue *q)
{
	struct lanes_batch *b;

	if (q->n == 0)
		return NULL;
	b = q->queue[q->first];
	q->first = (q->first + 1) % LANES_QUEUED;
	q->n--;
	return b;
}

static void *lanes_main(void *arg)
{
	struct lanes_queue *q = arg;
	struct lanes_batch *b;
	const struct sched_param batch = {0};

	/*
	 * SCHED_BATCH: a fair share of the cores, but a wake-up of this
	 * thread never preempts the writer. (At nice 19, as the indexer, it
	 * got too little while an import keeps both cores busy, and the
	 * writer did the rest itself.)
	 */
	if (pthread_setschedparam(pthread_self(), SCHED_BATCH, &batch) != 0)
		log_debug("store: the digest thread runs without SCHED_BATCH");
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->n == 0 && !q->quit)
			pthread_cond_wait(&q->more, &q->mu);
		if (q->quit)
			break;
		b = take(q);
		q->working = 1;
		pthread_mutex_unlock(&q->mu);
		sum_into(&q->acc, b);
		pthread_mutex_lock(&q->mu);
		q->spare[q->n_spare++] = b;
		q->working = 0;
		pthread_cond_signal(&q->done);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

static struct lanes_batch *new_batch(void)
{
	struct lanes_batch *b = calloc(1, sizeof(*b));

	if (!b)
		abort();
	return b;
}

void store_lanes_init(struct store_lanes *l)
{
	struct lanes_queue *q = calloc(1, sizeof(*q));

	if (!q)
		abort();
	q->fill = new_batch();
	if (pthread_mutex_init(&q->mu, NULL) != 0 || pthread_cond_init(&q->more, NULL) != 0 ||
	    pthread_cond_init(&q->done, NULL) != 0)
		abort();
	lthash_zero(&l->sum);
	l->q = q;
}

void store_lanes_fini(struct store_lanes *l)
{
	struct lanes_queue *q = l->q;
	struct lanes_batch *b;

	if (!q)
		return;
	if (q->started) {
		pthread_mutex_lock(&q->mu);
		q->quit = 1;
		pthread_cond_signal(&q->more);
		pthread_mutex_unlock(&q->mu);
		pthread_join(q->thread, NULL);
	}
	while ((b = take(q)))
		free(b);
	while (q->n_spare)
		free(q->spare[--q->n_spare]);
	free(q->fill);
	pthread_cond_destroy(&q->more);
	pthread_cond_destroy(&q->done);
	pthread_mutex_destroy(&q->mu);
	free(q);
	l->q = NULL;
}

/* Queues the full batch for the thread (started the first time) and takes an empty one. */
static void hand_over(struct store_lanes *l)
{
	struct lanes_queue *q = l->q;
	struct lanes_batch *oldest = NULL, *next;

	if (!q->started && !q->quit) {
		if (pthread_create(&q->thread, NULL, lanes_main, q) == 0)
			q->started = 1;
		else
			q->quit = 1; /* no thread to be had: the same sums, made here */
	}
	if (!q->started) {
		sum_into(&l->sum, q->fill);
		return;
	}
	pthread_mutex_lock(&q->mu);
	if (q->n == LANES_QUEUED)
		oldest = take(q);
	q->queue[(q->first + q->n) % LANES_QUEUED] = q->fill;
	q->n++;
	next = oldest ? oldest : (q->n_spare ? q->spare[--q->n_spare] : NULL);
	pthread_cond_signal(&q->more);
	pthread_mutex_unlock(&q->mu);
	/* The thread is behind: the writer does the oldest batch, and fills it next. */
	if (oldest)
		sum_into(&l->sum, oldest);
	q->fill = next ? next : new_batch();
}

void store_lanes_change(struct store_lanes *l, const uint8_t *old, const uint8_t new_d[32])
{
	struct lanes_batch *b = l->q->fill;
	struct lanes_change *c = &b->c[b->n++];

	c->replace = old != NULL;
	if (old)
		memcpy(c->old, old, 32);
	memcpy(c->new_d, new_d, 32);
	if (b->n == LANES_BATCH)
		hand_over(l);
}

/*
 * Sums what is queued, the writer and the thread side by side, then takes
 * the thread's part (drop: throws it all away instead).
 */
static void drain(struct store_lanes *l, int drop)
{
	struct lanes_queue *q = l->q;
	struct lanes_batch *b;

	if (!q->started)
		return;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		if ((b = take(q))) {
			pthread_mutex_unlock(&q->mu);
			if (drop)
				b->n = 0;
			else
				sum_into(&l->sum, b);
			pthread_mutex_lock(&q->mu);
			q->spare[q->n_spare++] = b;
		} else if (q->working) {
			pthread_cond_wait(&q->done, &q->mu);
		} else {
			break;
		}
	}
	if (!drop)
		lthash_add_sum(&l->sum, &q->acc);
	lthash_zero(&q->acc);
	pthread_mutex_unlock(&q->mu);
}

const struct lthash *store_lanes_get(struct store_lanes *l)
{
	drain(l, 0);
	sum_into(&l->sum, l->q->fill);
	return &l->sum;
}

void store_lanes_set(struct store_lanes *l, const struct lthash *sum)
{
	drain(l, 1);
	l->q->fill->n = 0;
	if (sum)
		l->sum = *sum;
	else
		lthash_zero(&l->sum);
}

/* A rowid table: the 4096-byte row fits one 16 KiB page (WITHOUT ROWID would overflow). */
const char store_digest_sql[] =
    "CREATE TABLE digest(id INTEGER PRIMARY KEY CHECK (id = 1), lanes BLOB NOT NULL);"
    "INSERT INTO digest(id, lanes) VALUES(1, zeroblob(4096));";

static int prepare(struct store *s, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
		return store_sqlite_fail(s, "cannot prepare statement");
	return 0;
}

int store_digest_prepare(struct store *s, long long version)
{
	int rc;

	/* libsodium picks its fastest ChaCha20 here; lthash gives the same sums without it. */
	if (sodium_init() < 0) {
		store_set_error(s, "cannot initialise libsodium");
		return LOKET_E_STORE;
	}
	if (version < 3) {
		s->digest_derived = 1;
		return 0;
	}
	s->digest_derived = 0;
	if ((rc = prepare(s, "SELECT lanes FROM digest WHERE id = 1", &s->digest_get)) < 0 ||
	    (rc = prepare(s, "UPDATE digest SET lanes = ?1 WHERE id = 1", &s->digest_put)) < 0)
		return rc;
	return 0;
}

int store_digest_of_entities(sqlite3 *db, struct lthash *out, long long *n)
{
	struct store_lanes l;
	sqlite3_stmt *st = NULL;
	int step;

	lthash_zero(out);
	*n = 0;
	if (sqlite3_prepare_v2(db, "SELECT digest FROM entity", -1, &st, NULL) != SQLITE_OK)
		return LOKET_E_STORE;
	/* The rows are read here while the sum's thread expands their digests. */
	store_lanes_init(&l);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		/* As store_apply_op: a row without a 32-byte digest adds nothing. */
		if (sqlite3_column_bytes(st, 0) == 32)
			store_lanes_change(&l, NULL, sqlite3_column_blob(st, 0));
		(*n)++;
	}
	sqlite3_finalize(st);
	*out = *store_lanes_get(&l);
	store_lanes_fini(&l);
	return step == SQLITE_DONE ? 0 : LOKET_E_STORE;
}

int store_load_digest(struct store *s)
{
	struct lthash sum;
	int step, rc = 0;

	/* What is queued was a change of the sum now replaced. */
	store_lanes_set(&s->apply.lanes, NULL);
	s->apply.digest_dirty = 0;
	if (s->digest_derived) {
		/* Made when it is read: verify loads again inside its own read. */
		s->derived_stale = 1;
		return 0;
	}
	step = sqlite3_step(s->digest_get);
	if (step == SQLITE_ROW && sqlite3_column_bytes(s->digest_get, 0) == LTHASH_BYTES) {
		lthash_from_bytes(&sum, sqlite3_column_blob(s->digest_get, 0));
		store_lanes_set(&s->apply.lanes, &sum);
	} else if (step == SQLITE_ROW || step == SQLITE_DONE)
		rc = store_sqlite_fail(s, "the state digest row is missing or not 4096 bytes");
	else
		rc = store_sqlite_fail(s, "cannot read the state digest");
	sqlite3_reset(s->digest_get);
	return rc;
}

int store_digest_write(struct store *s)
{
	uint8_t b[LTHASH_BYTES];
	int step;

	if (s->digest_derived) {
		store_set_error(s, "a store of schema 2 opened read-only takes no writes");
		return LOKET_E_STORE;
	}
	lthash_to_bytes(store_lanes_get(&s->apply.lanes), b);
	sqlite3_bind_blob(s->digest_put, 1, b, LTHASH_BYTES, SQLITE_STATIC);
	step = sqlite3_step(s->digest_put);
	sqlite3_reset(s->digest_put);
	sqlite3_clear_bindings(s->digest_put);
	if (step != SQLITE_DONE || sqlite3_changes(s->db) != 1)
		return store_sqlite_fail(s, "cannot write the state digest");
	s->apply.digest_dirty = 0;
	return 0;
}

int store_digest_sum(struct store *s, const struct lthash **sum)
{
	struct lthash made;
	long long n;

	if (s->derived_stale) {
		if (store_digest_of_entities(s->db, &made, &n) < 0)
			return store_sqlite_fail(s, "cannot sum the entity digests");
		store_lanes_set(&s->apply.lanes, &made);
		s->derived_stale = 0;
	}
	*sum = store_lanes_get(&s->apply.lanes);
	return 0;
}

int store_digest(struct store *s, uint8_t out[32])
{
	const struct lthash *sum;
	int rc = store_digest_sum(s, &sum);

	if (rc < 0)
		return rc;
	lthash_digest(sum, out);
	return 0;
}

static double seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * Schema 3 replaces the XOR kept in meta('digest') by the digest table.
 * The sum is made from the entity rows' digest column, which is what
 * every later change takes out again; verify checks that column against
 * the rows' contents, so nothing is taken on trust that is not checked.
 */
int store_digest_migrate(struct store *s, const char *path, char *err, size_t errlen)
{
	struct lthash sum;
	uint8_t b[LTHASH_BYTES];
	sqlite3_stmt *st = NULL;
	long long n = 0;
	double t0 = seconds();

	_Static_assert(STORE_SCHEMA_VERSION >= 3, "store_digest_migrate upgrades to schema 3");
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, store_digest_sql, NULL, NULL, NULL) != SQLITE_OK ||
	    store_digest_of_entities(s->db, &sum, &n) < 0 ||
	    sqlite3_prepare_v2(s->db, "UPDATE digest SET lanes = ?1 WHERE id = 1", -1, &st, NULL) !=
	        SQLITE_OK)
		goto fail;
	lthash_to_bytes(&sum, b);
	sqlite3_bind_blob(st, 1, b, LTHASH_BYTES, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_exec(s->db,
	                 "DELETE FROM meta WHERE k = 'digest';"
	                 "PRAGMA user_version = 3;"
	                 "COMMIT",
	                 NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	log_info("store: %s upgraded to schema version 3 (the state digest is LtHash16, made from"
	         " %lld entities in %.1f s)",
	         path, n, seconds() - t0);
	return 0;
fail:
	snprintf(err, errlen, "cannot upgrade store %s to schema version 3: %s", path,
	         sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return LOKET_E_STORE;
}
