/* VM description validation and the guest command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/vm_config.h"

#include <errno.h>
#include <string.h>

static void test_defaults(void **state)
{
	struct vm_config cfg;
	char err[256];

	vm_config_init_defaults(&cfg);
	assert_int_equal(cfg.nr_cpus, 1);
	assert_int_equal(cfg.memory_mib, 256);
	assert_int_equal(vm_config_validate(&cfg, 0, 0, err, sizeof(err)), 0);
}

static void test_rejections(void **state)
{
	struct vm_config cfg;
	char err[256];

	vm_config_init_defaults(&cfg);
	cfg.nr_cpus = 0;
	assert_int_equal(vm_config_validate(&cfg, 0, 0, err, sizeof(err)), -EINVAL);

	vm_config_init_defaults(&cfg);
	cfg.kernel_path = "/dev/null";
	cfg.nr_cpus = 8;
	assert_int_equal(vm_config_validate(&cfg, 4, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "at most 4 vCPUs"));

	vm_config_init_defaults(&cfg);
	cfg.memory_mib = 4096;
	assert_int_equal(vm_config_validate(&cfg, 0, 2048, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "more than this host's 2048 MiB"));

	vm_config_init_defaults(&cfg);
	cfg.kernel_path = "/nonexistent/bzImage";
	assert_int_equal(vm_config_validate(&cfg, 0, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/nonexistent/bzImage"));

	vm_config_init_defaults(&cfg);
	cfg.initrd_path = "/dev/null";
	assert_int_equal(vm_config_validate(&cfg, 0, 0, err, sizeof(err)), -EINVAL);

	vm_config_init_defaults(&cfg);
	cfg.raw_path = "/dev/null";
	cfg.nr_cpus = 2;
	assert_int_equal(vm_config_validate(&cfg, 0, 0, err, sizeof(err)), -EINVAL);

	vm_config_init_defaults(&cfg);
	cfg.kernel_path = "/dev/null";
	cfg.raw_path = "/dev/null";
	assert_int_equal(vm_config_validate(&cfg, 0, 0, err, sizeof(err)), -EINVAL);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_console_appended),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
