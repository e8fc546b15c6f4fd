/* Pause and resume on /dev/kvm with a bare-metal guest that counts on a port (guests/counter.S):
 * while paused no port write happens at all, the calls refuse to repeat a state, after the resume
 * the counter goes on, and neither kvmclock nor the guest's TSC has moved by the paused time (the
 * TSC check is skipped where the host's KVM ignores TSC offsets). A stop while paused ends the
 * VM, and a VM paused before its vCPUs start runs nothing until the resume. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus/bus.h"
#include "config/vm_config.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"

/* The reason a call failed: the thread's last error (base/log.h). */
#define err log_last_error()

#define PAUSE_MS     300
#define WAIT_SECONDS 10

/* What the guest wrote: every port write counts; a counter write publishes the TSC the guest
 * wrote just before it. */
struct counter_dev {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t writes;
	uint32_t counter;
	uint32_t tsc_lo, tsc_hi;
	uint64_t tsc; /* at the last counter write */
};

static void dev_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	memset(data, 0xff, len);
}

static void dev_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct counter_dev *d = opaque;
	uint32_t v = 0;

	memcpy(&v, data, len < 4 ? len : 4);
	pthread_mutex_lock(&d->lock);
	d->writes++;
	if (offset == 4) {
		d->tsc_lo = v;
	} else if (offset == 8) {
		d->tsc_hi = v;
	} else if (offset == 0) {
		d->counter = v;
		d->tsc = (uint64_t)d->tsc_hi << 32 | d->tsc_lo;
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
}

static const struct bus_device_ops dev_ops = {.read = dev_read, .write = dev_write};

/* Waits until the counter passes `above`; returns the counter (0 on timeout). */
static uint32_t wait_counter(struct counter_dev *d, uint32_t above, uint64_t *tsc)
{
	struct timespec deadline;
	uint32_t c;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WAIT_SECONDS;
	pthread_mutex_lock(&d->lock);
	while (d->counter <= above)
		if (pthread_cond_timedwait(&d->cond, &d->lock, &deadline) != 0)
			break;
	c = d->counter > above ? d->counter : 0;
	if (tsc)
		*tsc = d->tsc;
	pthread_mutex_unlock(&d->lock);
	return c;
}

static void snapshot(struct counter_dev *d, uint64_t *writes, uint32_t *counter, uint64_t *tsc)
{
	pthread_mutex_lock(&d->lock);
	*writes = d->writes;
	*counter = d->counter;
	*tsc = d->tsc;
	pthread_mutex_unlock(&d->lock);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static uint64_t kvmclock(struct vm *vm)
{
	struct kvm_clock_data c = {0};

	assert_int_equal(ioctl(vm->fd, KVM_GET_CLOCK, &c), 0);
	return c.clock;
}

static char guest_dir[PATH_MAX];

struct running_vm {
	struct vm vm;
	struct vm_config cfg;
	struct counter_dev dev;
	pthread_t thread;
	int status;
	int saved_stdin, devnull;
	char guest[PATH_MAX + 64];
};

static void *run_thread(void *arg)
{
	struct running_vm *r = arg;

	r->status = vm_run(&r->vm);
	return NULL;
}

static void start_vm(struct running_vm *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->dev.lock, NULL);
	pthread_cond_init(&r->dev.cond, NULL);
	snprintf(r->guest, sizeof(r->guest), "%s/guests/counter.bin", guest_dir);
	vm_config_init_defaults(&r->cfg);
	r->cfg.raw_path = r->guest;
	assert_int_equal(vm_create(&r->vm, &r->cfg), 0);
	assert_int_equal(bus_register(&r->vm.pio, 0x530, 12, &dev_ops, &r->dev, "counter"), 0);
	r->saved_stdin = dup(0);
	r->devnull = open("/dev/null", O_RDONLY);
	dup2(r->devnull, 0);
	assert_int_equal(pthread_create(&r->thread, NULL, run_thread, r), 0);
}

/* Stops the VM (a no-op if it already stopped) and checks that vm_run() returns promptly. */
static void stop_vm(struct running_vm *r)
{
	struct timespec deadline;

	vm_request_stop(&r->vm, VM_STOP_SIGNAL, "test done");
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WAIT_SECONDS;
	assert_int_equal(pthread_timedjoin_np(r->thread, NULL, &deadline), 0);
	dup2(r->saved_stdin, 0);
	close(r->saved_stdin);
	close(r->devnull);
	vm_destroy(&r->vm);
}

static void test_pause_stops_the_guest_and_resume_continues(void **state)
{
	static struct running_vm r;
	uint64_t writes, writes_after, tsc_paused, tsc_resumed, clock_paused, clock_resumed;
	uint64_t t_paused, t_resumed, paused_ns;
	uint32_t counter, counter_after;

	start_vm(&r);
	assert_int_not_equal(wait_counter(&r.dev, 1000, NULL), 0);
	assert_false(vm_is_paused(&r.vm));
	assert_int_equal(vm_resume(&r.vm), -EALREADY);
	assert_string_equal(err, "the VM is already running");

	assert_int_equal(vm_pause(&r.vm), 0);
	t_paused = now_ns();
	clock_paused = kvmclock(&r.vm);
	assert_true(vm_is_paused(&r.vm));
	snapshot(&r.dev, &writes, &counter, &tsc_paused);
	assert_int_equal(vm_pause(&r.vm), -EALREADY);
	assert_string_equal(err, "the VM is already paused");

	sleep_ms(PAUSE_MS);
	snapshot(&r.dev, &writes_after, &counter_after, &tsc_resumed);
	assert_int_equal(writes_after, writes); /* not one port write while paused */
	assert_int_equal(counter_after, counter);
	assert_true(vm_is_paused(&r.vm));

	assert_int_equal(vm_resume(&r.vm), 0);
	t_resumed = now_ns();
	assert_false(vm_is_paused(&r.vm));
	counter_after = wait_counter(&r.dev, counter + 100, NULL);
	assert_int_not_equal(counter_after, 0);
	clock_resumed = kvmclock(&r.vm);
	paused_ns = t_resumed - t_paused;
	assert_true(paused_ns >= PAUSE_MS * 1000000ULL);

	/* kvmclock advanced by the time since the resume, not by the paused time. */
	assert_true(clock_resumed - clock_paused + 200 * 1000000ULL < now_ns() - t_paused);

	/* Pause and resume again: the vCPU's immediate_exit was cleared after the first. */
	assert_int_equal(vm_pause(&r.vm), 0);
	snapshot(&r.dev, &writes, &counter, &tsc_paused);
	sleep_ms(50);
	snapshot(&r.dev, &writes_after, &counter_after, &tsc_resumed);
	assert_int_equal(writes_after, writes);
	assert_int_equal(vm_resume(&r.vm), 0);
	assert_int_not_equal(wait_counter(&r.dev, counter + 1000, NULL), 0);

	stop_vm(&r);
	assert_int_equal(vm_stop_reason(&r.vm), VM_STOP_SIGNAL);
}

#define MSR_IA32_TSC 0x10

static uint64_t read_tsc(struct vcpu *vcpu)
{
	struct {
		struct kvm_msrs header;
		struct kvm_msr_entry entry;
	} msrs = {.header.nmsrs = 1, .entry.index = MSR_IA32_TSC};

	assert_int_equal(ioctl(vcpu->fd, KVM_GET_MSRS, &msrs), 1);
	return msrs.entry.data;
}

/* Whether this host's KVM moves a vCPU's TSC when its offset is set (a software KVM may not). */
static bool kvm_moves_tsc(struct vcpu *vcpu)
{
	uint64_t offset = 0, before, after, back;
	struct kvm_device_attr attr = {.group = KVM_VCPU_TSC_CTRL,
				       .attr = KVM_VCPU_TSC_OFFSET,
				       .addr = (uint64_t)(uintptr_t)&offset};
	bool moves;

	if (ioctl(vcpu->fd, KVM_GET_DEVICE_ATTR, &attr) < 0)
		return false;
	back = offset;
	before = read_tsc(vcpu);
	offset -= 1ULL << 40;
	if (ioctl(vcpu->fd, KVM_SET_DEVICE_ATTR, &attr) < 0)
		return false;
	after = read_tsc(vcpu);
	moves = after < before;
	offset = back;
	ioctl(vcpu->fd, KVM_SET_DEVICE_ATTR, &attr);
	return moves;
}

static void test_guest_tsc_does_not_jump(void **state)
{
	static struct running_vm r;
	uint64_t writes, tsc_paused, tsc_resumed, tsc_khz;
	uint32_t counter;

	start_vm(&r);
	assert_int_not_equal(wait_counter(&r.dev, 1000, NULL), 0);
	assert_int_equal(vm_pause(&r.vm), 0);
	snapshot(&r.dev, &writes, &counter, &tsc_paused);
	if (!kvm_moves_tsc(&r.vm.vcpus[0])) {
		vm_resume(&r.vm);
		stop_vm(&r);
		print_message("this host's KVM does not move the TSC by its offset\n");
		skip();
	}
	sleep_ms(PAUSE_MS);
	assert_int_equal(vm_resume(&r.vm), 0);
	/* The TSC the guest reads continues from where it stood: the first rounds after the
	 * resume see much less than the paused time go by. */
	tsc_khz = (uint64_t)ioctl(r.vm.vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	assert_true(tsc_khz > 0);
	assert_int_not_equal(wait_counter(&r.dev, counter, &tsc_resumed), 0);
	assert_true(tsc_resumed > tsc_paused);
	assert_true(tsc_resumed - tsc_paused < tsc_khz * 100); /* 100 ms of TSC ticks */
	stop_vm(&r);
}

static void test_stop_while_paused_ends_the_vm(void **state)
{
	static struct running_vm r;

	start_vm(&r);
	assert_int_not_equal(wait_counter(&r.dev, 100, NULL), 0);
	assert_int_equal(vm_pause(&r.vm), 0);
	vm_request_stop(&r.vm, VM_STOP_SIGNAL, "stopped while paused");
	assert_int_equal(vm_pause(&r.vm), -ESHUTDOWN);
	assert_string_equal(err, "the VM is stopping");
	assert_int_equal(vm_resume(&r.vm), -ESHUTDOWN);
	stop_vm(&r); /* vm_run() returned: the parked vCPU left */
	assert_string_equal(r.vm.stop_why, "stopped while paused");
}

static void test_pause_before_the_vcpus_start(void **state)
{
	/* Pausing a VM whose vCPU threads are not running yet: they park before their first
	 * KVM_RUN, and the guest writes nothing until the resume. */
	static struct running_vm r;
	struct vm_config cfg;
	uint64_t writes, tsc;
	uint32_t counter;

	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.dev.lock, NULL);
	pthread_cond_init(&r.dev.cond, NULL);
	snprintf(r.guest, sizeof(r.guest), "%s/guests/counter.bin", guest_dir);
	vm_config_init_defaults(&cfg);
	r.cfg = cfg;
	r.cfg.raw_path = r.guest;
	assert_int_equal(vm_create(&r.vm, &r.cfg), 0);
	assert_int_equal(bus_register(&r.vm.pio, 0x530, 12, &dev_ops, &r.dev, "counter"), 0);
	assert_int_equal(vm_pause(&r.vm), 0);
	r.saved_stdin = dup(0);
	r.devnull = open("/dev/null", O_RDONLY);
	dup2(r.devnull, 0);
	assert_int_equal(pthread_create(&r.thread, NULL, run_thread, &r), 0);
	sleep_ms(200);
	snapshot(&r.dev, &writes, &counter, &tsc);
	assert_int_equal(writes, 0);
	assert_int_equal(vm_resume(&r.vm), 0);
	assert_int_not_equal(wait_counter(&r.dev, 100, NULL), 0);
	stop_vm(&r);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pause_stops_the_guest_and_resume_continues),
		cmocka_unit_test(test_guest_tsc_does_not_jump),
		cmocka_unit_test(test_stop_while_paused_ends_the_vm),
		cmocka_unit_test(test_pause_before_the_vcpus_start),
	};
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return 1;
	self[n] = '\0';
	snprintf(guest_dir, sizeof(guest_dir), "%s", dirname(self));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
