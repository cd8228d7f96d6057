/*
 * notify: tells systemd (Type=notify) how the service is doing, by a
 * datagram to $NOTIFY_SOCKET as sd_notify(3) does; a no-op without it.
 */
#ifndef LOKET_NOTIFY_H
#define LOKET_NOTIFY_H

/* Sends state, e.g. "READY=1" or "STOPPING=1"; 0 also when not under systemd. */
int notify_systemd(const char *state);

#endif
