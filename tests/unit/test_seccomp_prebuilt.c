/* base/seccomp_prebuilt.h: linked with the generated filters as the skiff program is, every role's
 * filter at levels 1 and 2 is there and is, instruction for instruction, what libseccomp compiles
 * from base/seccomp_rules.c now (a generator that went wrong, or a stale generated file, fails
 * here); the names are libseccomp's; and a thread that breaks its prebuilt filter ends the
 * process with the line naming the call, as with a filter compiled at run time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/seccomp.h"
#include "base/seccomp_prebuilt.h"
#include "base/thread.h"
#include "seccomp_violation.h"

#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const struct seccomp_prebuilt *find(int role, int level)
{
	for (size_t i = 0; i < seccomp_nr_prebuilt; i++)
		if (seccomp_prebuilt[i].role == (unsigned)role &&
		    seccomp_prebuilt[i].level == (unsigned)level)
			return &seccomp_prebuilt[i];
	return NULL;
}

static int setup(void **state)
{
	/* A cross build with no qemu-user to run the generator links an empty file. */
	if (!seccomp_prebuilt || !&seccomp_nr_prebuilt || !seccomp_prebuilt_names)
		fprintf(stderr, "no prebuilt seccomp filters in this build\n");
	return 0;
}

static void test_every_filter_matches_libseccomp(void **state)
{
	if (!seccomp_prebuilt)
		skip();
	assert_int_equal(seccomp_nr_prebuilt, THREAD_NR_ROLES * 2);
	for (int role = 0; role < THREAD_NR_ROLES; role++) {
		for (int level = 1; level <= 2; level++) {
			const struct seccomp_prebuilt *p = find(role, level);
			int fd = memfd_create("bpf", MFD_CLOEXEC);
			off_t size;
			struct sock_filter *now;

			if (!p)
				fail_msg("no prebuilt %s filter at level %d", thread_role_name(role),
					 level);
			assert_true(fd >= 0);
			assert_int_equal(seccomp_export(role, level, fd), 0);
			size = lseek(fd, 0, SEEK_END);
			now = malloc(size);
			assert_non_null(now);
			assert_int_equal(pread(fd, now, size, 0), size);
			if ((size_t)size != p->len * sizeof(*now) ||
			    memcmp(now, p->insns, size) != 0)
				fail_msg("the prebuilt %s filter at level %d (%u instructions) is not "
					 "what libseccomp compiles now (%zu): a stale build?",
					 thread_role_name(role), level, p->len,
					 (size_t)size / sizeof(*now));
			free(now);
			close(fd);
		}
	}
}

static void test_names_are_libseccomps(void **state)
{
	uint32_t arch = seccomp_arch_native();
	int named = 0;

	if (!seccomp_prebuilt_names)
		skip();
	for (int nr = 0; nr < SECCOMP_PREBUILT_NR_NAMES; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(arch, nr);

		if (!name)
			assert_null(seccomp_prebuilt_names[nr]);
		else
			assert_string_equal(seccomp_prebuilt_names[nr], name);
		named += name != NULL;
		free(name);
	}
	assert_true(named > 250);
}

static void test_violation_of_a_prebuilt_filter(void **state)
{
	char err[512], want[160];

	if (!seccomp_prebuilt || getenv("SKIFF_TEST_EMULATED")) /* qemu-user takes no filter */
		skip();
	assert_int_equal(seccomp_violate_in_child(THREAD_METRICS, err, sizeof(err)),
			 SECCOMP_VIOLATION_STATUS);
	snprintf(want, sizeof(want),
		 "skiff: seccomp: the metrics thread (skiff-test) made a system call its filter "
		 "forbids: personality (%d); skiff stops\n",
		 seccomp_syscall_resolve_name("personality"));
	assert_string_equal(err, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_filter_matches_libseccomp),
	    cmocka_unit_test(test_names_are_libseccomps),
	    cmocka_unit_test(test_violation_of_a_prebuilt_filter),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
