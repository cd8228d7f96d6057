/*
 * worker: one thread that runs one job at a time for another, so that the
 * caller can go on with its own work meanwhile: worker_run, then
 * worker_wait before the next worker_run. The thread waits on a semaphore
 * between jobs; starting a thread per job cost more than many jobs (a new
 * thread waited milliseconds to be scheduled on a busy machine).
 */
#ifndef LOKET_WORKER_H
#define LOKET_WORKER_H

struct worker;

/* NULL when no thread can be started: the caller then runs its jobs itself. */
struct worker *worker_start(void);
void worker_stop(struct worker *w);

/* Starts fn(arg) on the worker. Whatever fn uses must stay put until worker_wait. */
void worker_run(struct worker *w, void (*fn)(void *arg), void *arg);

/* Waits until the job started last has returned; its results are then visible. */
void worker_wait(struct worker *w);

#endif
