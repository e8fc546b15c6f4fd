/* The missing-driver hint (vmm/driver_hint.h): the verdict on one device (set up, no transport
 * driver, no device driver, a driver that did not finish), the line naming the kernel option,
 * the check over a device list with several transports (logged once per device not set up,
 * nothing for the ones set up or without a guest driver), the clock (5 s after the boot-timer
 * write, 60 s after the start, paused time not counted, due once), and the virtio core's record
 * of the status bits a device ever had, which a reset does not erase. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/device.h"
#include "base/log.h"
#include "virtio/core.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "vmm/driver_hint.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S 1000000ULL /* one second in µs */

/* ---- A device list of stand-ins whose guest_driver op reports what the test sets ---- */

struct fake {
	struct vm_device dev;
	bool judge;			  /* guest_driver returns true */
	struct vm_device_guest_driver gd; /* what it reports */
};

static bool fake_guest_driver(struct vm_device *dev, struct vm_device_guest_driver *out)
{
	struct fake *f = (struct fake *)dev;

	*out = f->gd;
	return f->judge;
}

static void fake_destroy(struct vm_device *dev)
{
}

static const struct vm_device_ops blk_ops = {
    .name = "virtio-blk",
    .destroy = fake_destroy,
    .guest_option = "CONFIG_VIRTIO_BLK",
    .guest_module = "virtio_blk",
    .guest_driver = fake_guest_driver,
};

static const struct vm_device_ops rng_ops = {
    .name = "virtio-rng",
    .destroy = fake_destroy,
    .guest_option = "CONFIG_HW_RANDOM_VIRTIO",
    .guest_module = "virtio_rng",
    .guest_driver = fake_guest_driver,
};

static const struct vm_device_ops uart_ops = {
    .name = "serial-8250",
    .destroy = fake_destroy,
};

static const struct vm_device_guest_driver MMIO = {
    .transport = "virtio-mmio",
    .transport_option = "CONFIG_VIRTIO_MMIO",
    .transport_module = "virtio_mmio",
};

static const struct vm_device_guest_driver PCI = {
    .transport = "virtio-pci",
    .transport_option = "CONFIG_VIRTIO_PCI",
    .transport_module = "virtio_pci",
};

/* found/taken/ready on top of a transport's fields */
static struct vm_device_guest_driver gd(struct vm_device_guest_driver t, bool found, bool taken,
					bool ready)
{
	t.found = found;
	t.taken = taken;
	t.ready = ready;
	t.status = (found ? VIRTIO_STATUS_ACKNOWLEDGE : 0) | (taken ? VIRTIO_STATUS_DRIVER : 0) |
		   (ready ? VIRTIO_STATUS_DRIVER_OK : 0);
	return t;
}

static void add(struct vm_devices *list, struct fake *f, const struct vm_device_ops *ops,
		const char *id, struct vm_device_guest_driver d)
{
	memset(f, 0, sizeof(*f));
	vm_device_init(&f->dev, VM_DEVICE_VIRTIO_BLK, ops, id);
	f->judge = ops->guest_driver != NULL;
	f->gd = d;
	vm_device_add(list, &f->dev);
}

/* ---- The log, captured in a file ---- */

static char path[64];

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/skiff-driver-hint-test-%d", getpid());
	unlink(path);
	assert_int_equal(log_set_path(path), 0);
	log_set_level(LOG_INFO);
	return 0;
}

static int teardown(void **state)
{
	assert_int_equal(log_set_path(NULL), 0);
	log_set_level(LOG_WARN);
	unlink(path);
	return 0;
}

/* What was logged since the last call. */
static const char *logged(void)
{
	static char buf[8192];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_int_equal(truncate(path, 0), 0);
	return buf;
}

static int count_lines(const char *text)
{
	int n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

/* ---- The verdict and the line ---- */

static void test_judge(void **state)
{
	struct vm_device_guest_driver d;

	/* Set up: nothing to say, whatever else happened. */
	d = gd(MMIO, true, true, true);
	assert_int_equal(driver_hint_judge(&d, true), DRIVER_HINT_NONE);
	/* ... also when the guest has reset it since (ready is "ever"). */
	d.status = 0;
	assert_int_equal(driver_hint_judge(&d, true), DRIVER_HINT_NONE);
	/* Found by the transport's driver, taken by none: the device's driver. */
	d = gd(MMIO, true, false, false);
	assert_int_equal(driver_hint_judge(&d, true), DRIVER_HINT_DRIVER);
	/* Never found, nor any other on its transport: the transport's driver. */
	d = gd(MMIO, false, false, false);
	assert_int_equal(driver_hint_judge(&d, false), DRIVER_HINT_TRANSPORT);
	/* Never found while others on its transport were: not the transport. */
	assert_int_equal(driver_hint_judge(&d, true), DRIVER_HINT_DRIVER);
	/* Taken and not finished (a probe that failed, features refused). */
	d = gd(MMIO, true, true, false);
	assert_int_equal(driver_hint_judge(&d, true), DRIVER_HINT_UNFINISHED);
}

static void test_format_names_the_option(void **state)
{
	struct vm_devices list = {0};
	struct fake disk, rng;
	struct vm_device_guest_driver d;
	char line[512];

	add(&list, &disk, &blk_ops, "rootfs", gd(MMIO, true, false, false));
	add(&list, &rng, &rng_ops, NULL, gd(PCI, false, false, false));

	driver_hint_format(line, sizeof(line), &disk.dev, &disk.gd, DRIVER_HINT_DRIVER, "WHEN");
	assert_string_equal(line, "virtio-blk rootfs: no driver in the guest took this device "
				  "(WHEN): its kernel needs CONFIG_VIRTIO_BLK (built in, or "
				  "module virtio_blk loaded)");
	driver_hint_format(line, sizeof(line), &rng.dev, &rng.gd, DRIVER_HINT_TRANSPORT, "WHEN");
	assert_string_equal(line, "virtio-rng: the guest found no virtio-pci device at all (WHEN): "
				  "its kernel needs CONFIG_VIRTIO_PCI (built in, or module "
				  "virtio_pci loaded)");
	d = gd(MMIO, true, true, false);
	d.failed = true;
	d.status = 0x83;
	driver_hint_format(line, sizeof(line), &disk.dev, &d, DRIVER_HINT_UNFINISHED, "WHEN");
	assert_string_equal(line, "virtio-blk rootfs: the guest's driver did not finish setting "
				  "this device up (WHEN; status 0x83, the driver set FAILED)");
	/* Cut, never overrun. */
	memset(line, 'x', sizeof(line));
	driver_hint_format(line, 20, &disk.dev, &disk.gd, DRIVER_HINT_DRIVER, "WHEN");
	assert_int_equal(strlen(line), 19);
	assert_int_equal(line[20], 'x');
}

/* ---- The check over a list ---- */

/* virtio-mmio found (the rng is set up), the disk taken by no driver: one line, for the disk. */
static void test_check_blames_the_missing_device_driver(void **state)
{
	struct vm_devices list = {0};
	struct fake uart, disk, rng;
	const char *log;

	add(&list, &uart, &uart_ops, NULL, MMIO);
	add(&list, &disk, &blk_ops, "rootfs", gd(MMIO, true, false, false));
	add(&list, &rng, &rng_ops, NULL, gd(MMIO, true, true, true));
	logged();
	assert_int_equal(driver_hint_check(&list, "5 s after the guest's boot-timer write"), 1);
	log = logged();
	assert_int_equal(count_lines(log), 1);
	assert_non_null(strstr(log, "skiff: warning: virtio-blk rootfs: no driver in the guest "
				    "took this device (5 s after the guest's boot-timer write): "
				    "its kernel needs CONFIG_VIRTIO_BLK"));
	assert_null(strstr(log, "virtio-rng"));
	assert_null(strstr(log, "serial"));
}

/* No virtio-mmio device found at all: each device's line blames the transport. A device on
 * virtio-pci next to them that was found is judged on its own. */
static void test_check_blames_the_missing_transport(void **state)
{
	struct vm_devices list = {0};
	struct fake disk, rng, pci_disk, pci_rng;
	const char *log;

	add(&list, &disk, &blk_ops, "rootfs", gd(MMIO, false, false, false));
	add(&list, &rng, &rng_ops, NULL, gd(MMIO, false, false, false));
	add(&list, &pci_disk, &blk_ops, "data", gd(PCI, false, false, false));
	add(&list, &pci_rng, &rng_ops, NULL, gd(PCI, true, true, true));
	logged();
	assert_int_equal(driver_hint_check(&list, "30 s after the VM started"), 3);
	log = logged();
	assert_int_equal(count_lines(log), 3);
	assert_non_null(strstr(log,
			       "virtio-blk rootfs: the guest found no virtio-mmio device at all "
			       "(30 s after the VM started): its kernel needs "
			       "CONFIG_VIRTIO_MMIO"));
	assert_non_null(strstr(log, "virtio-rng: the guest found no virtio-mmio device at all"));
	assert_non_null(strstr(log, "virtio-blk data: no driver in the guest took this device "
				    "(30 s after the VM started): its kernel needs "
				    "CONFIG_VIRTIO_BLK"));
	assert_null(strstr(log, "CONFIG_VIRTIO_PCI"));
}

/* Everything set up (or with nothing to judge): silence. */
static void test_check_is_quiet_when_all_set_up(void **state)
{
	struct vm_devices list = {0};
	struct fake disk, rng, unjudged;

	add(&list, &disk, &blk_ops, "rootfs", gd(MMIO, true, true, true));
	add(&list, &rng, &rng_ops, NULL, gd(MMIO, true, true, true));
	add(&list, &unjudged, &rng_ops, NULL, gd(MMIO, false, false, false));
	unjudged.judge = false; /* e.g. an entry without a transport */
	logged();
	assert_int_equal(driver_hint_check(&list, "WHEN"), 0);
	assert_string_equal(logged(), "");
}

/* ---- The clock ---- */

static void test_clock_without_boot_timer(void **state)
{
	struct driver_hint_clock k;
	const char *when = NULL;
	uint64_t t;

	driver_hint_clock_start(&k, 100 * S);
	for (t = 101 * S; t < 160 * S; t += S)
		assert_false(driver_hint_due(&k, t, false, DRIVER_HINT_NO_BOOT, &when));
	assert_true(driver_hint_due(&k, 160 * S, false, DRIVER_HINT_NO_BOOT, &when));
	assert_string_equal(when, "60 s after the VM started, and the guest never wrote the boot "
				  "timer: early, if it is still booting");
	/* Once. */
	assert_false(driver_hint_due(&k, 161 * S, false, DRIVER_HINT_NO_BOOT, &when));
	assert_false(driver_hint_due(&k, 230 * S, false, 180 * S, &when));
}

static void test_clock_after_boot_timer(void **state)
{
	struct driver_hint_clock k;
	const char *when = NULL;

	driver_hint_clock_start(&k, 10 * S);
	assert_false(driver_hint_due(&k, 11 * S, false, DRIVER_HINT_NO_BOOT, &when));
	/* The guest wrote its boot timer at 12 s: due at 17 s, not before. */
	assert_false(driver_hint_due(&k, 13 * S, false, 12 * S, &when));
	assert_false(driver_hint_due(&k, 17 * S - 1, false, 12 * S, &when));
	assert_true(driver_hint_due(&k, 17 * S, false, 12 * S, &when));
	assert_string_equal(when, "5 s after the guest's boot-timer write");
	assert_false(driver_hint_due(&k, 18 * S, false, 12 * S, &when));

	/* A boot later than 55 s after the start: the 60 s bound comes first. */
	driver_hint_clock_start(&k, 0);
	assert_false(driver_hint_due(&k, 59 * S, false, 58 * S, &when));
	assert_true(driver_hint_due(&k, 60 * S, false, 58 * S, &when));
	assert_string_equal(when, "60 s after the VM started, and the guest never wrote the boot "
				  "timer: early, if it is still booting");
}

/* Time paused (as the ticks see it) counts for neither bound. */
static void test_clock_skips_paused_time(void **state)
{
	struct driver_hint_clock k;
	const char *when = NULL;
	uint64_t t;

	driver_hint_clock_start(&k, 0);
	assert_false(driver_hint_due(&k, 10 * S, false, DRIVER_HINT_NO_BOOT, &when));
	for (t = 11 * S; t <= 60 * S; t += S) /* paused from 10 s to 60 s */
		assert_false(driver_hint_due(&k, t, true, DRIVER_HINT_NO_BOOT, &when));
	assert_false(driver_hint_due(&k, 109 * S, false, DRIVER_HINT_NO_BOOT, &when));
	assert_true(driver_hint_due(&k, 110 * S, false, DRIVER_HINT_NO_BOOT, &when));

	/* Booted at 2 s, paused 3 s to 13 s: due at 17 s. */
	driver_hint_clock_start(&k, 0);
	assert_false(driver_hint_due(&k, 3 * S, false, 2 * S, &when));
	for (t = 4 * S; t <= 13 * S; t += S)
		assert_false(driver_hint_due(&k, t, true, 2 * S, &when));
	assert_false(driver_hint_due(&k, 16 * S, false, 2 * S, &when));
	assert_true(driver_hint_due(&k, 17 * S, false, 2 * S, &when));
	assert_string_equal(when, "5 s after the guest's boot-timer write");
}

/* ---- The virtio core's status record ---- */

static bool no_notify_area(void *transport, uint16_t q, struct virtio_notify_area *area)
{
	return false;
}

static void no_interrupt(void *transport, int q)
{
}

static const struct virtio_transport_ops stub_transport = {
    .notify_area = no_notify_area,
    .interrupt = no_interrupt,
};

static void write_status(struct virtio_core *c, uint32_t value)
{
	virtio_core_lock(c);
	virtio_core_write_status(c, value);
	virtio_core_unlock(c);
}

/* A driver that sets the device up, then resets it: the core still knows it was set up. One
 * that only acknowledges it (no driver for it) leaves ACKNOWLEDGE alone. */
static void test_core_remembers_status_across_reset(void **state)
{
	struct guest_mem mem = {0};
	struct virtio_core_params p = {
	    .vm_fd = -1,
	    .mem = &mem,
	    .max_config_size = 0x100,
	    .ops = &stub_transport,
	    .transport_name = "virtio-test",
	    .guest_option = "CONFIG_VIRTIO_TEST",
	    .guest_module = "virtio_test",
	};
	struct virtio_device *dev;
	struct virtio_core *c;
	const uint32_t ack = VIRTIO_STATUS_ACKNOWLEDGE, drv = VIRTIO_STATUS_DRIVER;

	assert_int_equal(virtio_rng_create(NULL, &dev), 0);
	c = virtio_core_create(&p, dev);
	assert_non_null(c);
	assert_string_equal(c->guest_option, "CONFIG_VIRTIO_TEST");
	assert_string_equal(c->guest_module, "virtio_test");
	assert_int_equal(virtio_core_status_seen(c), 0);

	write_status(c, ack);
	assert_int_equal(virtio_core_status_seen(c), ack);
	write_status(c, 0);
	assert_int_equal(virtio_core_status_seen(c), ack);

	write_status(c, ack | drv);
	virtio_core_lock(c);
	c->state.driver_features_sel = 1;
	virtio_core_write_driver_features(c, 1u << (VIRTIO_F_VERSION_1 - 32));
	virtio_core_unlock(c);
	write_status(c, ack | drv | VIRTIO_STATUS_FEATURES_OK);
	write_status(c, ack | drv | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_core_status(c) & VIRTIO_STATUS_DRIVER_OK);
	write_status(c, 0);
	assert_int_equal(virtio_core_status(c), 0);
	assert_true(virtio_core_status_seen(c) & VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_core_status_seen(c) & VIRTIO_STATUS_FEATURES_OK);

	virtio_core_destroy(c);
}

/* A DRIVER_OK the core refuses (no FEATURES_OK) is not remembered as set up. */
static void test_core_does_not_remember_refused_driver_ok(void **state)
{
	struct guest_mem mem = {0};
	struct virtio_core_params p = {
	    .vm_fd = -1, .mem = &mem, .max_config_size = 0x100, .ops = &stub_transport};
	struct virtio_device *dev;
	struct virtio_core *c;

	assert_int_equal(virtio_rng_create(NULL, &dev), 0);
	c = virtio_core_create(&p, dev);
	assert_non_null(c);
	write_status(c, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	assert_false(virtio_core_status_seen(c) & VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_core_status_seen(c) & VIRTIO_STATUS_DRIVER);
	virtio_core_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_judge),
	    cmocka_unit_test(test_format_names_the_option),
	    cmocka_unit_test_setup_teardown(test_check_blames_the_missing_device_driver, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_check_blames_the_missing_transport, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_check_is_quiet_when_all_set_up, setup, teardown),
	    cmocka_unit_test(test_clock_without_boot_timer),
	    cmocka_unit_test(test_clock_after_boot_timer),
	    cmocka_unit_test(test_clock_skips_paused_time),
	    cmocka_unit_test(test_core_remembers_status_across_reset),
	    cmocka_unit_test(test_core_does_not_remember_refused_driver_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
