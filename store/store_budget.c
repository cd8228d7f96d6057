/*
 * The time budget of reads: a progress handler on the store's connection
 * and on the search index's reader, installed for the reads of one request
 * and removed after them. SQLite calls it every STORE_BUDGET_OPS virtual
 * machine instructions; it reads the monotonic clock (a few tens of
 * nanoseconds, next to thousands of instructions) and the stop flag.
 */
#include <time.h>

#include "common/interrupt.h"
#include "store/store_int.h"

#define STORE_BUDGET_OPS 1000

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int budget_progress(void *arg)
{
	struct store *s = arg;
	if (interrupt_requested()) {
		s->budget.ran_out = STORE_BUDGET_STOPPED;
		return 1;
	}
	if (s->budget.deadline_ms && now_ms() > s->budget.deadline_ms) {
		s->budget.ran_out = STORE_BUDGET_TIME;
		return 1;
	}
	return 0;
}

void store_budget_begin(struct store *s, int ms)
{
	s->budget.active = 1;
	s->budget.ms = ms;
	s->budget.deadline_ms = ms > 0 ? now_ms() + ms : 0;
	s->budget.ran_out = STORE_BUDGET_KEPT;
	s->budget.waited = 0;
	sqlite3_progress_handler(s->db, STORE_BUDGET_OPS, budget_progress, s);
	if (s->index)
		sqlite3_progress_handler(store_index_reader(s->index), STORE_BUDGET_OPS,
		                         budget_progress, s);
}

int store_budget_end(struct store *s)
{
	sqlite3_progress_handler(s->db, 0, NULL, NULL);
	if (s->index)
		sqlite3_progress_handler(store_index_reader(s->index), 0, NULL, NULL);
	s->budget.active = 0;
	s->budget.deadline_ms = 0;
	return s->budget.ran_out;
}
