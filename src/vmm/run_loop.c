/* vm_run(): the main thread's part of a running VM. It starts the vCPU threads, then waits on
 * four things with epoll: the VM's stop event, termination signals (through a signalfd, so that
 * a SIGTERM stops the VM in order and the terminal is restored), the host's stdin, whose bytes go
 * to the guest console, and the missing-driver hint's timer (vmm/driver_hint.h). When the console
 * cannot take more input yet, the rest is kept and offered again shortly: nothing typed is lost.
 * On a terminal, Ctrl-A x quits. */
#include "arch/arch.h"
#include "base/log.h"
#include "base/terminal.h"
#include "vmm/driver_hint.h"
#include "vmm/gdb_stub.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define ESCAPE_KEY   0x01 /* Ctrl-A */
#define RETRY_MS     10
#define INPUT_BUFFER 4096

struct console_pump {
	int fd;
	bool open;	/* stdin not at EOF */
	bool is_tty;
	bool pollable;	/* false for regular files and /dev/null: read on a timer instead */
	bool escape;	/* Ctrl-A seen */
	uint8_t buf[INPUT_BUFFER];
	size_t len, off; /* pending bytes buf[off..len) */
};

static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/* Escape handling on a terminal: Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A. Returns the
 * number of bytes kept in `buf`. */
static size_t filter_escape(struct vm *vm, struct console_pump *p, uint8_t *buf, size_t n)
{
	size_t out = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = buf[i];

		if (p->escape) {
			p->escape = false;
			if (c == 'x' || c == 'X') {
				vm_request_stop(vm, VM_STOP_SIGNAL, "quit with Ctrl-A x");
				return out;
			}
			if (c != ESCAPE_KEY)
				continue;
		} else if (c == ESCAPE_KEY) {
			p->escape = true;
			continue;
		}
		buf[out++] = c;
	}
	return out;
}

static void pump_offer(struct vm *vm, struct console_pump *p)
{
	if (p->off < p->len && vm->console.receive) {
		p->off += vm->console.receive(vm->console.ctx, p->buf + p->off, p->len - p->off);
	} else if (!vm->console.receive) {
		p->off = p->len; /* no console input device: discard */
	}
	if (p->off == p->len)
		p->off = p->len = 0;
}

static void pump_read(struct vm *vm, struct console_pump *p)
{
	ssize_t n = read(p->fd, p->buf, sizeof(p->buf));

	if (n <= 0) {
		if (n == 0 || (errno != EINTR && errno != EAGAIN))
			p->open = false;
		return;
	}
	p->len = p->is_tty ? filter_escape(vm, p, p->buf, (size_t)n) : (size_t)n;
	p->off = 0;
	pump_offer(vm, p);
}

static int setup_epoll(struct vm *vm, int sfd, struct console_pump *p)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };

	if (ep < 0)
		return -errno;
	ev.data.fd = vm->stop_eventfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, vm->stop_eventfd, &ev);
	ev.data.fd = sfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.fd = p->fd;
	p->pollable = epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev) == 0;
	/* Regular files and /dev/null cannot be polled (EPERM): they are always readable. */
	if (!p->pollable && errno != EPERM)
		p->open = false;
	return ep;
}

static const char *mp_state_name(uint32_t state)
{
	switch (state) {
	case KVM_MP_STATE_RUNNABLE:
		return "runnable";
	case KVM_MP_STATE_UNINITIALIZED:
		return "waiting for INIT/SIPI";
	case KVM_MP_STATE_INIT_RECEIVED:
		return "INIT received";
	case KVM_MP_STATE_HALTED:
		return "halted";
	case KVM_MP_STATE_SIPI_RECEIVED:
		return "SIPI received";
	case KVM_MP_STATE_STOPPED:
		return "stopped";
	default:
		return "unknown state";
	}
}

/* Where each vCPU was when the user stopped the VM: tells a guest waiting for an interrupt that
 * never came (halted) from one spinning (runnable), without a debugger. */
static void describe_vcpus(struct vm *vm)
{
	for (int i = 0; i < vm->nr_vcpus; i++) {
		struct kvm_mp_state mp;
		char regs[160];

		arch_vcpu_describe(&vm->vcpus[i], regs, sizeof(regs));
		if (ioctl(vm->vcpus[i].fd, KVM_GET_MP_STATE, &mp) < 0)
			log_info("vCPU %d at the stop: %s", i, regs);
		else
			log_info("vCPU %d at the stop: %s, %s", i, mp_state_name(mp.mp_state), regs);
	}
}

/* While input is pending, stdin is left out of the epoll set: a readable (or hung-up) stdin
 * would otherwise wake the loop at once, again and again, until the guest drained its FIFO. */
static void pump_watch(int ep, struct console_pump *p, bool watch)
{
	struct epoll_event ev = { .events = watch ? EPOLLIN : 0, .data.fd = p->fd };

	if (p->pollable && p->open)
		epoll_ctl(ep, EPOLL_CTL_MOD, p->fd, &ev);
}

static int exit_status(struct vm *vm, int signo)
{
	enum vm_stop_reason reason = vm_stop_reason(vm);

	switch (reason) {
	case VM_STOP_ERROR:
		log_error("%s", vm->stop_why);
		return 1;
	case VM_STOP_SIGNAL:
		log_info("%s", vm->stop_why);
		if (log_get_level() >= LOG_INFO)
			describe_vcpus(vm);
		return signo ? 128 + signo : 0;
	case VM_STOP_EXIT:
		log_info("guest %s: %d (%s)", vm_stop_reason_name(reason), vm->stop_status,
			 vm->stop_why);
		return vm->stop_status;
	case VM_STOP_MIGRATED:
		log_info("%s", vm->stop_why);
		return 0;
	default:
		log_info("guest %s (%s)", vm_stop_reason_name(reason), vm->stop_why);
		return 0;
	}
}

/* Startup cost and memory overhead, for benchmarks (bench/boot reads these lines). Measured only
 * when the lines are printed: the resident-page scan of guest memory (mincore) costs a tiny VM
 * about 2% of its whole run. */
static void report_resources(struct vm *vm)
{
	struct rusage ru;
	uint64_t guest;

	if (log_get_level() < LOG_INFO || getrusage(RUSAGE_SELF, &ru) != 0)
		return;
	guest = vm_guest_resident_bytes(vm);
	log_info("startup: %.3f ms of CPU from exec to the first KVM_RUN",
		 (double)vm->first_run_cpu_ns / 1e6);
	/* Resident guest memory that is a file's or a memfd's (a restore, a migration's
	 * destination, vhost-user) may be in the page cache without being mapped in: then it is
	 * not in the RSS, and the difference says nothing. */
	if (guest > (uint64_t)ru.ru_maxrss * 1024)
		log_info("memory: peak RSS %.2f MiB, guest memory resident %.2f MiB (not all of "
			 "it mapped in: no VMM overhead to tell)",
			 (double)ru.ru_maxrss / 1024.0, (double)guest / (1 << 20));
	else
		log_info("memory: peak RSS %.2f MiB, guest memory resident %.2f MiB, VMM overhead "
			 "%.2f MiB",
			 (double)ru.ru_maxrss / 1024.0, (double)guest / (1 << 20),
			 ((double)ru.ru_maxrss * 1024.0 - (double)guest) / (1 << 20));
}

int vm_run(struct vm *vm)
{
	struct console_pump pump = { .fd = STDIN_FILENO, .open = true };
	struct driver_hint hint = { .fd = -1 };
	struct gdb_stub *gdb = NULL;
	sigset_t stop_set, old_set;
	int sfd, ep, signo = 0, started = 0, status;

	sigemptyset(&stop_set);
	for (unsigned i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
		sigaddset(&stop_set, stop_signals[i]);
	/* Blocked before the vCPU threads exist, so that they inherit the mask and the signals
	 * reach the signalfd. */
	pthread_sigmask(SIG_BLOCK, &stop_set, &old_set);
	sfd = signalfd(-1, &stop_set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0 || vcpu_signal_setup() < 0) {
		log_error("cannot set up signal handling: %s", strerror(errno));
		if (sfd >= 0)
			close(sfd);
		pthread_sigmask(SIG_SETMASK, &old_set, NULL);
		return 1;
	}
	pump.is_tty = terminal_enter_raw(pump.fd);
	ep = setup_epoll(vm, sfd, &pump);
	if (ep < 0) {
		log_error("epoll: %s", strerror(-ep));
		vm_request_stop(vm, VM_STOP_ERROR, "cannot run the event loop");
	}

	/* With --gdb the vCPUs park before their first instruction until the debugger says go. */
	if (vm->cfg->gdb.enabled && vm_stop_reason(vm) == VM_STOP_NONE &&
	    gdb_stub_start(vm, &gdb) < 0)
		vm_request_stop(vm, VM_STOP_ERROR, "cannot start the GDB stub");
	for (int i = 0; i < vm->nr_vcpus && vm_stop_reason(vm) == VM_STOP_NONE; i++) {
		if (vcpu_start(&vm->vcpus[i]) < 0)
			vm_request_stop(vm, VM_STOP_ERROR, "cannot start the vCPU threads");
		else
			started++;
	}
	if (ep >= 0) {
		struct epoll_event ev = { .events = EPOLLIN };

		driver_hint_start(&hint, vm);
		ev.data.fd = hint.fd;
		if (hint.fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, hint.fd, &ev) < 0)
			driver_hint_stop(&hint);
	}

	while (ep >= 0 && vm_stop_reason(vm) == VM_STOP_NONE) {
		struct epoll_event events[4];
		bool pending = pump.off < pump.len;
		int timeout = pending || (pump.open && !pump.pollable) ? RETRY_MS : -1;
		int n = epoll_wait(ep, events, 4, timeout);

		if (n < 0 && errno != EINTR) {
			vm_request_stop(vm, VM_STOP_ERROR, "epoll_wait failed");
			break;
		}
		for (int i = 0; i < n; i++) {
			if (hint.fd >= 0 && events[i].data.fd == hint.fd) {
				driver_hint_tick(&hint, vm);
			} else if (events[i].data.fd == sfd) {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					char why[64];

					signo = (int)si.ssi_signo;
					snprintf(why, sizeof(why), "stopped by signal %s",
						 strsignal(signo));
					vm_request_stop(vm, VM_STOP_SIGNAL, why);
				}
			} else if (events[i].data.fd == pump.fd && pump.open && !pending) {
				pump_read(vm, &pump);
				if (!pump.open)
					epoll_ctl(ep, EPOLL_CTL_DEL, pump.fd, NULL);
				else if (pump.off < pump.len)
					pump_watch(ep, &pump, false);
			}
		}
		if (pending) {
			pump_offer(vm, &pump);
			if (pump.off == pump.len)
				pump_watch(ep, &pump, true);
		} else if (n == 0 && pump.open && !pump.pollable) {
			pump_read(vm, &pump);
		}
	}

	for (int i = 0; i < started; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (int i = 0; i < started; i++)
		vcpu_join(&vm->vcpus[i]);
	driver_hint_stop(&hint);
	terminal_restore();
	if (ep >= 0)
		close(ep);
	close(sfd);
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	report_resources(vm);
	status = exit_status(vm, signo);
	gdb_stub_stop(gdb, status);
	return status;
}
