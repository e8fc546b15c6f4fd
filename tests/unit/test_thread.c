/* thread_start: the thread runs fn(arg), carries its name (cut to 15 characters), and a
 * non-vCPU role starts with every signal blocked but the faults' while a vCPU thread keeps its
 * creator's mask. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/thread.h"

#include <sched.h>
#include <signal.h>
#include <string.h>

struct probe {
	char name[16];
	sigset_t mask;
	int ran;
};

static void *probe_thread(void *arg)
{
	struct probe *p = arg;

	/* The name is set by the creator after pthread_create: wait until it is there. */
	for (int i = 0; i < 1000; i++) {
		pthread_getname_np(pthread_self(), p->name, sizeof(p->name));
		if (strncmp(p->name, "skiff-", 6) == 0)
			break;
		sched_yield();
	}
	pthread_sigmask(SIG_SETMASK, NULL, &p->mask);
	p->ran = 1;
	return p;
}

static void run(enum thread_role role, const char *name, struct probe *p)
{
	pthread_t t;
	void *ret = NULL;

	memset(p, 0, sizeof(*p));
	assert_int_equal(thread_start(role, name, probe_thread, p, &t), 0);
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_ptr_equal(ret, p);
	assert_int_equal(p->ran, 1);
}

static void test_worker_roles_block_all_signals(void **state)
{
	static const enum thread_role roles[] = {THREAD_DEVICE_WORKER, THREAD_API, THREAD_METRICS};
	struct probe p;
	sigset_t before, after;

	pthread_sigmask(SIG_SETMASK, NULL, &before);
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		run(roles[i], "skiff-api", &p);
		assert_string_equal(p.name, "skiff-api");
		assert_int_equal(sigismember(&p.mask, SIGTERM), 1);
		assert_int_equal(sigismember(&p.mask, SIGUSR1), 1);
		assert_int_equal(sigismember(&p.mask, SIGINT), 1);
		/* ... but a fault's (base/crash.h): a blocked one kills without the report. */
		assert_int_equal(sigismember(&p.mask, SIGSEGV), 0);
		assert_int_equal(sigismember(&p.mask, SIGBUS), 0);
	}
	/* The caller's own mask is as it was. */
	pthread_sigmask(SIG_SETMASK, NULL, &after);
	assert_int_equal(sigismember(&after, SIGTERM), sigismember(&before, SIGTERM));
}

static void test_vcpu_inherits_the_mask(void **state)
{
	struct probe p;
	sigset_t one, old;

	sigemptyset(&one);
	sigaddset(&one, SIGTERM);
	pthread_sigmask(SIG_SETMASK, &one, &old);
	run(THREAD_VCPU, "skiff-vcpu3", &p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	assert_string_equal(p.name, "skiff-vcpu3");
	assert_int_equal(sigismember(&p.mask, SIGTERM), 1);
	assert_int_equal(sigismember(&p.mask, SIGUSR1), 0);
}

static void test_long_names_are_cut(void **state)
{
	struct probe p;

	run(THREAD_DEVICE_WORKER, "skiff-0123456789abcdef", &p);
	assert_string_equal(p.name, "skiff-012345678");
}

static void test_role_names(void **state)
{
	assert_string_equal(thread_role_name(THREAD_VCPU), "vcpu");
	assert_string_equal(thread_role_name(THREAD_DEVICE_WORKER), "device-worker");
	assert_string_equal(thread_role_name(THREAD_API), "api");
	assert_string_equal(thread_role_name(THREAD_METRICS), "metrics");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_worker_roles_block_all_signals),
	    cmocka_unit_test(test_vcpu_inherits_the_mask),
	    cmocka_unit_test(test_long_names_are_cut),
	    cmocka_unit_test(test_role_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
