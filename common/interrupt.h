/*
 * interrupt: a stop signal noticed while the loop thread is busy. loketd
 * takes SIGTERM and SIGINT through libuv, which hears them only between two
 * callbacks; a long read or a rebuild on the loop thread would keep it
 * waiting. interrupt_arm puts a handler in front of the one installed for
 * each signal: it raises a flag, then calls the handler it replaced, so the
 * loop still sees the signal as before. Work that may run long (SQLite's
 * progress handler in store/, the wait for the search index) polls
 * interrupt_requested and gives up. The flag is process-wide because a
 * signal is: a handler has no other place to say so.
 */
#ifndef LOKET_INTERRUPT_H
#define LOKET_INTERRUPT_H

/* Chains the flag in front of the current handler of signum; 0 or -errno. */
int interrupt_arm(int signum);
/* Nonzero once an armed signal has come. */
int interrupt_requested(void);

#endif
