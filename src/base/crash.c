#include "base/crash.h"
#include "base/seccomp.h"
#include "base/sigsafe.h"
#include "base/thread.h"
#include "version.h"

#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include <unwind.h>

#define MAX_FRAMES 32

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

/* Found while the process may still open files and allocate. */
static uintptr_t load_bias; /* what addr2line's offsets are relative to (0: not position-independent) */
static char exe[256] = "skiff";

struct frames {
	uintptr_t pc[MAX_FRAMES];
	int n;
};

static int first_object(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	*(uintptr_t *)data = info->dlpi_addr;
	return 1; /* the executable comes first */
}

static _Unwind_Reason_Code one_frame(struct _Unwind_Context *ctx, void *data)
{
	struct frames *f = data;

	if (f->n == MAX_FRAMES)
		return _URC_END_OF_STACK;
	f->pc[f->n++] = _Unwind_GetIP(ctx);
	return _URC_NO_REASON;
}

static uintptr_t fault_pc(const void *uc)
{
	const ucontext_t *u = uc;

#if defined(__x86_64__)
	return (uintptr_t)u->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	return (uintptr_t)u->uc_mcontext.pc;
#else
	(void)u;
	return 0;
#endif
}

static void put_offset(struct sigsafe_line *l, uintptr_t pc)
{
	sigsafe_put(l, " ");
	sigsafe_put_hex(l, pc - load_bias);
}

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
	struct sigsafe_line l = {.n = 0};
	struct frames f = {.n = 0};
	uintptr_t pc = uc ? fault_pc(uc) : 0;
	int from = 0;

	sigsafe_put(&l, "skiff: fatal: SIG");
	sigsafe_put(&l, sigabbrev_np(sig)); /* glibc's table: "SEGV" */
	if (si->si_code <= 0) {
		sigsafe_put(&l, " sent by process ");
		sigsafe_put_dec(&l, si->si_pid);
	} else if (sig != SIGABRT) {
		sigsafe_put(&l, " (code ");
		sigsafe_put_dec(&l, si->si_code);
		sigsafe_put(&l, ", address ");
		sigsafe_put_hex(&l, (uintptr_t)si->si_addr);
		sigsafe_put(&l, ")");
	}
	sigsafe_put(&l, " in the ");
	sigsafe_put(&l, thread_role_name(seccomp_thread_role()));
	sigsafe_put(&l, " thread (");
	sigsafe_put(&l, seccomp_thread_name());
	sigsafe_put(&l, ") at");
	put_offset(&l, pc);
	sigsafe_put(&l, "; skiff " SKIFF_VERSION " stops. This is a bug in skiff: please report"
			" it with the next line\n");
	sigsafe_emit(&l);
	/* Out first: the unwinder's first use sets up its tables (and allocates), which a broken
	 * heap may not survive. */
	l.n = 0;
	sigsafe_put(&l, "skiff: fatal: backtrace, for addr2line -f -i -e ");
	sigsafe_put(&l, exe);
	sigsafe_put(&l, ":");
	_Unwind_Backtrace(one_frame, &f);
	/* The first frames are this handler's and the kernel's signal trampoline's. */
	for (int i = 0; i < f.n; i++)
		if (f.pc[i] == pc)
			from = i;
	for (int i = from; i < f.n && f.pc[i]; i++) /* 0: the outermost frame's end */
		put_offset(&l, f.pc[i]);
	sigsafe_put(&l, "\n");
	sigsafe_emit(&l);
	/* SA_RESETHAND put back the default action: a fault happens again as this returns, and a
	 * signal sent from outside is sent again, so skiff ends of it either way. */
	if (si->si_code <= 0)
		raise(sig);
}

void crash_report_init(void)
{
	ssize_t n;

#if defined(__SANITIZE_ADDRESS__)
	return; /* ASan's own report is better, and its handler must stay */
#endif
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) /* else it stays "skiff" */
		exe[n] = '\0';
	dl_iterate_phdr(first_object, &load_bias);
	/* The unwinder is not warmed up here: in a static binary its first use sorts every frame
	 * description, 0.4 ms of each start for a report that should never be needed. */
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++) {
		struct sigaction sa = {.sa_sigaction = on_fatal, .sa_flags = SA_SIGINFO | SA_RESETHAND};

		sigemptyset(&sa.sa_mask);
		sigaction(fatal_signals[i], &sa, NULL);
	}
}

void crash_unblock(void)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
		sigaddset(&set, fatal_signals[i]);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}
