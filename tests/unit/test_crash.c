/* The crash report (base/crash.h): a child that installed it and writes to address 0 dies of
 * SIGSEGV after two lines on stderr, the fault (address, thread, program counter) and a
 * backtrace that starts at the faulting instruction, as offsets from the executable's load
 * address; a SIGSEGV sent from outside is reported as sent, and kills the same way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/crash.h"
#include "child.h"

#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int *volatile null_int;

static __attribute__((noinline)) void fault(void)
{
	*null_int = 1;
	__asm__ volatile("" ::: "memory"); /* no tail call: fault() stays on the stack */
}

static int first_object(struct dl_phdr_info *info, size_t size, void *data)
{
	*(uintptr_t *)data = info->dlpi_addr;
	return 1;
}

struct body {
	void (*fn)(void);
};

/* In the child: the report installed, then the test's fault. */
static void with_report(void *arg)
{
	crash_report_init();
	((struct body *)arg)->fn();
}

static int in_child(void (*fn)(void), char *out, size_t len, pid_t *child)
{
	struct body b = {fn};

	return run_in_child(with_report, &b, out, len, child);
}

static void test_a_fault_is_reported_then_kills(void **state)
{
	char out[4096], want[64];
	uintptr_t bias = 0, pc;
	const char *at, *bt;
	pid_t child;
	int status;

#if defined(__SANITIZE_ADDRESS__)
	skip(); /* ASan keeps its own handler */
#endif
	status = in_child(fault, out, sizeof(out), &child);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
	assert_non_null(strstr(out, "skiff: fatal: SIGSEGV (code 1, address 0x0) in the main thread "
				    "(skiff) at 0x"));
	/* The program counter is in fault(), as an offset from the load address. */
	dl_iterate_phdr(first_object, &bias);
	at = strstr(out, ") at 0x");
	assert_non_null(at);
	pc = strtoull(at + 5, NULL, 16) + bias;
	assert_true(pc >= (uintptr_t)fault && pc < (uintptr_t)fault + 64);
	/* The backtrace starts there: the handler's own frames are left out. */
	bt = strstr(out, "skiff: fatal: backtrace, for addr2line -f -i -e ");
	assert_non_null(bt);
	snprintf(want, sizeof(want), ": 0x%lx", (unsigned long)(pc - bias));
	assert_non_null(strstr(bt, want));
}

static void kill_myself(void)
{
	kill(getpid(), SIGSEGV);
	pause();
}

static void test_a_sent_signal_is_reported_as_sent(void **state)
{
	char out[4096], want[64];
	pid_t child;
	int status;

#if defined(__SANITIZE_ADDRESS__)
	skip();
#endif
	status = in_child(kill_myself, out, sizeof(out), &child);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
	snprintf(want, sizeof(want), "skiff: fatal: SIGSEGV sent by process %d in the main thread",
		 (int)child);
	assert_non_null(strstr(out, want));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_fault_is_reported_then_kills),
	    cmocka_unit_test(test_a_sent_signal_is_reported_as_sent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
