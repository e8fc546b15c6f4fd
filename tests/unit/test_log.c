/* Logging: the default stderr format the CLI tests rely on, file output with timestamps, the
 * level and origin options, FIFOs that nobody reads, and the per-thread last error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char path[64];

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/skiff-log-test-%d", getpid());
	unlink(path);
	log_set_level(LOG_INFO);
	log_set_show_level(true);
	log_set_show_origin(false);
	log_clear_last_error();
	return 0;
}

static int teardown(void **state)
{

	assert_int_equal(log_set_path(NULL), 0);
	log_set_level(LOG_WARN);
	log_set_show_level(true);
	log_set_show_origin(false);
	unlink(path);
	return 0;
}

static size_t read_all(const char *p, char *buf, size_t len)
{
	int fd = open(p, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, len - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return (size_t)n;
}

static void assert_matches(const char *text, const char *pattern)
{
	regex_t re;
	int r;

	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE), 0);
	r = regexec(&re, text, 0, NULL, 0);
	regfree(&re);
	if (r != 0)
		fail_msg("\"%s\" does not match /%s/", text, pattern);
}

/* What stderr gets by default, unchanged: tests/cli and tests/nested grep these lines. */
static void test_stderr_format_unchanged(void **state)
{
	char buf[1024];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600), saved = dup(2);

	assert_true(fd >= 0);
	fflush(stderr);
	dup2(fd, 2);
	log_info("guest powered off");
	log_error("cannot open %s", "x");
	log_warn("careful");
	log_debug("not shown at info");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	read_all(path, buf, sizeof(buf));
	assert_string_equal(buf, "skiff: info: guest powered off\n"
				 "skiff: cannot open x\n"
				 "skiff: warning: careful\n");
}

static void test_file_lines_have_timestamps(void **state)
{
	char buf[2048];

	assert_int_equal(log_set_path(path), 0);
	log_info("hello %d", 42);
	log_error("broken");
	read_all(path, buf, sizeof(buf));
	assert_matches(buf, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
			    "skiff: info: hello 42$");
	assert_matches(buf, "^[0-9T:.-]+Z skiff: error: broken$");
	/* Appends: a second destination switch keeps what is there. */
	assert_int_equal(log_set_path(path), 0);
	log_info("more");
	read_all(path, buf, sizeof(buf));
	assert_non_null(strstr(buf, "hello 42"));
	assert_non_null(strstr(buf, "info: more\n"));
}

static void test_show_level_and_origin(void **state)
{
	char err[128], buf[2048];
	int line;

	assert_int_equal(log_set_path(path), 0);
	log_set_show_level(false);
	log_info("no level");
	log_set_show_level(true);
	log_set_show_origin(true);
	line = __LINE__ + 1;
	log_warn("with origin");
	read_all(path, buf, sizeof(buf));
	assert_matches(buf, "Z skiff: no level$");
	snprintf(err, sizeof(err), "Z skiff: warning: tests/unit/test_log\\.c:%d: with origin$",
		 line);
	assert_matches(buf, err);
}

static void test_bad_path_keeps_destination(void **state)
{
	char buf[1024];
	const char *err;

	assert_int_equal(log_set_path(path), 0);
	assert_int_equal(log_set_path("/nonexistent-dir/x.log"), -ENOENT);
	err = log_last_error();
	assert_non_null(strstr(err, "/nonexistent-dir/x.log"));
	log_info("still here");
	read_all(path, buf, sizeof(buf));
	assert_non_null(strstr(buf, "skiff: info: still here\n"));
}

/* Nobody reads the FIFO: opening does not wait, and once the pipe is full lines are dropped
 * instead of blocking the caller. */
static void test_fifo_without_reader_never_blocks(void **state)
{
	char big[900];

	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(log_set_path(path), 0);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 2000; i++) /* ~1.8 MB, far beyond a pipe's buffer */
		log_info("%s", big);
	assert_int_equal(log_set_path(NULL), 0);
}

static void *log_other_error(void *arg)
{
	log_error("error of the other thread");
	assert_string_equal(log_last_error(), "error of the other thread");
	return NULL;
}

static void test_last_error_is_per_thread(void **state)
{
	pthread_t t;

	assert_int_equal(log_set_path(path), 0);
	assert_string_equal(log_last_error(), "");
	log_warn("first a warning");
	assert_string_equal(log_last_error(), "first a warning");
	log_error("cannot open %s: %s", "disk.img", "No such file");
	assert_string_equal(log_last_error(), "cannot open disk.img: No such file");
	/* A warning after an error does not hide the error. */
	log_warn("cleanup warning");
	assert_string_equal(log_last_error(), "cannot open disk.img: No such file");
	log_info("info lines are not errors");
	assert_string_equal(log_last_error(), "cannot open disk.img: No such file");

	assert_int_equal(pthread_create(&t, NULL, log_other_error, NULL), 0);
	pthread_join(t, NULL);
	assert_string_equal(log_last_error(), "cannot open disk.img: No such file");

	log_clear_last_error();
	assert_string_equal(log_last_error(), "");
	/* Remembered even when the level hides it. */
	log_set_level(LOG_ERROR);
	log_warn("hidden warning");
	assert_string_equal(log_last_error(), "hidden warning");
}

/* Lines from many threads at once stay whole. */
static void *log_many(void *arg)
{
	for (int i = 0; i < 200; i++)
		log_info("thread %ld line %03d %s", (long)(intptr_t)arg, i,
			 "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz");
	return NULL;
}

static void test_threads_write_whole_lines(void **state)
{
	static char buf[1 << 20];
	char *line, *save;
	pthread_t t[4];
	int lines = 0;

	assert_int_equal(log_set_path(path), 0);
	for (long i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, log_many, (void *)(intptr_t)i), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	read_all(path, buf, sizeof(buf));
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		assert_matches(line, "^[0-9T:.-]+Z skiff: info: thread [0-3] line [0-9]{3} "
				     "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz$");
		lines++;
	}
	assert_int_equal(lines, 800);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stderr_format_unchanged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_lines_have_timestamps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_show_level_and_origin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_path_keeps_destination, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_without_reader_never_blocks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_last_error_is_per_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_write_whole_lines, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
