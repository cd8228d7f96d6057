/*
 * notify_listener: plays systemd's side of the sd_notify(3) protocol for
 * the integration tests, since PID 1 here is not systemd. It binds a unix
 * datagram socket at PATH (the test sets NOTIFY_SOCKET=PATH for loketd),
 * and appends each datagram to OUT as one line, "pid=PID MESSAGE", with
 * the message's own line breaks written as spaces. The sender's pid comes
 * from the kernel (SCM_CREDENTIALS), as systemd's NotifyAccess=main check
 * takes it. It runs until SIGTERM, or at most 300 s, so that a test that
 * dies never leaves it behind for long.
 *
 *   notify_listener PATH OUT
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTENER_MAX_SECONDS 300u
#define LISTENER_MSG_MAX     4096u

int main(int argc, char **argv)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int one = 1;

	if (argc != 3 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: notify_listener PATH OUT (PATH shorter than %zu bytes)\n",
		        sizeof(addr.sun_path));
		return 2;
	}
	memcpy(addr.sun_path, argv[1], strlen(argv[1]));
	FILE *out = fopen(argv[2], "a");
	if (!out) {
		fprintf(stderr, "notify_listener: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "notify_listener: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	signal(SIGTERM, SIG_DFL);
	alarm(LISTENER_MAX_SECONDS);

	for (;;) {
		char msg[LISTENER_MSG_MAX + 1];
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(struct ucred))];
		} control;
		struct iovec iov = {.iov_base = msg, .iov_len = LISTENER_MSG_MAX};
		struct msghdr mh = {.msg_iov = &iov,
		                    .msg_iovlen = 1,
		                    .msg_control = control.buf,
		                    .msg_controllen = sizeof(control.buf)};
		ssize_t n = recvmsg(fd, &mh, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "notify_listener: recvmsg: %s\n", strerror(errno));
			return 1;
		}
		long pid = -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred cred;
				memcpy(&cred, CMSG_DATA(c), sizeof(cred));
				pid = (long)cred.pid;
			}
		}
		for (ssize_t i = 0; i < n; i++)
			if (msg[i] == '\n' || msg[i] == '\0')
				msg[i] = ' ';
		msg[n] = '\0';
		fprintf(out, "pid=%ld %s\n", pid, msg);
		fflush(out);
	}
}
