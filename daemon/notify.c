/*
 * notify: the sd_notify(3) protocol without libsystemd: one datagram with
 * "KEY=VALUE" lines to the unix socket named by $NOTIFY_SOCKET ('@' starts
 * an abstract name), and the watchdog's WATCHDOG_USEC / WATCHDOG_PID as
 * sd_watchdog_enabled(3) reads them. The protocol is stable (systemd's
 * "portability and stability" promise), so a few lines here beat a
 * library.
 */
#include "daemon/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A STATUS= line: what systemctl status shows; longer text is cut. */
#define NOTIFY_STATUS_MAX 512

int notify_systemd(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !path[0])
		return 0;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(addr.sun_path))
		return -EINVAL;
	memcpy(addr.sun_path, path, len);
	if (path[0] == '@')
		addr.sun_path[0] = '\0';

	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	ssize_t sent =
	    sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
	int rc = sent < 0 ? -errno : 0;
	close(fd);
	return rc;
}

int notify_ready(const char *status)
{
	char msg[NOTIFY_STATUS_MAX + 32];
	if (snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%.*s", NOTIFY_STATUS_MAX, status) < 0)
		return -EINVAL;
	/* A line break would start another assignment: keep STATUS one line. */
	for (char *p = msg + 8; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return notify_systemd(msg);
}

int notify_reloading(void)
{
	struct timespec ts;
	char msg[64];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ull +
	             (unsigned long long)ts.tv_nsec / 1000u);
	return notify_systemd(msg);
}

/* A decimal number that fills s; 0 for anything else. */
static unsigned long long env_number(const char *s)
{
	char *end;

	if (!s || s[0] < '0' || s[0] > '9')
		return 0;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0' ? v : 0;
}

uint64_t notify_watchdog_usec(void)
{
	const char *pid = getenv("WATCHDOG_PID");

	if (pid && env_number(pid) != (unsigned long long)getpid())
		return 0;
	return env_number(getenv("WATCHDOG_USEC"));
}

static void notify_on_watchdog(uv_timer_t *t)
{
	(void)t;
	notify_systemd("WATCHDOG=1");
}

int notify_watchdog_start(struct notify_watchdog *w, uv_loop_t *loop)
{
	uint64_t usec = notify_watchdog_usec();

	w->running = 0;
	if (usec == 0)
		return 0;
	/* Half the interval, as sd_watchdog_enabled(3) advises; at least every millisecond. */
	uint64_t ms = usec / 2000u ? usec / 2000u : 1u;
	int rc = uv_timer_init(loop, &w->timer);
	if (rc != 0)
		return rc;
	w->running = 1;
	notify_systemd("WATCHDOG=1");
	return uv_timer_start(&w->timer, notify_on_watchdog, ms, ms);
}

static void notify_on_timer_closed(uv_handle_t *h)
{
	(void)h;
}

void notify_watchdog_close(struct notify_watchdog *w)
{
	if (!w->running)
		return;
	w->running = 0;
	uv_close((uv_handle_t *)&w->timer, notify_on_timer_closed);
}
