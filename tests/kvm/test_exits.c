/* Direct /dev/kvm tests with tiny bare-metal guests: port-I/O and MMIO exits reach the device
 * registered for their address, with the right offset, width, direction and data; unclaimed
 * addresses read as all ones; a triple fault ends the VM with an error. The guests are flat
 * binaries built from tests/kvm/guests/ next to this test's executable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/kvm.h"
#include "bus/bus.h"
#include "config/vm_config.h"
#include "vmm/vm.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct access {
	uint64_t offset;
	uint32_t len;
	uint64_t value;
	int is_write;
};

struct probe {
	struct access log[32];
	int n;
	uint64_t read_value;
};

static void probe_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct probe *p = opaque;
	uint64_t mask = len >= 8 ? ~0ULL : (1ULL << (len * 8)) - 1;

	memcpy(data, &p->read_value, len);
	if (p->n < 32)
		p->log[p->n++] = (struct access){ offset, len, p->read_value & mask, 0 };
}

static void probe_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct probe *p = opaque;
	uint64_t v = 0;

	memcpy(&v, data, len);
	if (p->n < 32)
		p->log[p->n++] = (struct access){ offset, len, v, 1 };
}

static const struct bus_device_ops probe_ops = { .read = probe_read, .write = probe_write };

static char guest_dir[PATH_MAX];

static const char *guest_path(const char *name)
{
	static char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/guests/%s.bin", guest_dir, name);
	return path;
}

/* A guest that never ends must fail its test, not hang the suite: stop the VM after a bound. */
#define GUEST_TIMEOUT_SECONDS 20

struct watchdog {
	struct vm *vm;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
};

static void *watchdog_thread(void *arg)
{
	struct watchdog *w = arg;
	struct timespec deadline;
	int fired;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += GUEST_TIMEOUT_SECONDS;
	pthread_mutex_lock(&w->lock);
	while (!w->done)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) != 0)
			break;
	fired = !w->done;
	pthread_mutex_unlock(&w->lock);
	if (fired)
		vm_request_stop(w->vm, VM_STOP_ERROR, "test watchdog: the guest did not finish");
	return NULL;
}

/* Set by a test that wants more than the default machine, or to look at the VM once it
 * stopped. */
static void (*configure)(struct vm_config *cfg);
static void (*inspect)(struct vm *vm);

/* Runs a raw guest with stdin from /dev/null; returns skiff's exit status. */
static int run_guest(const char *name, struct bus *(*which)(struct vm *), uint64_t base,
		     uint64_t len, struct probe *probe)
{
	struct vm_config cfg;
	struct vm vm;
	int saved_stdin = dup(0), devnull = open("/dev/null", O_RDONLY), status;

	vm_config_init_defaults(&cfg);
	cfg.raw_path = guest_path(name);
	if (configure)
		configure(&cfg);
	assert_int_equal(vm_create(&vm, &cfg), 0);
	if (probe)
		assert_int_equal(bus_register(which(&vm), base, len, &probe_ops, probe, "probe"), 0);
	dup2(devnull, 0);
	{
		struct watchdog w = { .vm = &vm, .lock = PTHREAD_MUTEX_INITIALIZER,
				      .cond = PTHREAD_COND_INITIALIZER };
		pthread_t t;

		pthread_create(&t, NULL, watchdog_thread, &w);
		status = vm_run(&vm);
		pthread_mutex_lock(&w.lock);
		w.done = 1;
		pthread_cond_signal(&w.cond);
		pthread_mutex_unlock(&w.lock);
		pthread_join(t, NULL);
		assert_int_not_equal(vm_stop_reason(&vm), VM_STOP_NONE);
		assert_string_not_equal(vm.stop_why, "test watchdog: the guest did not finish");
	}
	dup2(saved_stdin, 0);
	close(saved_stdin);
	close(devnull);
	if (inspect)
		inspect(&vm);
	vm_destroy(&vm);
	return status;
}

static struct bus *pio_bus(struct vm *vm)
{
	return &vm->pio;
}

static struct bus *mmio_bus(struct vm *vm)
{
	return &vm->mmio;
}

static void expect(const struct probe *p, int i, int is_write, uint64_t offset, uint32_t len,
		   uint64_t value)
{
	assert_true(i < p->n);
	assert_int_equal(p->log[i].is_write, is_write);
	assert_int_equal(p->log[i].offset, offset);
	assert_int_equal(p->log[i].len, len);
	assert_int_equal(p->log[i].value, value);
}

static void test_pio_exits_reach_their_device(void **state)
{
	struct probe p = { .read_value = 0x5a };

	assert_int_equal(run_guest("pio", pio_bus, 0x530, 8, &p), 0);
	assert_int_equal(p.n, 9);
	expect(&p, 0, 1, 0, 1, 0x41);
	expect(&p, 1, 1, 0, 2, 0x1234);
	expect(&p, 2, 0, 1, 1, 0x5a);
	expect(&p, 3, 1, 2, 1, 0x5a);
	expect(&p, 4, 1, 2, 1, 0xff); /* port 0x540 is nobody's: it read as 0xff */
	expect(&p, 5, 1, 4, 4, 0xdeadbeef);
	expect(&p, 6, 1, 3, 1, 'x'); /* rep outsb arrives as three accesses */
	expect(&p, 7, 1, 3, 1, 'y');
	expect(&p, 8, 1, 3, 1, 'z');
}

static void test_mmio_exits_reach_their_device(void **state)
{
	struct probe p = { .read_value = 0x11223344 };

	assert_int_equal(run_guest("mmio", mmio_bus, 0xd0000000, 0x10, &p), 0);
	assert_int_equal(p.n, 5);
	expect(&p, 0, 1, 0, 4, 0xcafef00d);
	expect(&p, 1, 1, 1, 1, 0x42);
	expect(&p, 2, 0, 4, 4, 0x11223344);
	expect(&p, 3, 1, 8, 4, 0x11223344);
	expect(&p, 4, 1, 12, 4, 0xffffffff);
}

static void test_pio_device_elsewhere_sees_nothing(void **state)
{
	/* The same guest with the probe moved: the probe must not see the guest's accesses. */
	struct probe p = { .read_value = 0x5a };

	assert_int_equal(run_guest("pio", pio_bus, 0x700, 8, &p), 0);
	assert_int_equal(p.n, 0);
}

/* fw_cfg (devices/fw_cfg.h) on the ports where firmware looks for it, with the machine's own
 * CPU count and RAM size, and a DMA request that lands in guest memory. */
static void test_fw_cfg_from_a_guest(void **state)
{
	static const uint8_t sig[] = {'Q', 'E', 'M', 'U'};
	struct probe p = { 0 };
	struct vm_config defaults;
	uint64_t ram = 0;

	vm_config_init_defaults(&defaults);
	assert_int_equal(run_guest("fw_cfg", pio_bus, 0x530, 4, &p), 0);
	assert_int_equal(p.n, 4 + 2 + 8 + 2);
	for (int i = 0; i < 4; i++)
		expect(&p, i, 1, 0, 1, sig[i]);
	expect(&p, 4, 1, 0, 1, (uint64_t)defaults.nr_cpus);
	expect(&p, 5, 1, 0, 1, 0);
	for (int i = 0; i < 8; i++)
		ram |= p.log[6 + i].value << (8 * i);
	assert_int_equal(ram, defaults.memory_mib << 20);
	/* One file, etc/e820: the big-endian count 1 reads as 0x01000000 in an outl. */
	expect(&p, 14, 1, 0, 4, 0x01000000);
	expect(&p, 15, 1, 0, 4, 0);
}

static void with_pci_and_rng(struct vm_config *cfg)
{
	cfg->enable_pci = true;
	cfg->rng = true;
}

/* --enable-pci: the guest reaches config space through ports 0xcf8/0xcfc and ECAM, sizes a BAR
 * and reads the virtio-pci device behind it. */
static void test_pci_config_space_from_a_guest(void **state)
{
	struct probe p = { 0 };

	configure = with_pci_and_rng;
	assert_int_equal(run_guest("pci", pio_bus, 0x530, 4, &p), 0);
	configure = NULL;
	assert_int_equal(p.n, 8);
	expect(&p, 0, 1, 0, 4, 0x00081b36); /* the host bridge */
	expect(&p, 1, 1, 0, 4, 0x10441af4); /* virtio-rng: 1af4:1044 */
	expect(&p, 2, 1, 0, 4, 0xffffffff); /* nothing at 00:02.0 */
	expect(&p, 3, 1, 0, 4, 0x10441af4); /* ECAM sees the same */
	expect(&p, 4, 1, 0, 4, 0xffff);	    /* an unaligned word: all ones */
	expect(&p, 5, 1, 0, 4, 0xffffffff); /* nothing at 00:05.0 */
	expect(&p, 6, 1, 0, 4, 0xffff8000); /* BAR 0 is 32 KiB */
	expect(&p, 7, 1, 0, 4, 1);	    /* num_queues through the BAR */
}

/* COM1's transmit register with the THRE interrupt off, as Linux's console writes it: once the
 * guest has written 512 bytes, KVM batches the writes (coalesced port I/O) and the vCPU replays
 * them at its next exit, so every byte reaches the serial output in order, and the eight bytes
 * after the first 512 cost no exit. With the interrupt on
 * each write exits again: the UART must raise THRE after each one. */
static char serial_tx_path[] = "/tmp/skiff-test-serial-tx-XXXXXX";
static uint64_t serial_tx_exits, serial_tx_replayed;

static void serial_tx_configure(struct vm_config *cfg)
{
	snprintf(cfg->serial_out_path, sizeof(cfg->serial_out_path), "%s", serial_tx_path);
}

static void serial_tx_inspect(struct vm *vm)
{
	serial_tx_exits = vm->vcpus[0].exits[VCPU_EXIT_IO_OUT];
	serial_tx_replayed = coalesced_replayed(&vm->coalesced);
}

static void test_serial_tx_batched_while_polled(void **state)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	bool coalesced_pio = kvm >= 0 && kvm_check_cap(kvm, KVM_CAP_COALESCED_PIO) > 0;
	int fd = mkstemp(serial_tx_path);
	char out[600] = "", want[600];
	ssize_t n;

	if (kvm >= 0)
		close(kvm);

	assert_true(fd >= 0);
	configure = serial_tx_configure;
	inspect = serial_tx_inspect;
	assert_int_equal(run_guest("serial_tx", NULL, 0, 0, NULL), 0);
	configure = NULL;
	inspect = NULL;
	n = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	unlink(serial_tx_path);
	assert_true(n >= 0);
	out[n] = '\0';
	memset(want, '.', 512);
	strcpy(want + 512, "abcdefghXY");
	assert_string_equal(out, want);
	if (!coalesced_pio) {
		/* Without coalesced port I/O every byte exits; the order is what remains to test. */
		assert_int_equal(serial_tx_exits, 512 + 11);
		skip();
	}
	/* The 512 dots, the IER write and X and Y exit; the eight bytes after the dots did not. */
	assert_int_equal(serial_tx_replayed, 8);
	assert_int_equal(serial_tx_exits, 512 + 3);
}

static void test_triple_fault_is_an_error(void **state)
{
	assert_int_equal(run_guest("triple_fault", NULL, 0, 0, NULL), 1);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pio_exits_reach_their_device),
		cmocka_unit_test(test_mmio_exits_reach_their_device),
		cmocka_unit_test(test_pio_device_elsewhere_sees_nothing),
		cmocka_unit_test(test_triple_fault_is_an_error),
		cmocka_unit_test(test_pci_config_space_from_a_guest),
		cmocka_unit_test(test_fw_cfg_from_a_guest),
		cmocka_unit_test(test_serial_tx_batched_while_polled),
	};
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return 1;
	self[n] = '\0';
	snprintf(guest_dir, sizeof(guest_dir), "%s", dirname(self));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
