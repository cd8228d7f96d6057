#include "signer.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>

#include "../common/key.h"

struct signer {
	const struct key *key;
	pthread_t thread;
	sem_t go;   /* a job is set, or quit */
	sem_t done; /* the job is signed */
	int quit;
	const uint8_t *msg;
	size_t len;
	uint8_t *sig;
};

static void wait_sem(sem_t *sem)
{
	while (sem_wait(sem) != 0 && errno == EINTR)
		;
}

static void *signer_main(void *arg)
{
	struct signer *s = arg;

	for (;;) {
		wait_sem(&s->go);
		if (s->quit)
			return NULL;
		key_sign(s->key, s->msg, s->len, s->sig);
		sem_post(&s->done);
	}
}

struct signer *signer_start(const struct key *key)
{
	struct signer *s = calloc(1, sizeof(*s));

	if (!s)
		abort();
	s->key = key;
	if (sem_init(&s->go, 0, 0) != 0)
		goto fail;
	if (sem_init(&s->done, 0, 0) != 0)
		goto fail_go;
	if (pthread_create(&s->thread, NULL, signer_main, s) != 0)
		goto fail_done;
	return s;
fail_done:
	sem_destroy(&s->done);
fail_go:
	sem_destroy(&s->go);
fail:
	free(s);
	return NULL;
}

void signer_stop(struct signer *s)
{
	if (!s)
		return;
	s->quit = 1;
	sem_post(&s->go);
	pthread_join(s->thread, NULL);
	sem_destroy(&s->go);
	sem_destroy(&s->done);
	free(s);
}

void signer_sign(struct signer *s, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	s->msg = msg;
	s->len = len;
	s->sig = sig;
	sem_post(&s->go); /* a release: the worker sees the job it wakes for */
}

void signer_wait(struct signer *s)
{
	wait_sem(&s->done);
}
