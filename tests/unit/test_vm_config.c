/* VM description validation and the guest command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/vm_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/log.h"

/* The reason a call failed: the thread's last error (base/log.h). */
#define err log_last_error()

/* A regular file for paths that must name one (kernel, disks); made by main(). */
static char regular[64] = "/tmp/skiff-test-vm-config-XXXXXX";

/* "<regular><suffix>", for disk specifications. */
static const char *spec(const char *suffix)
{
	static char buf[2][128];
	static int n;

	n ^= 1;
	snprintf(buf[n], sizeof(buf[n]), "%s%s", regular, suffix);
	return buf[n];
}

static void test_defaults(void **state)
{
	struct vm_config cfg;

	vm_config_init_defaults(&cfg);
	assert_int_equal(cfg.nr_cpus, 1);
	assert_int_equal(cfg.memory_mib, 256);
	assert_int_equal(vm_config_validate(&cfg, 0, 0), 0);
}

static void test_rejections(void **state)
{
	struct vm_config cfg;

	vm_config_init_defaults(&cfg);
	cfg.nr_cpus = 0;
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);

	vm_config_init_defaults(&cfg);
	cfg.kernel_path = regular;
	cfg.nr_cpus = 8;
	assert_int_equal(vm_config_validate(&cfg, 4, 0), -EINVAL);
	assert_non_null(strstr(err, "at most 4 vCPUs"));

	vm_config_init_defaults(&cfg);
	cfg.memory_mib = 4096;
	assert_int_equal(vm_config_validate(&cfg, 0, 2048), -EINVAL);
	assert_non_null(strstr(err, "more than this host's 2048 MiB"));

	vm_config_init_defaults(&cfg);
	cfg.kernel_path = "/nonexistent/bzImage";
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
	assert_non_null(strstr(err, "/nonexistent/bzImage"));

	vm_config_init_defaults(&cfg);
	cfg.initrd_path = regular;
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);

	vm_config_init_defaults(&cfg);
	cfg.raw_path = regular;
	cfg.nr_cpus = 2;
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);

	vm_config_init_defaults(&cfg);
	cfg.kernel_path = regular;
	cfg.raw_path = regular;
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
}

static void test_console_appended(void **state)
{
	struct vm_config cfg;
	char out[VM_CONFIG_MAX_CMDLINE];

	vm_config_init_defaults(&cfg);
	assert_int_equal(vm_config_kernel_cmdline(&cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "console=ttyS0");
	cfg.cmdline = "quiet panic=-1";
	assert_int_equal(vm_config_kernel_cmdline(&cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "quiet panic=-1 console=ttyS0");
	cfg.cmdline = "console=hvc0 quiet";
	assert_int_equal(vm_config_kernel_cmdline(&cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "console=hvc0 quiet");
	cfg.cmdline = "quiet netconsole=6665@10.0.0.1/eth0";
	assert_int_equal(vm_config_kernel_cmdline(&cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "quiet netconsole=6665@10.0.0.1/eth0 console=ttyS0");
	assert_int_equal(vm_config_kernel_cmdline(&cfg, out, 10), -E2BIG);
}

static void test_virtio_console_cmdline(void **state)
{
	struct vm_config cfg;
	char out[256];

	vm_config_init_defaults(&cfg);
	cfg.console = CONSOLE_VIRTIO;
	cfg.cmdline = "quiet";
	assert_int_equal(vm_config_kernel_cmdline(&cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "quiet console=hvc0");
}

static void test_disk_specs(void **state)
{
	struct vm_config cfg;

	vm_config_init_defaults(&cfg);
	assert_int_equal(vm_config_add_disk(&cfg, "/tmp/a.img"), 0);
	assert_int_equal(vm_config_add_disk(&cfg, "/tmp/b.img,ro,id=data-1"), 0);
	assert_int_equal(cfg.nr_disks, 2);
	assert_string_equal(cfg.disks[0].path, "/tmp/a.img");
	assert_false(cfg.disks[0].read_only);
	assert_string_equal(cfg.disks[0].id, "disk0");
	assert_true(cfg.disks[1].read_only);
	assert_string_equal(cfg.disks[1].id, "data-1");

	assert_int_equal(vm_config_add_disk(&cfg, ""), -EINVAL);
	assert_int_equal(vm_config_add_disk(&cfg, ",ro"), -EINVAL);
	assert_int_equal(vm_config_add_disk(&cfg, "/x,rw,bogus"), -EINVAL);
	assert_non_null(strstr(err, "bogus"));
	assert_int_equal(vm_config_add_disk(&cfg, "/x,id=123456789012345678901"),
			 -EINVAL);
	assert_int_equal(cfg.nr_disks, 2);
	/* Rate limits: SIZE/MS[+BURST], sizes with K, M or G. */
	assert_int_equal(vm_config_add_disk(&cfg, "/tmp/r.img,bw=1M/1000+4M,ops=100/500"), 0);
	assert_int_equal(cfg.disks[2].rate_limiter.bandwidth.size, 1 << 20);
	assert_int_equal(cfg.disks[2].rate_limiter.bandwidth.refill_time_ms, 1000);
	assert_int_equal(cfg.disks[2].rate_limiter.bandwidth.one_time_burst, 4 << 20);
	assert_int_equal(cfg.disks[2].rate_limiter.ops.size, 100);
	assert_int_equal(cfg.disks[2].rate_limiter.ops.refill_time_ms, 500);
	assert_int_equal(cfg.disks[2].rate_limiter.ops.one_time_burst, 0);
	cfg.nr_disks--;
	assert_int_equal(vm_config_add_disk(&cfg, "/x,bw=1M/0"), -EINVAL);
	assert_non_null(strstr(err, "--disk bw=1M/0: refill_time 0 would never refill"));
	assert_int_equal(vm_config_add_disk(&cfg, "/x,bw=1M"), -EINVAL);
	assert_non_null(strstr(err, "expected SIZE/MS or SIZE/MS+BURST"));
	assert_int_equal(vm_config_add_disk(&cfg, "/x,ops=1X/10"), -EINVAL);
	assert_int_equal(vm_config_add_disk(&cfg, "/x,ops=10/10+"), -EINVAL);
	assert_int_equal(vm_config_add_disk(&cfg, "/x,ops=99999999999999999999/10"), -EINVAL);
	assert_int_equal(vm_config_add_disk(&cfg, "/x,bw=9000000000G/10"), -EINVAL);
	assert_int_equal(vm_config_add_disk(&cfg, "/x,bw=-1/10"), -EINVAL);
	assert_int_equal(cfg.nr_disks, 2);
	/* Request queues: 1 to DISK_MAX_QUEUES here, the vCPU count at validation. */
	assert_int_equal(cfg.disks[0].num_queues, 0);
	assert_int_equal(vm_config_add_disk(&cfg, "/tmp/q.img,num_queues=4"), 0);
	assert_int_equal(cfg.disks[2].num_queues, 4);
	cfg.nr_disks--;
	assert_int_equal(vm_config_add_disk(&cfg, "/x,num_queues=0"), -EINVAL);
	assert_non_null(strstr(err, "num_queues=0: expected 1 to 32"));
	assert_int_equal(vm_config_add_disk(&cfg, "/x,num_queues=33"), -EINVAL);
	assert_int_equal(vm_config_add_disk(&cfg, "/x,num_queues=-1"), -EINVAL);
	assert_int_equal(vm_config_add_disk(&cfg, "/x,num_queues=2x"), -EINVAL);
	assert_int_equal(vm_config_add_disk(&cfg, "/x,num_queues="), -EINVAL);
	assert_int_equal(cfg.nr_disks, 2);
	while (cfg.nr_disks < VM_CONFIG_MAX_DISKS)
		assert_int_equal(vm_config_add_disk(&cfg, "/tmp/c.img"), 0);
	assert_int_equal(vm_config_add_disk(&cfg, "/tmp/c.img"), -ENOSPC);
	assert_non_null(strstr(err, "at most 8 disks"));
}

static void test_net_specs(void **state)
{
	struct vm_config cfg;

	vm_config_init_defaults(&cfg);
	assert_int_equal(vm_config_add_net(&cfg, "tap=tap0,mac=02:00:00:00:00:01"),
			 0);
	assert_string_equal(cfg.nets[0].tap, "tap0");
	assert_true(cfg.nets[0].has_mac);
	assert_int_equal(cfg.nets[0].mac[5], 1);
	assert_string_equal(cfg.nets[0].id, "net0");
	assert_int_equal(vm_config_add_net(&cfg, "id=eth1,tap=tap1"), 0);
	assert_false(cfg.nets[1].has_mac);
	assert_string_equal(cfg.nets[1].id, "eth1");
	assert_int_equal(vm_config_add_net(&cfg, "tap=tap2,rx_bw=2K/10,tx_ops=5/100+10"), 0);
	assert_int_equal(cfg.nets[2].rx_rate_limiter.bandwidth.size, 2048);
	assert_int_equal(cfg.nets[2].rx_rate_limiter.ops.size, 0);
	assert_int_equal(cfg.nets[2].tx_rate_limiter.ops.size, 5);
	assert_int_equal(cfg.nets[2].tx_rate_limiter.ops.one_time_burst, 10);
	assert_int_equal(vm_config_add_net(&cfg, "tap=tap3,rx_bw=1/0"), -EINVAL);
	assert_non_null(strstr(err, "refill_time 0"));
	cfg.nr_nets--;

	assert_int_equal(vm_config_add_net(&cfg, "mac=02:00:00:00:00:01"), -EINVAL);
	assert_non_null(strstr(err, "tap=NAME is required"));
	assert_int_equal(vm_config_add_net(&cfg, "tap=a,mac=02:00:00:00:00"),
			 -EINVAL);
	assert_int_equal(vm_config_add_net(&cfg, "tap=a,mac=02:00:00:00:00:0g"),
			 -EINVAL);
	assert_int_equal(vm_config_add_net(&cfg, "tap=a,mac=01:00:00:00:00:01"),
			 -EINVAL);
	assert_non_null(strstr(err, "multicast"));
	assert_int_equal(vm_config_add_net(&cfg, "tap=a,vhost=yes"), -EINVAL);
	assert_non_null(strstr(err, "vhost=yes: expected on or off"));
	assert_int_equal(vm_config_add_net(&cfg, "tap=0123456789abcdef"), -EINVAL);
	assert_int_equal(vm_config_add_net(&cfg, "tap=../x"), -EINVAL);
	assert_int_equal(vm_config_add_net(&cfg, "tap=a,queues=0"), -EINVAL);
	assert_non_null(strstr(err, "queues=0: expected 1 to 8"));
	assert_int_equal(vm_config_add_net(&cfg, "tap=a,queues=9"), -EINVAL);
	assert_int_equal(vm_config_add_net(&cfg, "tap=a,queues=2x"), -EINVAL);
	assert_int_equal(vm_config_add_net(&cfg, "tap=a,queues=-1"), -EINVAL);
	assert_int_equal(cfg.nr_nets, 2);
	assert_int_equal(cfg.nets[0].num_queues, 0);
	assert_int_equal(vm_config_add_net(&cfg, "tap=tap4,queues=4,id=mq"), 0);
	assert_int_equal(cfg.nets[2].num_queues, 4);
	cfg.nr_nets--;
}

static void test_device_validation(void **state)
{
	struct vm_config cfg;

	vm_config_init_defaults(&cfg);
	cfg.rng = true;
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
	assert_non_null(strstr(err, "need --kernel"));

	vm_config_init_defaults(&cfg);
	cfg.kernel_path = regular;
	assert_int_equal(vm_config_add_disk(&cfg, "/nonexistent.img"), 0);
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
	assert_non_null(strstr(err, "/nonexistent.img"));

	vm_config_init_defaults(&cfg);
	cfg.kernel_path = regular;
	assert_int_equal(vm_config_add_disk(&cfg, spec(",ro,id=a")), 0);
	assert_int_equal(vm_config_add_disk(&cfg, spec(",ro,id=a")), 0);
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
	assert_non_null(strstr(err, "two disks have id=a"));

	/* vhost=on: the kernel moves the packets, so no rate limiter and no dirty page tracking. */
	vm_config_init_defaults(&cfg);
	cfg.kernel_path = regular;
	assert_int_equal(vm_config_add_net(&cfg, "tap=t0,vhost=on"), 0);
	assert_true(cfg.nets[0].vhost);
	assert_int_equal(vm_config_validate(&cfg, 0, 0), 0);
	cfg.track_dirty_pages = true;
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
	assert_non_null(strstr(err, "vhost=on cannot be combined with track_dirty_pages"));
	vm_config_init_defaults(&cfg);
	cfg.kernel_path = regular;
	assert_int_equal(vm_config_add_net(&cfg, "tap=t0,tx_ops=10/100,vhost=on"), 0);
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
	assert_non_null(strstr(err, "network interface net0: vhost=on cannot be rate-limited"));
	vm_config_init_defaults(&cfg);
	cfg.kernel_path = regular;
	assert_int_equal(vm_config_add_net(&cfg, "tap=t0,tx_ops=10/100,vhost=off"), 0);
	assert_false(cfg.nets[0].vhost);
	assert_int_equal(vm_config_validate(&cfg, 0, 0), 0);

	vm_config_init_defaults(&cfg);
	cfg.kernel_path = regular;
	assert_int_equal(vm_config_add_net(&cfg, "tap=t0"), 0);
	assert_int_equal(vm_config_add_net(&cfg, "tap=t0"), 0);
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
	assert_non_null(strstr(err, "two interfaces use tap t0"));

	vm_config_init_defaults(&cfg);
	cfg.kernel_path = regular;
	assert_int_equal(vm_config_add_disk(&cfg, spec(",ro")), 0);
	assert_int_equal(vm_config_add_net(&cfg, "tap=t0,mac=02:00:00:00:00:01"),
			 0);
	assert_int_equal(vm_config_add_net(&cfg, "tap=t1,mac=02:00:00:00:00:02"),
			 0);
	assert_int_equal(vm_config_validate(&cfg, 0, 0), 0);

	/* num_queues: at most the vCPU count. */
	vm_config_init_defaults(&cfg);
	cfg.kernel_path = regular;
	cfg.nr_cpus = 2;
	assert_int_equal(vm_config_add_disk(&cfg, spec(",ro,num_queues=2")), 0);
	assert_int_equal(vm_config_validate(&cfg, 0, 0), 0);
	cfg.nr_cpus = 1;
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
	assert_non_null(strstr(err, "num_queues 2 is more than the vCPU count (1)"));

	/* Files that are not images, and one image as two disks with a writer. */
	vm_config_init_defaults(&cfg);
	cfg.kernel_path = regular;
	assert_int_equal(vm_config_add_disk(&cfg, "/dev/null"), 0);
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
	assert_non_null(strstr(err, "disk /dev/null: not a regular file or a block device"));

	vm_config_init_defaults(&cfg);
	cfg.kernel_path = regular;
	assert_int_equal(vm_config_add_disk(&cfg, "/proc/self/mem"), 0);
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
	assert_non_null(strstr(err, "a file of /proc or /sys"));

	vm_config_init_defaults(&cfg);
	cfg.kernel_path = regular;
	assert_int_equal(vm_config_add_disk(&cfg, spec(",ro")), 0);
	assert_int_equal(vm_config_add_disk(&cfg, spec("")), 0);
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
	assert_non_null(strstr(err, "the same file as disk disk0, and one is writable"));

	vm_config_init_defaults(&cfg);
	cfg.kernel_path = "/dev/null";
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
	assert_non_null(strstr(err, "kernel /dev/null: not a regular file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_console_appended),
		cmocka_unit_test(test_virtio_console_cmdline),
		cmocka_unit_test(test_disk_specs),
		cmocka_unit_test(test_net_specs),
		cmocka_unit_test(test_device_validation),
	};

	int fd = mkstemp(regular), ret;

	if (fd < 0)
		return 1;
	close(fd);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(regular);
	return ret;
}
