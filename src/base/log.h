/* Leveled logging. One line per event, prefixed "skiff: ", with context given by the caller
 * (device, queue, guest address). Log once, where the decision is made.
 *
 * Lines go to stderr ("skiff: info: guest powered off"; errors carry no level word), or, after
 * log_set_path(), appended to a file or a FIFO, each line then prefixed by its UTC time in
 * ISO-8601 with milliseconds ("2025-01-31T12:00:00.123Z skiff: info: ..."); in a file errors say
 * "error: " too. log_set_show_level(false) leaves the level out; log_set_show_origin(true) adds
 * the source position ("skiff: info: src/vmm/vm.c:42: ..."). Every line is one write(), so lines
 * from different threads never interleave; all functions here are safe from any thread.
 *
 * skiff's one error path. A function that fails returns a negative errno (or a status) and
 * says why once, in one line, as the calling thread's last error: the text of its last
 * log_error() line (or, when it logged no error since log_clear_last_error(), of its last
 * log_warn() line), logged or filtered out by the level, without prefixes; or, where the caller
 * decides what the failure means (a request to parse, a config to check), a reason recorded by
 * log_set_error() without a line. Whoever decides reads log_last_error(): the CLI prints it, the
 * API sends it back as the fault_message, the main thread logs it when a start fails unlogged.
 * No function takes an error buffer; work done on another thread hands its reason back to the
 * caller, which sets it on its own thread. */
#ifndef SKIFF_LOG_H
#define SKIFF_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_parse_level(const char *name, enum log_level *out);

/* Sends lines to `path` from now on: a regular file is created (0600) or appended to; a FIFO is
 * opened without blocking, and a line it cannot take at once (no reader, full pipe) is dropped.
 * NULL goes back to stderr. Returns 0, or -errno with a one-line reason as the thread's last
 * error (the previous destination then stays). */
int log_set_path(const char *path);
/* The descriptor log_set_path() opened, or -1 (stderr): for the signal handlers' reports
 * (base/sigsafe.h), which may only write(). */
int log_fd(void);
void log_set_show_level(bool show);  /* default true */
void log_set_show_origin(bool show); /* default false */

/* The calling thread's last error ("" when none); valid until this thread logs again. */
const char *log_last_error(void);
void log_clear_last_error(void);

/* Records why the calling thread's operation fails without writing a line: its last error
 * becomes the text (control characters turned into spaces, so it stays one line), for the
 * caller that decides what to do with it (the CLI prints it, the API sends it back as the
 * fault_message). Returns `ret`, a negative errno: `return log_set_error(-EINVAL, "...");`. */
int log_set_error(int ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether the last error was written as a log line (log_error, or log_warn at a level that
 * shows warnings) rather than only recorded by log_set_error(). */
bool log_last_error_logged(void);

void log_msg(enum log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_error(...) log_msg(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

#endif
