#include "vmm/vcpu.h"
#include "arch/arch.h"
#include "base/log.h"
#include "base/thread.h"
#include "base/uptime.h"
#include "bus/bus.h"
#include "vmm/coalesced.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* The signal that kicks a vCPU thread out of KVM_RUN. Its handler does nothing: its only job is
 * to make the ioctl return EINTR. */
#define VCPU_KICK_SIGNAL SIGUSR1

static void kick_handler(int sig)
{
	(void)sig;
}

int vcpu_signal_setup(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: KVM_RUN must return to us. */
	return sigaction(VCPU_KICK_SIGNAL, &sa, NULL) ? -errno : 0;
}

int vcpu_create(struct vcpu *vcpu, const struct vcpu_host *host, int id)
{
	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->host = *host;
	vcpu->id = id;
	vcpu->fd = ioctl(host->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0) {
		int err = errno;

		log_error("cannot create vCPU %d: %s", id, strerror(err));
		return -err;
	}
	vcpu->run = mmap(NULL, host->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		int err = errno;

		log_error("cannot map the kvm_run area of vCPU %d: %s", id, strerror(err));
		close(vcpu->fd);
		vcpu->fd = -1;
		vcpu->run = NULL;
		return -err;
	}
	return 0;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->host.run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	/* A string instruction (rep outs/ins) arrives as `count` accesses in a row. */
	for (uint32_t i = 0; i < run->io.count; i++) {
		bus_access(vcpu->host.pio, run->io.port, data, run->io.size, is_write);
		data += run->io.size;
	}
}

static void handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len;

	if (len > sizeof(run->mmio.data))
		len = sizeof(run->mmio.data);
	if (bus_access(vcpu->host.mmio, run->mmio.phys_addr, run->mmio.data, len,
		       run->mmio.is_write) == -ENOENT)
		log_debug("vCPU %d: %s of %u bytes at unclaimed MMIO address 0x%llx", vcpu->id,
			  run->mmio.is_write ? "write" : "read", len,
			  (unsigned long long)run->mmio.phys_addr);
}

static void request_stop(struct vcpu *vcpu, enum vm_stop_reason reason, const char *why)
{
	vcpu->host.power.request_stop(vcpu->host.power.ctx, reason, why);
}

static void stop_with_registers(struct vcpu *vcpu, const char *what)
{
	char regs[160], why[VM_STOP_WHY_MAX];

	arch_vcpu_describe(vcpu, regs, sizeof(regs));
	/* A long reason is cut, not an error: the message stays one line. */
	if (snprintf(why, sizeof(why), "%s on vCPU %d, %s", what, vcpu->id, regs) < 0)
		why[0] = '\0';
	request_stop(vcpu, VM_STOP_ERROR, why);
}

static void handle_internal_error(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char what[128];
	const char *kind;

	switch (run->internal.suberror) {
	case KVM_INTERNAL_ERROR_EMULATION:
		kind = "emulation failure";
		break;
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		kind = "exception while delivering an exception";
		break;
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		kind = "event delivery failure";
		break;
	default:
		kind = "unknown";
		break;
	}
	snprintf(what, sizeof(what), "KVM internal error (suberror %u: %s)",
		 run->internal.suberror, kind);
	stop_with_registers(vcpu, what);
}

static void handle_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	/* The guest's firmware call, handled by KVM (on arm64: PSCI SYSTEM_OFF, SYSTEM_RESET). */
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		request_stop(vcpu, VM_STOP_POWEROFF, "firmware SYSTEM_OFF");
		break;
	case KVM_SYSTEM_EVENT_RESET:
		request_stop(vcpu, VM_STOP_RESET, "firmware SYSTEM_RESET");
		break;
	case KVM_SYSTEM_EVENT_CRASH:
		stop_with_registers(vcpu, "guest crashed (firmware crash report)");
		break;
	default: {
		char what[64];

		snprintf(what, sizeof(what), "unknown KVM system event %u",
			 vcpu->run->system_event.type);
		stop_with_registers(vcpu, what);
		break;
	}
	}
}

void vcpu_count_exit(struct vcpu *vcpu, const struct kvm_run *run)
{
	enum vcpu_exit_kind kind;
	uint64_t *c;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		kind = run->io.direction == KVM_EXIT_IO_OUT ? VCPU_EXIT_IO_OUT : VCPU_EXIT_IO_IN;
		break;
	case KVM_EXIT_MMIO:
		kind = run->mmio.is_write ? VCPU_EXIT_MMIO_WRITE : VCPU_EXIT_MMIO_READ;
		break;
	case KVM_EXIT_HLT:
		kind = VCPU_EXIT_HLT;
		break;
	case KVM_EXIT_INTR:
		kind = VCPU_EXIT_INTR;
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		kind = VCPU_EXIT_SYSTEM_EVENT;
		break;
	case KVM_EXIT_SHUTDOWN:
		kind = VCPU_EXIT_SHUTDOWN;
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		kind = VCPU_EXIT_INTERNAL_ERROR;
		break;
	case KVM_EXIT_FAIL_ENTRY:
		kind = VCPU_EXIT_FAIL_ENTRY;
		break;
	default:
		kind = VCPU_EXIT_OTHER;
		break;
	}
	/* One writer: a relaxed load and store, no locked read-modify-write on the exit path. */
	c = &vcpu->exits[kind];
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static void pause_point(struct vcpu *vcpu);

/* A breakpoint, watchpoint or single step the debugger asked for: the debugger learns of it,
 * and this vCPU parks at once (the debugger's thread then pauses the others), before any further
 * guest instruction. */
static void handle_debug(struct vcpu *vcpu)
{
	struct vcpu_gate *gate = vcpu->host.gate;

	vcpu->debug_exit(vcpu->debug_ctx, vcpu);
	pthread_mutex_lock(&gate->lock);
	gate->pause_requested = true;
	pthread_mutex_unlock(&gate->lock);
	pause_point(vcpu);
}

/* Returns false when the vCPU should stop running. */
static bool handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char what[96];

	vcpu_count_exit(vcpu, run);

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(vcpu);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_DEBUG:
		if (!vcpu->debug_exit)
			break;
		handle_debug(vcpu);
		return true;
	case KVM_EXIT_HLT:
		/* Only reached without an in-kernel irqchip (bare-metal guests): nothing can wake
		 * the vCPU again. */
		snprintf(what, sizeof(what), "vCPU %d halted", vcpu->id);
		request_stop(vcpu, VM_STOP_HALT, what);
		return false;
	case KVM_EXIT_SHUTDOWN:
		stop_with_registers(vcpu, "guest triple fault (KVM_EXIT_SHUTDOWN)");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		handle_system_event(vcpu);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		handle_internal_error(vcpu);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "KVM entry failure (hardware reason 0x%llx)",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		stop_with_registers(vcpu, what);
		return false;
	default:
		break;
	}
	snprintf(what, sizeof(what), "unhandled KVM exit reason %u", run->exit_reason);
	stop_with_registers(vcpu, what);
	return false;
}

/* ---- Pausing ---- */

int vcpu_gate_init(struct vcpu_gate *gate)
{
	memset(gate, 0, sizeof(*gate));
	pthread_mutex_init(&gate->lock, NULL);
	pthread_cond_init(&gate->resume_cond, NULL);
	pthread_cond_init(&gate->parked_cond, NULL);
	return 0;
}

void vcpu_gate_destroy(struct vcpu_gate *gate)
{
	pthread_mutex_destroy(&gate->lock);
	pthread_cond_destroy(&gate->resume_cond);
	pthread_cond_destroy(&gate->parked_cond);
}

void vcpu_gate_stop(struct vcpu_gate *gate)
{
	pthread_mutex_lock(&gate->lock);
	__atomic_store_n(&gate->stopping, true, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&gate->resume_cond);
	pthread_cond_broadcast(&gate->parked_cond);
	pthread_mutex_unlock(&gate->lock);
}

bool vcpu_gate_stopping(struct vcpu_gate *gate)
{
	return __atomic_load_n(&gate->stopping, __ATOMIC_SEQ_CST);
}

/* Where the vCPU has no exit pending: the first call counts the thread as running; while a
 * pause is requested the thread parks here (tells vcpus_pause, then waits). Returns with
 * immediate_exit cleared, unless the VM is being paused again. */
static void pause_point(struct vcpu *vcpu)
{
	struct vcpu_gate *gate = vcpu->host.gate;

	pthread_mutex_lock(&gate->lock);
	if (!vcpu->running) {
		vcpu->running = true;
		vcpu->self = pthread_self();
		gate->nr_active++;
	}
	if (gate->pause_requested && !gate->stopping) {
		gate->nr_parked++;
		pthread_cond_broadcast(&gate->parked_cond);
		while (gate->pause_requested && !gate->stopping)
			pthread_cond_wait(&gate->resume_cond, &gate->lock);
		gate->nr_parked--;
	}
	/* Under the lock: a later vcpus_pause() sets pause_requested first and kicks (sets
	 * immediate_exit) after, so its kick is never lost here. A stop's kick may be: the gate
	 * is marked stopping before anyone kicks for a stop, and the loop checks it before
	 * KVM_RUN. */
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&gate->lock);
}

/* The thread leaves its loop for good. */
static void leave_gate(struct vcpu *vcpu)
{
	struct vcpu_gate *gate = vcpu->host.gate;

	pthread_mutex_lock(&gate->lock);
	if (vcpu->running) {
		vcpu->running = false;
		gate->nr_active--;
		pthread_cond_broadcast(&gate->parked_cond);
	}
	pthread_mutex_unlock(&gate->lock);
}

/* A kick for a vCPU whose thread has set `running` (its own thread id is known). */
static void kick_running(struct vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(vcpu->self, VCPU_KICK_SIGNAL);
}

int vcpus_pause(struct vcpu_gate *gate, struct vcpu *vcpus, int nr)
{
	int ret = 0;

	pthread_mutex_lock(&gate->lock);
	gate->pause_requested = true;
	/* A vCPU not yet running parks at its first pause point, before any KVM_RUN. */
	for (int i = 0; i < nr; i++)
		if (vcpus[i].running)
			kick_running(&vcpus[i]);
	while (!gate->stopping && gate->nr_parked < gate->nr_active)
		pthread_cond_wait(&gate->parked_cond, &gate->lock);
	if (gate->stopping)
		ret = -ESHUTDOWN;
	pthread_mutex_unlock(&gate->lock);
	return ret;
}

void vcpus_resume(struct vcpu_gate *gate)
{
	pthread_mutex_lock(&gate->lock);
	gate->pause_requested = false;
	pthread_cond_broadcast(&gate->resume_cond);
	pthread_mutex_unlock(&gate->lock);
}

/* ---- The vCPU thread ---- */

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	if (vcpu->id == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
		*vcpu->host.first_run_cpu_ns =
			(uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
		if (vcpu->host.first_run_us)
			__atomic_store_n(vcpu->host.first_run_us, uptime_us(), __ATOMIC_RELEASE);
	}
	/* Pause points: where no exit is pending, before the first KVM_RUN and after one that a
	 * kick interrupted (a pending port or MMIO access completes in that KVM_RUN first). */
	pause_point(vcpu);
	while (!vcpu_gate_stopping(vcpu->host.gate)) {
		int ran = ioctl(vcpu->fd, KVM_RUN, 0);

		/* Writes KVM batched (vmm/coalesced.h) reach their devices before anything this
		 * exit does, or a pause or a stop, can look at them. */
		coalesced_replay(vcpu->host.coalesced, vcpu->run);
		if (ran < 0) {
			char why[96];

			if (errno == EINTR || errno == EAGAIN) {
				pause_point(vcpu);
				continue;
			}
			snprintf(why, sizeof(why), "KVM_RUN failed on vCPU %d: %s", vcpu->id,
				 strerror(errno));
			request_stop(vcpu, VM_STOP_ERROR, why);
			break;
		}
		if (!handle_exit(vcpu))
			break;
	}
	leave_gate(vcpu);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	char name[16];
	int err;

	snprintf(name, sizeof(name), "skiff-vcpu%d", vcpu->id);
	err = thread_start(THREAD_VCPU, name, vcpu_thread, vcpu, &vcpu->thread);
	if (err) {
		log_error("cannot start the thread of vCPU %d: %s", vcpu->id, strerror(-err));
		return err;
	}
	vcpu->thread_started = true;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->thread_started)
		return;
	/* immediate_exit covers a thread that is between its stop check and KVM_RUN; the signal
	 * covers one already inside KVM_RUN. */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *vcpu)
{
	if (vcpu->thread_started)
		pthread_join(vcpu->thread, NULL);
	vcpu->thread_started = false;
}
