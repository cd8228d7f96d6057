/*
 * Leveled logging to stderr, one line per event: "LEVEL module: message".
 * Under systemd stderr goes to the journal, which adds the time; the
 * "<N>" prefix of sd-daemon(3) sets the priority.
 */
#ifndef LOKET_LOG_H
#define LOKET_LOG_H

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

void log_set_level(int level);
/* Parses "error", "warn", "info", "debug"; -1 if none of them. */
int log_level_parse(const char *s);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
