/* base/seccomp: the rule tables name real system calls and are consistent (a misspelt name would
 * be skipped silently, a value for a call its role may not make would be dead), every role's
 * filter builds at every level, and a thread that breaks its role's filter ends the process with
 * status 159 and the line naming the call and the role (in a child process). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/seccomp.h"
#include "base/seccomp_rules.h"
#include "base/thread.h"
#include "seccomp_violation.h"

#include <fcntl.h>
#include <stdbool.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_every_name_is_a_syscall(void **state)
{
	for (size_t i = 0; i < seccomp_nr_calls; i++) {
		const char *name = seccomp_calls[i].name;
		int x86 = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name);
		int arm = seccomp_syscall_resolve_name_arch(SCMP_ARCH_AARCH64, name);

		if (x86 < 0 && arm < 0)
			fail_msg("'%s' is a system call on neither x86_64 nor arm64", name);
		assert_int_not_equal(seccomp_calls[i].roles, 0);
	}
}

static void test_values_belong_to_allowed_calls(void **state)
{
	for (size_t i = 0; i < seccomp_nr_arg_values; i++) {
		const struct seccomp_arg_value *v = &seccomp_arg_values[i];
		unsigned call_roles = 0;

		for (size_t j = 0; j < seccomp_nr_calls; j++)
			if (strcmp(seccomp_calls[j].name, v->call) == 0)
				call_roles |= seccomp_calls[j].roles;
		if ((v->roles & call_roles) != v->roles)
			fail_msg("%s %s: given to a role that may not call %s", v->call,
				 v->value_name, v->call);
	}
}

/* Filters stack: a thread runs under its creator's filter as well as its own. The API thread
 * builds the VM on InstanceStart (the migration thread, under the same list, when a VM arrives):
 * the vCPUs, device workers and metrics thread it starts may call only what it may call too. The
 * main thread starts the vCPUs after its own filter is on (the command line), and the GDB stub's
 * thread. A worker a rule gives a call that its creator's does not dies at that call: vhost-net
 * under an API-built VM did, at the guest driver's first VHOST_SET_FEATURES. */
static void check_created(const char *what, unsigned roles)
{
	static const struct {
		enum thread_role created, creator;
	} pairs[] = {
	    {THREAD_VCPU, THREAD_API},		{THREAD_DEVICE_WORKER, THREAD_API},
	    {THREAD_METRICS, THREAD_API},	{THREAD_VCPU, THREAD_MIGRATION},
	    {THREAD_DEVICE_WORKER, THREAD_MIGRATION}, {THREAD_METRICS, THREAD_MIGRATION},
	    {THREAD_VCPU, THREAD_MAIN},		{THREAD_GDB, THREAD_MAIN},
	};

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		if ((roles & ROLE_BIT(pairs[i].created)) && !(roles & ROLE_BIT(pairs[i].creator)))
			fail_msg("%s: allowed to the %s thread but not to the %s thread that starts "
				 "it",
				 what, thread_role_name(pairs[i].created),
				 thread_role_name(pairs[i].creator));
}

static void test_created_threads_stay_within_their_creators(void **state)
{
	for (size_t i = 0; i < seccomp_nr_calls; i++) {
		unsigned roles = 0;

		for (size_t j = 0; j < seccomp_nr_calls; j++)
			if (strcmp(seccomp_calls[j].name, seccomp_calls[i].name) == 0)
				roles |= seccomp_calls[j].roles;
		check_created(seccomp_calls[i].name, roles);
	}
	for (size_t i = 0; i < seccomp_nr_arg_values; i++) {
		const struct seccomp_arg_value *v = &seccomp_arg_values[i];
		unsigned roles = 0;
		char what[96];

		for (size_t j = 0; j < seccomp_nr_arg_values; j++)
			if (strcmp(seccomp_arg_values[j].call, v->call) == 0 &&
			    seccomp_arg_values[j].arg == v->arg && seccomp_arg_values[j].value == v->value)
				roles |= seccomp_arg_values[j].roles;
		snprintf(what, sizeof(what), "%s %s", v->call, v->value_name);
		check_created(what, roles);
	}
}

static void test_every_filter_builds(void **state)
{
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	for (int role = 0; role < THREAD_NR_ROLES; role++)
		for (int level = 1; level <= 2; level++)
			assert_int_equal(seccomp_export((enum thread_role)role, level, fd), 0);
	close(fd);
}

/* Whether this kernel takes filters (qemu-user, which runs the arm64 unit tests, does not). */
static bool kernel_takes_filters(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);

		_exit(ctx && seccomp_load(ctx) == 0 ? 0 : 1);
	}
	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0;
}

static void test_violation_ends_with_its_line(void **state)
{
	static const enum thread_role roles[] = {THREAD_VCPU, THREAD_DEVICE_WORKER, THREAD_API,
						 THREAD_METRICS};
	char err[512], want[160];

	if (!kernel_takes_filters())
		skip();
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		assert_int_equal(seccomp_violate_in_child(roles[i], err, sizeof(err)),
				 SECCOMP_VIOLATION_STATUS);
		snprintf(want, sizeof(want),
			 "skiff: seccomp: the %s thread (skiff-test) made a system call its filter "
			 "forbids: personality (%d); skiff stops\n",
			 thread_role_name(roles[i]), seccomp_syscall_resolve_name("personality"));
		assert_string_equal(err, want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_name_is_a_syscall),
	    cmocka_unit_test(test_values_belong_to_allowed_calls),
	    cmocka_unit_test(test_created_threads_stay_within_their_creators),
	    cmocka_unit_test(test_every_filter_builds),
	    cmocka_unit_test(test_violation_ends_with_its_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
