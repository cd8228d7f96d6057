/*
 * common/worker: a job runs on the worker's thread, not the caller's, and
 * its results are visible after worker_wait; jobs run one after another.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/worker.h"

struct job {
	pthread_t ran_on;
	unsigned long sum;
	unsigned long upto;
};

static void add_up(void *arg)
{
	struct job *j = arg;

	j->ran_on = pthread_self();
	for (unsigned long i = 1; i <= j->upto; i++)
		j->sum += i;
}

static void test_jobs_run_on_the_worker(void **state)
{
	struct worker *w = worker_start();
	struct job j = {0};

	(void)state;
	assert_non_null(w);
	for (unsigned long round = 1; round <= 100; round++) {
		j.sum = 0;
		j.upto = round * 1000;
		worker_run(w, add_up, &j);
		worker_wait(w);
		assert_int_equal(j.sum, j.upto * (j.upto + 1) / 2);
		assert_false(pthread_equal(j.ran_on, pthread_self()));
	}
	worker_stop(w);
}

static void test_stop_without_jobs(void **state)
{
	(void)state;
	worker_stop(worker_start());
	worker_stop(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jobs_run_on_the_worker),
	    cmocka_unit_test(test_stop_without_jobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
