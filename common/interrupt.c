/*
 * interrupt: the flag and the chained signal handler. Only the flag and the
 * replaced handlers are kept, in statics, because a signal handler is given
 * nothing else; the handler does only what is async-signal-safe (a store to
 * a sig_atomic_t, a call of the handler it replaced).
 */
#include "common/interrupt.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>

static volatile sig_atomic_t interrupted;
static struct sigaction replaced[NSIG];

static void on_signal(int signum, siginfo_t *info, void *ctx)
{
	interrupted = 1;
	if (signum <= 0 || signum >= NSIG)
		return;
	const struct sigaction *old = &replaced[signum];
	if (old->sa_flags & SA_SIGINFO) {
		if (old->sa_sigaction)
			old->sa_sigaction(signum, info, ctx);
	} else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler) {
		old->sa_handler(signum);
	}
}

int interrupt_arm(int signum)
{
	struct sigaction sa;
	if (signum <= 0 || signum >= NSIG)
		return -EINVAL;
	if (sigaction(signum, NULL, &replaced[signum]) != 0)
		return -errno;
	/* Without a handler to call the signal would be lost: arm after libuv's. */
	if (!(replaced[signum].sa_flags & SA_SIGINFO) &&
	    (replaced[signum].sa_handler == SIG_DFL || replaced[signum].sa_handler == SIG_IGN))
		return -EINVAL;
	sa = replaced[signum];
	sa.sa_flags |= SA_SIGINFO;
	sa.sa_sigaction = on_signal;
	if (sigaction(signum, &sa, NULL) != 0)
		return -errno;
	return 0;
}

int interrupt_requested(void)
{
	return interrupted != 0;
}
