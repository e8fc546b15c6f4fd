/* Metrics: every line is one JSON object with the documented keys; the counters follow VM exits
 * counted by vcpu_count_exit(), a real virtio-blk device's requests and the API's answers; the
 * boot time is null until the guest writes the boot timer; the flush thread writes at its period
 * and stops at once on detach; a FIFO nobody reads costs lines, never a blocked or crashed
 * flush. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/boot_timer.h"
#include "virtio/devices.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"
#include "virtio_driver.h"
#include "base/log.h"
#include "vmm/metrics.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The reason a call failed: the thread's last error (base/log.h). */
#define err log_last_error()

#define MiB	 (1ULL << 20)
#define RAM_SIZE (4 * MiB)
#define QSIZE	 64

static char path[64];

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/skiff-metrics-test-%d", getpid());
	unlink(path);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	return 0;
}

static uint64_t now_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The file's lines, each parsed (the test fails on a line that is not one JSON object). */
static int read_lines(json_t **lines, int max)
{
	static char buf[1 << 18];
	int fd = open(path, O_RDONLY), n = 0;
	char *line, *save;
	ssize_t len;

	assert_true(fd >= 0);
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(len >= 0);
	buf[len] = '\0';
	assert_true(len == 0 || buf[len - 1] == '\n');
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t e;
		json_t *j = json_loads(line, 0, &e);

		if (!j || !json_is_object(j))
			fail_msg("not a JSON object: %s (%s)", line, e.text);
		assert_true(n < max);
		lines[n++] = j;
	}
	return n;
}

static void free_lines(json_t **lines, int n)
{
	for (int i = 0; i < n; i++)
		json_decref(lines[i]);
}

static json_t *get(json_t *j, const char *dotted)
{
	char key[128], *k, *save;

	snprintf(key, sizeof(key), "%s", dotted);
	for (k = strtok_r(key, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
		j = json_object_get(j, k);
	if (!j)
		fail_msg("no %s in the line", dotted);
	return j;
}

static json_int_t num(json_t *j, const char *dotted)
{
	json_t *v = get(j, dotted);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static void test_line_without_vm(void **state)
{
	struct metrics *m;
	json_t *lines[4];
	uint64_t t0 = now_ms(CLOCK_REALTIME);

	assert_int_equal(metrics_create(&m, path), 0);
	metrics_count_api_request(m, 204);
	metrics_count_api_request(m, 400);
	metrics_count_api_request(m, 200);
	assert_int_equal(metrics_flush(m), 0);
	metrics_destroy(m);

	assert_int_equal(read_lines(lines, 4), 1);
	assert_true(num(lines[0], "utc_timestamp_ms") >= (json_int_t)t0);
	assert_true(num(lines[0], "utc_timestamp_ms") <= (json_int_t)now_ms(CLOCK_REALTIME));
	assert_true(num(lines[0], "uptime_ms") >= 0);
	assert_int_equal(num(lines[0], "api.requests"), 3);
	assert_int_equal(num(lines[0], "api.errors"), 1);
	assert_true(json_is_null(get(lines[0], "boot_time_us")));
	assert_true(num(lines[0], "vmm.rss_bytes") > 0);
	assert_null(json_object_get(lines[0], "vcpu"));
	assert_null(json_object_get(lines[0], "block"));
	assert_null(json_object_get(get(lines[0], "vmm"), "guest_resident_bytes"));
	free_lines(lines, 1);
}

static void test_bad_path(void **state)
{
	struct metrics *m = NULL;

	assert_int_equal(metrics_create(&m, "/nonexistent-dir/m.json"), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent-dir/m.json"));
	assert_null(m);
}

/* A VM with two fake vCPUs, one real virtio-blk device and the boot timer. */
struct fake_vm {
	struct vm vm;
	struct vcpu vcpus[2];
	struct vdrv d;
	struct boot_timer *bt;
	char image[64];
};

static void exit_io(struct vcpu *v, bool out)
{
	struct kvm_run run = {.exit_reason = KVM_EXIT_IO};

	run.io.direction = out ? KVM_EXIT_IO_OUT : KVM_EXIT_IO_IN;
	vcpu_count_exit(v, &run);
}

static void exit_mmio(struct vcpu *v, bool write)
{
	struct kvm_run run = {.exit_reason = KVM_EXIT_MMIO};

	run.mmio.is_write = write;
	vcpu_count_exit(v, &run);
}

static void exit_other(struct vcpu *v, uint32_t reason)
{
	struct kvm_run run = {.exit_reason = reason};

	vcpu_count_exit(v, &run);
}

static void fake_vm_init(struct fake_vm *f)
{
	struct guest_region layout[] = {{.gpa = 0, .size = RAM_SIZE}};
	struct vdrv_config cfg = {.layout = layout,
				  .nr_regions = 1,
				  .buf_base = 0x10000,
				  .buf_end = RAM_SIZE,
				  .buf_align = 64,
				  .loop_name = "metrics-test"};
	struct disk_config disk = {0};
	struct virtio_device *dev;
	struct vm_device *entry;
	int fd;

	memset(f, 0, sizeof(*f));
	for (int i = 0; i < 2; i++)
		f->vcpus[i].id = i;
	f->vm.vcpus = f->vcpus;
	f->vm.nr_vcpus = 2;
	f->bt = boot_timer_create();
	vm_device_add(&f->vm.devices, boot_timer_device(f->bt));

	snprintf(f->image, sizeof(f->image), "/tmp/skiff-metrics-img-XXXXXX");
	fd = mkstemp(f->image);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)MiB), 0);
	close(fd);
	snprintf(disk.path, sizeof(disk.path), "%s", f->image);
	snprintf(disk.id, sizeof(disk.id), "rootfs");
	setenv("SKIFF_BLK_NO_URING", "1", 1); /* synchronous: no io_uring needed here */
	assert_int_equal(virtio_blk_create(&disk, &dev), 0);
	vdrv_init(&f->d, &cfg);
	vdrv_attach(&f->d, dev);
	vdrv_ring_layout(&f->d, 0, QSIZE, 0x1000, 0x2000, 0x3000);
	vdrv_start(&f->d, 1ULL << VIRTIO_F_VERSION_1 | dev->ops->features(dev));
	entry = virtio_devices_entry(dev, "rootfs");
	assert_non_null(entry);
	vm_device_add(&f->vm.devices, entry);
}

static void fake_vm_fini(struct fake_vm *f)
{
	vdrv_fini(&f->d);
	unlink(f->image);
	unsetenv("SKIFF_BLK_NO_URING");
	vm_devices_destroy(&f->vm.devices); /* the entries and the boot timer; vdrv had the disk */
}

/* A write of `len` bytes at sector 0, then a flush, each waited for. */
static void blk_write_and_flush(struct fake_vm *f, uint32_t len)
{
	for (int i = 0; i < 2; i++) {
		uint32_t type = i == 0 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_FLUSH;
		uint64_t hdr = vdrv_alloc(&f->d, sizeof(struct virtio_blk_req_hdr));
		uint64_t data = vdrv_alloc(&f->d, len), status = vdrv_alloc(&f->d, 1);
		struct virtio_blk_req_hdr *h = vdrv_ptr(&f->d, hdr, sizeof(*h));
		struct vdrv_seg segs[3] = {
		    {hdr, sizeof(*h), false}, {data, len, false}, {status, 1, true}};

		*h = (struct virtio_blk_req_hdr){.type = type, .sector = 0};
		if (i == 0) {
			vdrv_add_chain(&f->d, 0, segs, 3);
		} else {
			segs[1] = segs[2];
			vdrv_add_chain(&f->d, 0, segs, 2);
		}
		vdrv_notify(&f->d, 0);
		assert_true(vdrv_wait_used(&f->d, 0, 1));
		vdrv_take_used(&f->d, 0);
		assert_int_equal(*(uint8_t *)vdrv_ptr(&f->d, status, 1), VIRTIO_BLK_S_OK);
	}
}

static void test_counters_follow_the_vm(void **state)
{
	static struct fake_vm f;
	struct metrics *m;
	json_t *lines[4], *per;
	uint8_t magic = BOOT_TIMER_MAGIC;

	fake_vm_init(&f);
	for (int i = 0; i < 5; i++)
		exit_io(&f.vcpus[0], true);
	exit_io(&f.vcpus[1], false);
	exit_mmio(&f.vcpus[0], false);
	exit_mmio(&f.vcpus[1], true);
	exit_mmio(&f.vcpus[1], true);
	exit_other(&f.vcpus[1], KVM_EXIT_HLT);
	exit_other(&f.vcpus[0], KVM_EXIT_INTR);
	exit_other(&f.vcpus[0], KVM_EXIT_SYSTEM_EVENT);
	exit_other(&f.vcpus[0], KVM_EXIT_SHUTDOWN);
	exit_other(&f.vcpus[0], KVM_EXIT_INTERNAL_ERROR);
	exit_other(&f.vcpus[0], KVM_EXIT_FAIL_ENTRY);
	exit_other(&f.vcpus[1], KVM_EXIT_DEBUG);
	blk_write_and_flush(&f, 4096);

	assert_int_equal(metrics_create(&m, path), 0);
	assert_int_equal(metrics_attach(m, &f.vm, 0), 0);
	assert_int_equal(metrics_attach(m, &f.vm, 0), -EBUSY);
	metrics_count_api_request(m, 500);
	assert_int_equal(metrics_flush(m), 0);
	/* The guest says it is up; the next line has the boot time. */
	boot_timer_ops.write(f.bt, 0, &magic, 1);
	metrics_detach(m); /* writes the last line */
	metrics_destroy(m);

	assert_int_equal(read_lines(lines, 4), 2);
	assert_int_equal(num(lines[0], "vcpu.exits.io_out"), 5);
	assert_int_equal(num(lines[0], "vcpu.exits.io_in"), 1);
	assert_int_equal(num(lines[0], "vcpu.exits.mmio_read"), 1);
	assert_int_equal(num(lines[0], "vcpu.exits.mmio_write"), 2);
	assert_int_equal(num(lines[0], "vcpu.exits.hlt"), 1);
	assert_int_equal(num(lines[0], "vcpu.exits.intr"), 1);
	assert_int_equal(num(lines[0], "vcpu.exits.system_event"), 1);
	assert_int_equal(num(lines[0], "vcpu.exits.shutdown"), 1);
	assert_int_equal(num(lines[0], "vcpu.exits.internal_error"), 1);
	assert_int_equal(num(lines[0], "vcpu.exits.fail_entry"), 1);
	assert_int_equal(num(lines[0], "vcpu.exits.other"), 1);
	per = get(lines[0], "vcpu.per_vcpu");
	assert_int_equal(json_array_size(per), 2);
	assert_int_equal(num(json_array_get(per, 0), "io_out"), 5);
	assert_int_equal(num(json_array_get(per, 1), "io_out"), 0);
	assert_int_equal(num(json_array_get(per, 1), "mmio_write"), 2);

	assert_int_equal(num(lines[0], "block.rootfs.write_requests"), 1);
	assert_int_equal(num(lines[0], "block.rootfs.write_bytes"), 4096);
	assert_int_equal(num(lines[0], "block.rootfs.flushes"), 1);
	assert_int_equal(num(lines[0], "block.rootfs.read_requests"), 0);
	assert_int_equal(num(lines[0], "block.rootfs.errors"), 0);
	assert_int_equal(num(lines[0], "block.rootfs.unsupported"), 0);
	assert_int_equal(json_object_size(get(lines[0], "net")), 0);
	assert_int_equal(num(lines[0], "api.requests"), 1);
	assert_int_equal(num(lines[0], "api.errors"), 1);
	assert_int_equal(num(lines[0], "vmm.guest_resident_bytes"), 0); /* no regions */
	assert_true(json_is_null(get(lines[0], "boot_time_us")));

	assert_true(num(lines[1], "boot_time_us") > 0);
	assert_true(num(lines[1], "boot_time_us") <= num(lines[1], "uptime_ms") * 1000 + 1000);
	free_lines(lines, 2);
	fake_vm_fini(&f);
}

static void test_periodic_flush(void **state)
{
	static struct vm vm;
	struct metrics *m;
	json_t *lines[64];
	uint64_t t0, t1;
	int n;

	assert_int_equal(metrics_create(&m, path), 0);
	assert_int_equal(metrics_attach(m, &vm, 50), 0);
	usleep(530 * 1000);
	t0 = now_ms(CLOCK_MONOTONIC);
	metrics_detach(m);
	t1 = now_ms(CLOCK_MONOTONIC);
	n = read_lines(lines, 64);
	/* 10 periodic lines and the last one; a loaded machine may lose one or two. */
	assert_in_range(n, 6, 12);
	for (int i = 1; i < n - 1; i++) {
		json_int_t gap = num(lines[i], "uptime_ms") - num(lines[i - 1], "uptime_ms");

		assert_in_range(gap, 25, 300);
	}
	assert_true(t1 - t0 < 100);
	free_lines(lines, n);

	/* A long period: detaching does not wait for it. */
	assert_int_equal(metrics_attach(m, &vm, 60000), 0);
	t0 = now_ms(CLOCK_MONOTONIC);
	metrics_detach(m);
	t1 = now_ms(CLOCK_MONOTONIC);
	assert_true(t1 - t0 < 100);
	metrics_destroy(m);
	assert_int_equal(read_lines(lines, 64), n + 1);
	free_lines(lines, n + 1);
}

/* Nobody reads the FIFO: flushes fail once the pipe is full, quickly, and are counted; once a
 * reader drains it, lines are whole and report the failures. */
static void test_fifo_without_reader(void **state)
{
	static char buf[1 << 17];
	struct metrics *m;
	int failures = 0, fd;
	uint64_t t0;
	ssize_t n;
	json_t *last;

	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(metrics_create(&m, path), 0);
	log_set_level(LOG_ERROR); /* the one warning about it */
	t0 = now_ms(CLOCK_MONOTONIC);
	for (int i = 0; i < 2000; i++) {
		int r = metrics_flush(m);

		if (r) {
			assert_int_equal(r, -EAGAIN);
			failures++;
		}
	}
	log_set_level(LOG_WARN);
	assert_true(failures > 0);
	assert_true(now_ms(CLOCK_MONOTONIC) - t0 < 5000);

	fd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(fd >= 0);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	assert_int_equal(metrics_flush(m), 0);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n > 0 && buf[n - 1] == '\n');
	buf[n] = '\0';
	last = json_loads(buf, 0, NULL);
	assert_non_null(last);
	assert_int_equal(num(last, "vmm.metrics_write_failures"), failures);
	json_decref(last);
	close(fd);
	metrics_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_line_without_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counters_follow_the_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_periodic_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_without_reader, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
