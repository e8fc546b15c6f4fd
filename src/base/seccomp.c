#include "base/seccomp.h"
#include "base/log.h"
#include "base/seccomp_prebuilt.h"
#include "base/seccomp_rules.h"
#include "base/sigsafe.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NR_NAMES SECCOMP_PREBUILT_NR_NAMES

static int level = SECCOMP_LEVEL_DEFAULT;
/* Set by seccomp_configure(): skiff itself refuses to run a thread it cannot filter. Code that
 * links the library without configuring (the unit and kvm tests) gets the default level where
 * the kernel takes filters, and none where it does not (qemu-user, which refuses seccomp). */
static bool configured;
static __thread enum thread_role my_role = THREAD_MAIN;
static __thread char my_name[16] = "skiff";

/* The test-only trigger (base/seccomp.h): which role, and whether an ioctl. */
static int violation_role = -1;
static bool violation_ioctl, violation_fault;
static int *volatile null_int; /* the fault's address: 0, unknown to the compiler */

/* Names for the SIGSYS handler, which may not allocate: the prebuilt table's, or filled from
 * libseccomp before the first filter. */
static char syscall_names[NR_NAMES][24];
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static int handler_err;

int seccomp_configure(int new_level)
{
	const char *v = getenv("SKIFF_SECCOMP_TEST_VIOLATION");

	if (new_level < 0 || new_level > 2)
		return -EINVAL;
	level = new_level;
	configured = true;
	/* glibc's free(), shrinking a thread's heap for the first time, opens
	 * /proc/sys/vm/overcommit_memory: on a thread whose filter has no open() (the main
	 * thread freeing a device the API thread built for a PUT /snapshot/load) that killed
	 * skiff at its exit. With a trim threshold no heap reaches, thread heaps never shrink;
	 * empty ones are still unmapped, and blocks above the mmap threshold are mapped apart
	 * and given back on free() as before. */
	if (level > 0)
		mallopt(M_TRIM_THRESHOLD, INT_MAX);
	violation_role = -1;
	if (v && v[0]) {
		size_t n = strcspn(v, ":");

		for (int r = 0; r < THREAD_NR_ROLES; r++)
			if (strlen(thread_role_name(r)) == n &&
			    strncmp(v, thread_role_name(r), n) == 0)
				violation_role = r;
		violation_ioctl = strcmp(v + n, ":ioctl") == 0;
		violation_fault = strcmp(v + n, ":fault") == 0;
	}
	return 0;
}

int seccomp_level(void)
{
	return level;
}

enum thread_role seccomp_thread_role(void)
{
	return my_role;
}

const char *seccomp_thread_name(void)
{
	return my_name;
}

/* Async-signal-safe: one line to stderr and the log file, the terminal back, then the end. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	struct sigsafe_line l = {.n = 0};
	int nr = si->si_syscall;

	(void)sig;
	(void)uc;
	sigsafe_put(&l, "skiff: seccomp: the ");
	sigsafe_put(&l, thread_role_name(my_role));
	sigsafe_put(&l, " thread (");
	sigsafe_put(&l, my_name);
	sigsafe_put(&l, ") made a system call its filter forbids: ");
	sigsafe_put(&l, nr < 0 || nr >= NR_NAMES ? "unknown"
			: seccomp_prebuilt_names && seccomp_prebuilt_names[nr]
			    ? seccomp_prebuilt_names[nr]
			: syscall_names[nr][0] ? syscall_names[nr]
					       : "unknown");
	sigsafe_put(&l, " (");
	sigsafe_put_dec(&l, nr);
	sigsafe_put(&l, "); skiff stops\n");
	sigsafe_emit(&l);
	_exit(SECCOMP_VIOLATION_STATUS);
}

static void setup_handler(void)
{
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	uint32_t arch = seccomp_arch_native();

	for (int nr = 0; nr < NR_NAMES && !seccomp_prebuilt_names; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(arch, nr);

		if (name)
			snprintf(syscall_names[nr], sizeof(syscall_names[nr]), "%s", name);
		free(name);
	}
	/* glibc reads the time zone on the first gmtime_r (log lines' time): now, while open() is
	 * still allowed. */
	tzset();
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		handler_err = -errno;
}

static int add_rule(scmp_filter_ctx ctx, int nr, unsigned arg_count, struct scmp_arg_cmp cmp)
{
	return arg_count ? seccomp_rule_add_exact(ctx, SCMP_ACT_ALLOW, nr, 1, cmp)
			 : seccomp_rule_add_exact(ctx, SCMP_ACT_ALLOW, nr, 0);
}

/* Whether level 2 checks an argument of `name` rather than letting it through. */
static bool checks_args(const char *name)
{
	return strcmp(name, "ioctl") == 0 || strcmp(name, "fcntl") == 0 ||
	       strcmp(name, "socket") == 0 || strcmp(name, "prctl") == 0 ||
	       strcmp(name, "io_uring_register") == 0;
}

static scmp_filter_ctx build(enum thread_role role, int lvl)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	unsigned bit = ROLE_BIT(role);
	int ret = 0;

	if (!ctx)
		return NULL;
	/* A binary tree of system call numbers rather than a list: fewer instructions per call
	 * for the kernel to run (and to run through once per number, when it caches the calls
	 * a filter always allows). */
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	for (size_t i = 0; i < seccomp_nr_calls && !ret; i++) {
		const struct seccomp_call *c = &seccomp_calls[i];
		int nr = seccomp_syscall_resolve_name(c->name);

		if (!(c->roles & bit) || nr < 0) /* not ours, or not on this architecture */
			continue;
		if (lvl < 2 || !checks_args(c->name)) {
			ret = add_rule(ctx, nr, 0, (struct scmp_arg_cmp){0});
			continue;
		}
		for (size_t j = 0; j < seccomp_nr_arg_values && !ret; j++) {
			const struct seccomp_arg_value *v = &seccomp_arg_values[j];

			if (!(v->roles & bit) || strcmp(v->call, c->name) != 0)
				continue;
			/* The kernel reads these arguments as 32-bit ints. */
			ret =
			    add_rule(ctx, nr, 1,
				     SCMP_CMP(v->arg, SCMP_CMP_MASKED_EQ, 0xffffffffUL, v->value));
		}
	}
	if (ret) {
		seccomp_release(ctx);
		errno = -ret;
		return NULL;
	}
	return ctx;
}

static void test_violation(enum thread_role role)
{
	int want = (int)role;

	/* The first thread of the role only. */
	if (!__atomic_compare_exchange_n(&violation_role, &want, -1, false, __ATOMIC_SEQ_CST,
					 __ATOMIC_SEQ_CST))
		return;
	if (violation_fault)
		*null_int = 1;
	else if (violation_ioctl)
		ioctl(-1, TIOCSTI, "x"); /* no role's request: EBADF when let through */
	else
		personality(0xffffffff); /* only asks: harmless when let through */
}

/* role's filter at `lvl` as compiled at build time, or NULL. */
static const struct seccomp_prebuilt *prebuilt(enum thread_role role, int lvl)
{
	if (!seccomp_prebuilt || !&seccomp_nr_prebuilt)
		return NULL;
	for (size_t i = 0; i < seccomp_nr_prebuilt; i++)
		if (seccomp_prebuilt[i].role == (unsigned)role &&
		    seccomp_prebuilt[i].level == (unsigned)lvl)
			return &seccomp_prebuilt[i];
	return NULL;
}

/* What seccomp_load() does with libseccomp's defaults: no_new_privs, then the filter. */
static int load_prebuilt(const struct seccomp_prebuilt *p)
{
	struct sock_fprog prog = {.len = p->len, .filter = (struct sock_filter *)p->insns};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return -errno;
	return 0;
}

int seccomp_install(enum thread_role role, const char *name)
{
	const struct seccomp_prebuilt *p;
	scmp_filter_ctx ctx;
	int ret;

	my_role = role;
	snprintf(my_name, sizeof(my_name), "%s", name);
	if (level == 0) {
		if (violation_fault) /* a crash needs no filter: ASan builds test theirs without */
			test_violation(role);
		return 0;
	}
	pthread_once(&handler_once, setup_handler);
	if (handler_err) {
		log_error("seccomp: cannot set the SIGSYS handler: %s", strerror(-handler_err));
		return handler_err;
	}
	p = prebuilt(role, level);
	if (p) {
		ret = load_prebuilt(p);
	} else {
		ctx = build(role, level);
		if (!ctx) {
			ret = -errno;
			log_error("seccomp: cannot build the %s filter: %s", thread_role_name(role),
				  strerror(errno));
			return ret;
		}
		ret = seccomp_load(ctx);
		seccomp_release(ctx);
	}
	if (ret && !configured) {
		log_debug("seccomp: no %s filter: the kernel refused it (%s)",
			  thread_role_name(role), strerror(-ret));
		return 0;
	}
	if (ret) {
		log_error("seccomp: cannot install the %s filter: %s", thread_role_name(role),
			  strerror(-ret));
		return ret;
	}
	log_debug("seccomp: the %s filter, level %d, %s", thread_role_name(role), level,
		  p ? "compiled at build time" : "compiled by libseccomp now");
	test_violation(role);
	return 0;
}

int seccomp_export(enum thread_role role, int lvl, int fd)
{
	scmp_filter_ctx ctx = build(role, lvl);
	int ret;

	if (!ctx)
		return -errno;
	ret = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	return ret;
}
