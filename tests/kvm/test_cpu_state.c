/* The x86 machine state KVM holds (arch_vm_state_* and arch_vcpu_state_*, arch/x86/cpu_state.c),
 * on /dev/kvm: a bare-metal guest that counts in a register (guests/counter.S) is paused and its
 * vCPU and VM state saved; that VM is destroyed, a new one is built from the same config, the
 * state restored into it before its vCPU first runs, and the guest counts on from where it
 * stood instead of from 0, with its TSC carried over (where this host's KVM moves a TSC at all).
 * The in-kernel irqchip and PIT survive a round trip through a second VM byte for byte. Damaged
 * state (truncated, flipped, another vCPU's, a length KVM's ABI does not have) is refused with a
 * reason, and the vCPU it was meant for keeps its registers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/arch.h"
#include "arch/x86/cpu_state.h"
#include "base/log.h"
#include "base/state.h"
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
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define WAIT_SECONDS 10

struct counter_dev {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t writes;
	uint32_t counter, first_counter;
	bool counted;
	uint32_t tsc_lo, tsc_hi;
	uint64_t tsc, first_tsc;
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
		if (!d->counted) {
			d->counted = true;
			d->first_counter = v;
			d->first_tsc = d->tsc;
		}
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
}

static const struct bus_device_ops dev_ops = {.read = dev_read, .write = dev_write};

static bool wait_counter(struct counter_dev *d, uint32_t above)
{
	struct timespec deadline;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WAIT_SECONDS;
	pthread_mutex_lock(&d->lock);
	while (!(d->counted && d->counter > above))
		if (pthread_cond_timedwait(&d->cond, &d->lock, &deadline) != 0)
			break;
	ok = d->counted && d->counter > above;
	pthread_mutex_unlock(&d->lock);
	return ok;
}

static char guest_dir[PATH_MAX];

struct running_vm {
	struct vm vm;
	struct vm_config cfg;
	struct counter_dev dev;
	pthread_t thread;
	bool started;
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

/* Builds the VM; its vCPU does not run until start_vm(). */
static void build_vm(struct running_vm *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->dev.lock, NULL);
	pthread_cond_init(&r->dev.cond, NULL);
	snprintf(r->guest, sizeof(r->guest), "%s/guests/counter.bin", guest_dir);
	vm_config_init_defaults(&r->cfg);
	r->cfg.raw_path = r->guest;
	assert_int_equal(vm_create(&r->vm, &r->cfg), 0);
	assert_int_equal(bus_register(&r->vm.pio, 0x530, 12, &dev_ops, &r->dev, "counter"), 0);
}

static void start_vm(struct running_vm *r)
{
	r->saved_stdin = dup(0);
	r->devnull = open("/dev/null", O_RDONLY);
	dup2(r->devnull, 0);
	assert_int_equal(pthread_create(&r->thread, NULL, run_thread, r), 0);
	r->started = true;
}

static void stop_vm(struct running_vm *r)
{
	struct timespec deadline;

	if (r->started) {
		vm_request_stop(&r->vm, VM_STOP_SIGNAL, "test done");
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += WAIT_SECONDS;
		assert_int_equal(pthread_timedjoin_np(r->thread, NULL, &deadline), 0);
		dup2(r->saved_stdin, 0);
		close(r->saved_stdin);
		close(r->devnull);
	}
	vm_destroy(&r->vm);
}

/* The machine's state as a snapshot holds it: the VM's section, then each vCPU's. */
static void save_machine(struct vm *vm, struct state_writer *w)
{
	state_writer_init(w);
	assert_int_equal(arch_vm_state_save(vm, w), 0);
	for (int i = 0; i < vm->nr_vcpus; i++)
		if (arch_vcpu_state_save(vm, &vm->vcpus[i], w) != 0)
			fail_msg("saving vCPU %d: %s", i, log_last_error());
	assert_int_equal(state_writer_status(w), 0);
}

static int restore_machine(struct vm *vm, const void *buf, size_t len)
{
	struct state_reader r;
	int ret;

	state_reader_init(&r, buf, len);
	ret = arch_vm_state_restore(vm, &r);
	for (int i = 0; !ret && i < vm->nr_vcpus; i++)
		ret = arch_vcpu_state_restore(vm, &vm->vcpus[i], &r);
	if (!ret && !state_reader_at_end(&r))
		ret = -EBADMSG;
	return ret;
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

/* Whether this host's KVM gives a vCPU the TSC value written to it (a software KVM may not). */
static bool kvm_sets_tsc(struct vcpu *vcpu)
{
	uint64_t want = read_tsc(vcpu) + (1ULL << 44);
	struct {
		struct kvm_msrs header;
		struct kvm_msr_entry entry;
	} msrs = {.header.nmsrs = 1, .entry.index = MSR_IA32_TSC, .entry.data = want};

	if (ioctl(vcpu->fd, KVM_SET_MSRS, &msrs) != 1)
		return false;
	return read_tsc(vcpu) >= want;
}

static void test_a_restored_guest_counts_on(void **state)
{
	static struct running_vm a, b;
	struct state_writer w;
	struct kvm_regs regs;
	uint32_t counter;
	uint64_t tsc, tsc_khz;
	bool tsc_moves;

	build_vm(&a);
	start_vm(&a);
	assert_true(wait_counter(&a.dev, 5000));
	assert_int_equal(vm_pause(&a.vm), 0);
	pthread_mutex_lock(&a.dev.lock);
	counter = a.dev.counter;
	tsc = a.dev.tsc;
	pthread_mutex_unlock(&a.dev.lock);
	assert_int_equal(ioctl(a.vm.vcpus[0].fd, KVM_GET_REGS, &regs), 0);
	save_machine(&a.vm, &w);
	stop_vm(&a);

	/* A new VM from the same config would count from 1; with the state it goes on. */
	build_vm(&b);
	tsc_moves = kvm_sets_tsc(&b.vm.vcpus[0]);
	if (restore_machine(&b.vm, w.buf, w.len) != 0)
		fail_msg("restoring: %s", log_last_error());
	start_vm(&b);
	assert_true(wait_counter(&b.dev, counter));
	pthread_mutex_lock(&b.dev.lock);
	/* The pause came between two rounds, or after the increment and before its write. */
	assert_true((uint32_t)regs.rbx == counter || (uint32_t)regs.rbx == counter + 1);
	assert_int_equal(b.dev.first_counter, counter + 1);
	if (tsc_moves) {
		tsc_khz = (uint64_t)ioctl(b.vm.vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
		assert_true(b.dev.first_tsc > tsc);
		assert_true(b.dev.first_tsc - tsc < tsc_khz * 1000); /* within a second */
	} else {
		print_message("this host's KVM does not set the TSC: its continuity not checked\n");
	}
	pthread_mutex_unlock(&b.dev.lock);
	stop_vm(&b);
	state_writer_free(&w);
}

/* Builds the state of a bare VM with the in-kernel PIC, I/O APIC and PIT, and no vCPU. */
static int irqchip_vm(int kvm_fd)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	int vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);

	assert_true(vm_fd >= 0);
	assert_int_equal(ioctl(vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000), 0);
	assert_int_equal(ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0), 0);
	assert_int_equal(ioctl(vm_fd, KVM_CREATE_PIT2, &pit), 0);
	return vm_fd;
}

static void test_irqchips_survive_a_round_trip(void **state)
{
	int kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	struct kvm_irqchip ioapic = {.chip_id = KVM_IRQCHIP_IOAPIC};
	struct kvm_irqchip master = {.chip_id = KVM_IRQCHIP_PIC_MASTER};
	struct kvm_pit_state2 pit;
	struct state_writer w1, w2;
	struct state_reader r;
	int a, b;

	assert_true(kvm_fd >= 0);
	a = irqchip_vm(kvm_fd);
	/* State no fresh VM has: an unmasked, level-triggered I/O APIC pin aimed at vector 0x42,
	 * a PIC with its interrupts masked but one, and the PIT counting in mode 2. */
	assert_int_equal(ioctl(a, KVM_GET_IRQCHIP, &ioapic), 0);
	ioapic.chip.ioapic.redirtbl[5].fields.vector = 0x42;
	ioapic.chip.ioapic.redirtbl[5].fields.trig_mode = 1;
	ioapic.chip.ioapic.redirtbl[5].fields.mask = 0;
	ioapic.chip.ioapic.redirtbl[5].fields.dest_id = 3;
	assert_int_equal(ioctl(a, KVM_SET_IRQCHIP, &ioapic), 0);
	assert_int_equal(ioctl(a, KVM_GET_IRQCHIP, &master), 0);
	master.chip.pic.imr = 0xfb;
	master.chip.pic.irq_base = 0x20;
	assert_int_equal(ioctl(a, KVM_SET_IRQCHIP, &master), 0);
	assert_int_equal(ioctl(a, KVM_GET_PIT2, &pit), 0);
	pit.channels[0].mode = 2;
	pit.channels[0].count = 11932;
	assert_int_equal(ioctl(a, KVM_SET_PIT2, &pit), 0);

	state_writer_init(&w1);
	assert_int_equal(x86_vm_state_save(a, 1, &w1), 0);
	b = irqchip_vm(kvm_fd);
	state_reader_init(&r, w1.buf, w1.len);
	assert_int_equal(x86_vm_state_restore(b, 1, false, &r), 0);
	assert_true(state_reader_at_end(&r));

	memset(&ioapic, 0, sizeof(ioapic));
	ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	assert_int_equal(ioctl(b, KVM_GET_IRQCHIP, &ioapic), 0);
	assert_int_equal(ioapic.chip.ioapic.redirtbl[5].fields.vector, 0x42);
	assert_int_equal(ioapic.chip.ioapic.redirtbl[5].fields.dest_id, 3);
	memset(&master, 0, sizeof(master));
	master.chip_id = KVM_IRQCHIP_PIC_MASTER;
	assert_int_equal(ioctl(b, KVM_GET_IRQCHIP, &master), 0);
	assert_int_equal(master.chip.pic.imr, 0xfb);
	assert_int_equal(master.chip.pic.irq_base, 0x20);
	memset(&pit, 0, sizeof(pit));
	assert_int_equal(ioctl(b, KVM_GET_PIT2, &pit), 0);
	assert_int_equal(pit.channels[0].mode, 2);
	assert_int_equal(pit.channels[0].count, 11932);

	/* Saved again from the second VM, the irqchips and PIT are the same bytes (the clock and
	 * the host's time, the first 16 payload bytes, and the PIT's count load time move on). */
	state_writer_init(&w2);
	assert_int_equal(x86_vm_state_save(b, 1, &w2), 0);
	assert_int_equal(w1.len, w2.len);
	assert_memory_equal(w1.buf + STATE_SECTION_HEADER_SIZE + 16,
			    w2.buf + STATE_SECTION_HEADER_SIZE + 16,
			    w1.len - STATE_SECTION_HEADER_SIZE - 16 - sizeof(pit) - 4);
	state_writer_free(&w1);
	state_writer_free(&w2);
	close(a);
	close(b);
	close(kvm_fd);
}

static void assert_refused(struct vm *vm, const void *buf, size_t len, const char *why)
{
	struct kvm_regs before, after;
	int ret;

	assert_int_equal(ioctl(vm->vcpus[0].fd, KVM_GET_REGS, &before), 0);
	ret = restore_machine(vm, buf, len);
	if (ret == 0)
		fail_msg("damaged state (%s) was restored", why);
	assert_true(ret == -EBADMSG || ret == -EPROTONOSUPPORT);
	assert_true(strlen(log_last_error()) > 0);
	assert_int_equal(ioctl(vm->vcpus[0].fd, KVM_GET_REGS, &after), 0);
	assert_memory_equal(&before, &after, sizeof(before));
}

static void test_damaged_state_is_refused(void **state)
{
	static struct running_vm a, b;
	struct state_writer w;
	uint8_t *copy;
	size_t vcpu_at;
	char *why;

	build_vm(&a);
	save_machine(&a.vm, &w);
	stop_vm(&a);
	build_vm(&b);
	copy = malloc(w.len);
	assert_non_null(copy);

	/* Truncated anywhere: at every 97th byte, and one byte short. */
	for (size_t cut = 0; cut < w.len; cut += 97)
		assert_refused(&b.vm, w.buf, cut, "truncated");
	assert_refused(&b.vm, w.buf, w.len - 1, "one byte short");

	/* The vCPU section names another vCPU. */
	vcpu_at = STATE_SECTION_HEADER_SIZE + ((uint32_t)w.buf[4] | (uint32_t)w.buf[5] << 8 |
					       (uint32_t)w.buf[6] << 16 | (uint32_t)w.buf[7] << 24);
	memcpy(copy, w.buf, w.len);
	copy[vcpu_at + STATE_SECTION_HEADER_SIZE] = 7;
	assert_refused(&b.vm, copy, w.len, "another vCPU's");
	assert_non_null(strstr(log_last_error(), "vCPU 7's"));

	/* A register blob whose length is not struct kvm_regs's. */
	memcpy(copy, w.buf, w.len);
	copy[vcpu_at + STATE_SECTION_HEADER_SIZE + 4] ^= 0x08;
	assert_refused(&b.vm, copy, w.len, "a register blob of another length");
	why = strstr(log_last_error(), "registers:");
	assert_non_null(why);

	/* A version this build does not know. */
	memcpy(copy, w.buf, w.len);
	copy[2] = 9;
	assert_refused(&b.vm, copy, w.len, "version 9");

	/* The sections swapped: a vCPU's where the VM's belongs. */
	memcpy(copy, w.buf + vcpu_at, w.len - vcpu_at);
	memcpy(copy + (w.len - vcpu_at), w.buf, vcpu_at);
	assert_refused(&b.vm, copy, w.len, "sections out of order");

	free(copy);
	state_writer_free(&w);
	stop_vm(&b);
}

static uint64_t clock_of(int vm_fd)
{
	struct kvm_clock_data c = {0};

	assert_int_equal(ioctl(vm_fd, KVM_GET_CLOCK, &c), 0);
	return c.clock;
}

/* kvmclock after a restore: where it stood, or moved on by the real time since the save. */
static void test_clock_realtime(void **state)
{
	int kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	struct state_writer w;
	struct state_reader r;
	uint64_t saved, kept, moved;
	int a, b, c;

	assert_true(kvm_fd >= 0);
	a = irqchip_vm(kvm_fd);
	state_writer_init(&w);
	assert_int_equal(x86_vm_state_save(a, 1, &w), 0);
	saved = clock_of(a);
	usleep(1200 * 1000);
	b = irqchip_vm(kvm_fd);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(x86_vm_state_restore(b, 1, false, &r), 0);
	kept = clock_of(b);
	c = irqchip_vm(kvm_fd);
	state_reader_init(&r, w.buf, w.len);
	assert_int_equal(x86_vm_state_restore(c, 1, true, &r), 0);
	moved = clock_of(c);
	/* saved was read just after the save; the restores came 1.2 s later. */
	assert_true(kept < saved + 300000000ULL);
	assert_true(moved >= saved + 1100000000ULL);
	assert_true(moved < saved + 3000000000ULL);
	state_writer_free(&w);
	close(a);
	close(b);
	close(c);
	close(kvm_fd);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_restored_guest_counts_on),
		cmocka_unit_test(test_irqchips_survive_a_round_trip),
		cmocka_unit_test(test_damaged_state_is_refused),
		cmocka_unit_test(test_clock_realtime),
	};
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return 1;
	self[n] = '\0';
	snprintf(guest_dir, sizeof(guest_dir), "%s", dirname(self));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
