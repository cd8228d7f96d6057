/*
 * Leveled logging to stderr. Every event is one line, written with one
 * write(2) so that lines from several threads never interleave. Under
 * systemd, stderr is a stream into the journal: the journal stamps the time
 * itself, and a "<N>" prefix (sd-daemon(3)) carries the priority, so we add
 * it only when stderr really is that stream. The level is the one piece of
 * process-wide state here, set once at start-up from the configuration.
 */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static int log_level = LOG_LEVEL_INFO;

static const struct {
	const char *name;
	int priority; /* syslog priority for the journal prefix */
} log_levels[] = {
    [LOG_LEVEL_ERROR] = {"error", 3},
    [LOG_LEVEL_WARN] = {"warn", 4},
    [LOG_LEVEL_INFO] = {"info", 6},
    [LOG_LEVEL_DEBUG] = {"debug", 7},
};

#define N_LEVELS (sizeof(log_levels) / sizeof(log_levels[0]))

void log_set_level(int level)
{
	if (level < LOG_LEVEL_ERROR)
		level = LOG_LEVEL_ERROR;
	if (level > LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_DEBUG;
	log_level = level;
}

int log_level_parse(const char *s)
{
	if (!s)
		return -1;
	for (size_t i = 0; i < N_LEVELS; i++) {
		if (strcmp(s, log_levels[i].name) == 0)
			return (int)i;
	}
	return -1;
}

/*
 * systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected to
 * stderr. Comparing it with stderr itself (as systemd.exec(5) advises) keeps
 * the prefix out of a terminal or of a file a child's stderr was redirected
 * to while the variable was inherited.
 */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	if (!js || !*js || isatty(STDERR_FILENO))
		return 0;
	unsigned long long dev, ino;
	char tail;
	if (sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return 1; /* set but not in the documented form: trust it */
	struct stat st;
	if (fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* Appends to buf (capacity cap, NUL kept); returns 1 if the text was cut. */
static int append(char *buf, size_t cap, size_t *len, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static int append(char *buf, size_t cap, size_t *len, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	if (n < 0)
		return 0;
	if ((size_t)n >= cap - *len) {
		*len = cap - 1;
		return 1;
	}
	*len += (size_t)n;
	return 0;
}

static int appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int cut = append(buf, cap, len, fmt, ap);
	va_end(ap);
	return cut;
}

void log_msg(int level, const char *fmt, ...)
{
	if (level < LOG_LEVEL_ERROR)
		level = LOG_LEVEL_ERROR;
	if (level > LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_DEBUG;
	if (level > log_level)
		return;

	int saved_errno = errno;
	char line[LOG_LINE_MAX];
	/* One byte stays free for the newline. */
	size_t cap = sizeof(line) - 1;
	size_t len = 0;

	if (stderr_is_journal())
		appendf(line, cap, &len, "<%d>", log_levels[level].priority);
	appendf(line, cap, &len, "%s: %s: ", program_invocation_short_name, log_levels[level].name);
	size_t msg_start = len;

	va_list ap;
	va_start(ap, fmt);
	int cut = append(line, cap, &len, fmt, ap);
	va_end(ap);
	/* Say that a message was cut rather than lose its end silently. */
	if (cut && len >= msg_start + 3)
		memcpy(line + len - 3, "...", 3);

	/* A newline inside a message would start a journal entry of its own. */
	for (size_t i = msg_start; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f)
			line[i] = ' ';
	}
	line[len++] = '\n';

	const char *p = line;
	while (len > 0) {
		ssize_t w = write(STDERR_FILENO, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		p += w;
		len -= (size_t)w;
	}
	errno = saved_errno;
}
