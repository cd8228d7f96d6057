/*
 * worker: the thread behind worker.h, started once and given one job at a
 * time. It owns the thread and its two semaphores: "go", posted by
 * worker_run (or by worker_stop, to quit), and "done", posted when a job
 * has returned. The job's fn and arg stay the caller's; worker_wait is what
 * makes their results safe to read.
 */
#include "common/worker.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>

struct worker {
	pthread_t thread;
	sem_t go;   /* a job is set, or quit */
	sem_t done; /* the job has returned */
	int quit;
	void (*fn)(void *arg);
	void *arg;
};

static void wait_sem(sem_t *sem)
{
	while (sem_wait(sem) != 0 && errno == EINTR)
		;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		wait_sem(&w->go);
		if (w->quit)
			return NULL;
		w->fn(w->arg);
		sem_post(&w->done);
	}
}

struct worker *worker_start(void)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (!w)
		abort();
	if (sem_init(&w->go, 0, 0) != 0)
		goto fail;
	if (sem_init(&w->done, 0, 0) != 0)
		goto fail_go;
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		goto fail_done;
	return w;
fail_done:
	sem_destroy(&w->done);
fail_go:
	sem_destroy(&w->go);
fail:
	free(w);
	return NULL;
}

void worker_stop(struct worker *w)
{
	if (!w)
		return;
	w->quit = 1;
	sem_post(&w->go);
	pthread_join(w->thread, NULL);
	sem_destroy(&w->go);
	sem_destroy(&w->done);
	free(w);
}

void worker_run(struct worker *w, void (*fn)(void *arg), void *arg)
{
	w->fn = fn;
	w->arg = arg;
	sem_post(&w->go); /* a release: the thread sees the job it wakes for */
}

void worker_wait(struct worker *w)
{
	wait_sem(&w->done);
}
