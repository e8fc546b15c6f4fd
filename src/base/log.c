#include "base/log.h"
#include "base/output_file.h"
#include "base/terminal.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 1024

static int current_level = LOG_WARN;
static bool show_level = true;
static bool show_origin;

/* The destination: -1 is stderr. Swapped and written under the lock, so that a line is never
 * written to a descriptor being closed. */
static pthread_mutex_t dest_lock = PTHREAD_MUTEX_INITIALIZER;
static int dest_fd = -1;

/* The thread's last error; `last_is_error` tells an error from a warning. */
static __thread char last_error[LOG_LINE_MAX];
static __thread bool last_is_error;
static __thread bool last_logged;

static const char *const level_names[] = {
	[LOG_ERROR] = "error",
	[LOG_WARN] = "warning",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	__atomic_store_n(&current_level, (int)level, __ATOMIC_RELAXED);
}

enum log_level log_get_level(void)
{
	return (enum log_level)__atomic_load_n(&current_level, __ATOMIC_RELAXED);
}

int log_parse_level(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0 ||
		    (i == LOG_WARN && strcmp(name, "warn") == 0)) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_set_show_level(bool show)
{
	__atomic_store_n(&show_level, show, __ATOMIC_RELAXED);
}

void log_set_show_origin(bool show)
{
	__atomic_store_n(&show_origin, show, __ATOMIC_RELAXED);
}

int log_set_path(const char *path)
{
	int fd = -1, old;

	if (path) {
		fd = output_file_open(path, "");
		if (fd < 0)
			return fd;
	}
	pthread_mutex_lock(&dest_lock);
	old = dest_fd;
	dest_fd = fd;
	pthread_mutex_unlock(&dest_lock);
	if (old >= 0)
		close(old);
	return 0;
}

int log_fd(void)
{
	return __atomic_load_n(&dest_fd, __ATOMIC_RELAXED);
}

const char *log_last_error(void)
{
	return last_error;
}

void log_clear_last_error(void)
{
	last_error[0] = '\0';
	last_is_error = false;
	last_logged = false;
}

int log_set_error(int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	for (char *p = last_error; *p; p++)
		if (iscntrl((unsigned char)*p))
			*p = ' ';
	last_is_error = true;
	last_logged = false;
	return ret;
}

bool log_last_error_logged(void)
{
	return last_error[0] && last_logged;
}

/* "2025-01-31T12:00:00.123Z " */
static int format_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	return snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			ts.tv_nsec / 1000000);
}

static size_t append(char *line, size_t n, size_t size, int written)
{
	if (written < 0)
		return n;
	n += (size_t)written;
	return n < size ? n : size - 1;
}

void log_msg(enum log_level level, const char *file, int lineno, const char *fmt, ...)
{
	char text[LOG_LINE_MAX], line[LOG_LINE_MAX + 256];
	bool shown = (int)level <= __atomic_load_n(&current_level, __ATOMIC_RELAXED);
	bool remember = level == LOG_ERROR || (level == LOG_WARN && !last_is_error);
	size_t n = 0;
	va_list ap;
	int fd;

	if (!shown && !remember)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (remember) {
		memcpy(last_error, text, sizeof(last_error));
		last_is_error = level == LOG_ERROR;
		last_logged = shown;
	}
	if (!shown)
		return;

	pthread_mutex_lock(&dest_lock);
	fd = dest_fd;
	if (fd >= 0)
		n = append(line, n, sizeof(line), format_time(line, sizeof(line)));
	n = append(line, n, sizeof(line), snprintf(line + n, sizeof(line) - n, "skiff: "));
	if (__atomic_load_n(&show_level, __ATOMIC_RELAXED) && (level != LOG_ERROR || fd >= 0))
		n = append(line, n, sizeof(line),
			   snprintf(line + n, sizeof(line) - n, "%s: ", level_names[level]));
	if (__atomic_load_n(&show_origin, __ATOMIC_RELAXED) && file)
		n = append(line, n, sizeof(line),
			   snprintf(line + n, sizeof(line) - n, "%s:%d: ", file, lineno));
	/* A raw terminal does not return the carriage on "\n". */
	n = append(line, n, sizeof(line),
		   snprintf(line + n, sizeof(line) - n, "%s%s", text,
			    fd < 0 && terminal_is_raw() ? "\r\n" : "\n"));
	if (n == sizeof(line) - 1)
		line[n - 1] = '\n'; /* cut, but still a line */
	/* One write per line so that lines from different threads do not interleave. A line the
	 * destination cannot take now (a FIFO nobody reads) is lost rather than waited for. */
	if (fd >= 0) {
		ssize_t w = write(fd, line, n);

		(void)w;
	} else {
		fprintf(stderr, "%s", line);
	}
	pthread_mutex_unlock(&dest_lock);
}
