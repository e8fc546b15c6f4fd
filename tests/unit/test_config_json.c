/* Firecracker's JSON objects: strict reading into vm_config, and the dumps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config_json.h"
#include "config/json_fields.h"
#include "config/resource.h"
#include "config/vm_config.h"
#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* A string literal as (body, length). */
#define B(s) s, sizeof(s) - 1

/* The reason a call failed: the thread's last error (base/log.h). */
#define err log_last_error()

/* `expr` fails with `code`, a one-line reason containing `substr`, and leaves *cfg as it was. */
#define EXPECT_FAIL(cfg, expr, code, substr)                                                       \
	do {                                                                                       \
		struct vm_config *before_ = malloc(sizeof(*before_));                              \
		assert_non_null(before_);                                                          \
		memcpy(before_, (cfg), sizeof(*before_));                                          \
		log_clear_last_error();                                                            \
		assert_int_equal((expr), (code));                                                  \
		if (!strstr(err, (substr)))                                                        \
			fail_msg("error \"%s\" lacks \"%s\"", err, (substr));                      \
		assert_null(strchr(err, '\n'));                                                    \
		assert_memory_equal(before_, (cfg), sizeof(*before_));                             \
		free(before_);                                                                     \
	} while (0)

static struct vm_config *new_cfg(void)
{
	struct vm_config *cfg = malloc(sizeof(*cfg));

	assert_non_null(cfg);
	vm_config_init_defaults(cfg);
	return cfg;
}

static void test_boot_source(void **state)
{
	struct vm_config *cfg = new_cfg();

	assert_int_equal(config_json_boot_source(cfg,
						 B("{\"kernel_image_path\": \"/k\", "
						   "\"initrd_path\": \"/i\", \"boot_args\": "
						   "\"quiet\"}")),
			 0);
	assert_string_equal(cfg->kernel_path, "/k");
	assert_string_equal(cfg->initrd_path, "/i");
	assert_string_equal(cfg->cmdline, "quiet");
	assert_ptr_equal(cfg->kernel_path, cfg->kernel_path_buf);

	/* PUT again replaces the whole boot source: no initrd, no arguments now. */
	assert_int_equal(config_json_boot_source(cfg,
						 B("{\"kernel_image_path\": \"/k2\", "
						   "\"initrd_path\": null}")),
			 0);
	assert_string_equal(cfg->kernel_path, "/k2");
	assert_null(cfg->initrd_path);
	assert_null(cfg->cmdline);

	EXPECT_FAIL(cfg,
		    config_json_boot_source(cfg, B("{\"initrd_path\": \"/i\"}")),
		    -EINVAL, "missing required field 'kernel_image_path' in boot-source");
	EXPECT_FAIL(cfg,
		    config_json_boot_source(cfg, B("{\"kernel_image_path\": 1}")),
		    -EINVAL, "field 'kernel_image_path' in boot-source must be a string");
	EXPECT_FAIL(
	    cfg, config_json_boot_source(cfg, B("{\"kernel_image_path\": true}")),
	    -EINVAL, "must be a string");
	EXPECT_FAIL(
	    cfg, config_json_boot_source(cfg, B("{\"kernel_image_path\": null}")),
	    -EINVAL, "missing required field");
	EXPECT_FAIL(cfg,
		    config_json_boot_source(cfg,
					    B("{\"kernel_image_path\": \"/k\", "
					      "\"initrd_path\": 2.5}")),
		    -EINVAL, "field 'initrd_path' in boot-source must be a string");
	EXPECT_FAIL(cfg,
		    config_json_boot_source(cfg,
					    B("{\"kernel_image_path\": \"/k\", "
					      "\"boot_args\": [\"a\"]}")),
		    -EINVAL, "'boot_args'");
	EXPECT_FAIL(
	    cfg, config_json_boot_source(cfg, B("{\"kernel_image_path\": \"\"}")),
	    -EINVAL, "must not be empty");
	EXPECT_FAIL(cfg,
		    config_json_boot_source(cfg,
					    B("{\"kernel_image_path\": \"/k\", "
					      "\"foo\": 1}")),
		    -EINVAL, "unknown field 'foo' in boot-source");
	EXPECT_FAIL(cfg,
		    config_json_boot_source(cfg,
					    B("{\"kernel_image_path\": \"/a\", "
					      "\"kernel_image_path\": \"/b\"}")),
		    -EINVAL, "duplicate");
	EXPECT_FAIL(
	    cfg,
	    config_json_boot_source(cfg, B("{\"kernel_image_path\": \"/k\"")),
	    -EINVAL, "invalid JSON");
	EXPECT_FAIL(cfg, config_json_boot_source(cfg, "", 0), -EINVAL,
		    "empty body");
	EXPECT_FAIL(cfg, config_json_boot_source(cfg, B("[]")), -EINVAL,
		    "expected a JSON object");
	EXPECT_FAIL(cfg, config_json_boot_source(cfg, B("\"x\"")), -EINVAL,
		    "boot-source");
	/* A NUL inside the body (by length), or escaped inside a string. */
	EXPECT_FAIL(cfg,
		    config_json_boot_source(cfg, B("{\"kernel_image_path\": \"/k\"}\0{}")),
		    -EINVAL, "invalid JSON");
	EXPECT_FAIL(cfg,
		    config_json_boot_source(cfg, B("{\"kernel_image_path\": \"/k\\u0000x\"}")),
		    -EINVAL, "invalid JSON");
	/* Only `len` bytes are read: what follows is not part of the body. */
	assert_int_equal(config_json_boot_source(cfg, "{\"kernel_image_path\": \"/k3\"}garbage",
						 strlen("{\"kernel_image_path\": \"/k3\"}")),
			 0);
	assert_string_equal(cfg->kernel_path, "/k3");

	/* boot_args up to the limit vm_config_validate applies. */
	{
		size_t n = VM_CONFIG_MAX_CMDLINE + 64;
		char *body = malloc(n), *args = malloc(VM_CONFIG_MAX_CMDLINE);
		int len;

		memset(args, 'a', VM_CONFIG_MAX_CMDLINE - 33);
		args[VM_CONFIG_MAX_CMDLINE - 33] = '\0';
		len =
		    snprintf(body, n, "{\"kernel_image_path\":\"/k\",\"boot_args\":\"%s\"}", args);
		assert_int_equal(config_json_boot_source(cfg, body, (size_t)len),
				 0);
		assert_int_equal(strlen(cfg->cmdline), VM_CONFIG_MAX_CMDLINE - 33);
		args[VM_CONFIG_MAX_CMDLINE - 33] = 'a';
		args[VM_CONFIG_MAX_CMDLINE - 32] = '\0';
		len =
		    snprintf(body, n, "{\"kernel_image_path\":\"/k\",\"boot_args\":\"%s\"}", args);
		EXPECT_FAIL(cfg, config_json_boot_source(cfg, body, (size_t)len),
			    -EINVAL, "'boot_args' in boot-source is 4064 bytes long");
		free(body);
		free(args);
	}
	free(cfg);
}

/* The CLI's way keeps working beside the owned strings, and copies re-point. */
static void test_copy_and_cli_strings(void **state)
{
	struct vm_config *a = new_cfg(), *b = new_cfg();

	a->kernel_path = "/cli/kernel";
	assert_int_equal(vm_config_set_boot_source(a, "/k", "/i", "x"), 0);
	vm_config_copy(b, a);
	assert_ptr_equal(b->kernel_path, b->kernel_path_buf);
	assert_ptr_equal(b->initrd_path, b->initrd_path_buf);
	assert_ptr_equal(b->cmdline, b->cmdline_buf);
	assert_string_equal(b->cmdline, "x");
	a->cmdline = "from argv";
	vm_config_copy(b, a);
	assert_ptr_equal(b->cmdline, a->cmdline);
	/* Setting from the config's own buffer is fine. */
	assert_int_equal(vm_config_set_boot_source(b, b->kernel_path_buf, NULL, b->kernel_path_buf),
			 0);
	assert_string_equal(b->cmdline, "/k");
	free(a);
	free(b);
}

static void test_machine_config(void **state)
{
	struct vm_config *cfg = new_cfg();

	assert_int_equal(config_json_machine_config(cfg,
						    B("{\"vcpu_count\": 2, \"mem_size_mib\": "
						      "512, \"smt\": false, "
						      "\"track_dirty_pages\": true, "
						      "\"cpu_template\": \"None\", "
						      "\"huge_pages\": \"None\"}"),
						    false),
			 0);
	assert_int_equal(cfg->nr_cpus, 2);
	assert_int_equal(cfg->memory_mib, 512);
	assert_true(cfg->track_dirty_pages);

	/* PATCH: only what is given. */
	assert_int_equal(
	    config_json_machine_config(cfg, B("{\"vcpu_count\": 32}"), true), 0);
	assert_int_equal(cfg->nr_cpus, 32);
	assert_int_equal(cfg->memory_mib, 512);
	assert_true(cfg->track_dirty_pages);
	assert_int_equal(config_json_machine_config(cfg, B("{}"), true), 0);
	assert_int_equal(cfg->nr_cpus, 32);
	/* PUT: what is not given goes back to its default. */
	assert_int_equal(config_json_machine_config(cfg,
						    B("{\"vcpu_count\": 1, \"mem_size_mib\": "
						      "128}"),
						    false),
			 0);
	assert_false(cfg->track_dirty_pages);

	EXPECT_FAIL(
	    cfg,
	    config_json_machine_config(cfg, B("{\"mem_size_mib\": 128}"), false),
	    -EINVAL, "missing required field 'vcpu_count' in machine-config");
	EXPECT_FAIL(
	    cfg, config_json_machine_config(cfg, B("{\"vcpu_count\": 1}"), false),
	    -EINVAL, "missing required field 'mem_size_mib' in machine-config");
	EXPECT_FAIL(
	    cfg,
	    config_json_machine_config(cfg, B("{\"vcpu_count\": \"2\"}"), true),
	    -EINVAL, "field 'vcpu_count' in machine-config must be an integer");
	EXPECT_FAIL(
	    cfg,
	    config_json_machine_config(cfg, B("{\"vcpu_count\": 2.5}"), true),
	    -EINVAL, "must be an integer");
	EXPECT_FAIL(
	    cfg,
	    config_json_machine_config(cfg, B("{\"vcpu_count\": 2.0}"), true),
	    -EINVAL, "must be an integer");
	EXPECT_FAIL(
	    cfg,
	    config_json_machine_config(cfg, B("{\"vcpu_count\": true}"), true),
	    -EINVAL, "must be an integer");
	EXPECT_FAIL(
	    cfg, config_json_machine_config(cfg, B("{\"vcpu_count\": -1}"), true),
	    -EINVAL, "must be 1 to 32");
	EXPECT_FAIL(
	    cfg, config_json_machine_config(cfg, B("{\"vcpu_count\": 0}"), true),
	    -EINVAL, "must be 1 to 32");
	EXPECT_FAIL(
	    cfg, config_json_machine_config(cfg, B("{\"vcpu_count\": 33}"), true),
	    -EINVAL, "is 33; it must be 1 to 32");
	EXPECT_FAIL(
	    cfg,
	    config_json_machine_config(cfg, B("{\"mem_size_mib\": 0}"), true),
	    -EINVAL, "mem_size_mib");
	EXPECT_FAIL(cfg,
		    config_json_machine_config(cfg, B("{\"mem_size_mib\": 1073741825}"), true),
		    -EINVAL, "mem_size_mib");
	EXPECT_FAIL(cfg,
		    config_json_machine_config(cfg,
					       B("{\"mem_size_mib\": "
						 "9223372036854775807}"),
					       true),
		    -EINVAL, "mem_size_mib");
	EXPECT_FAIL(cfg,
		    config_json_machine_config(cfg,
					       B("{\"mem_size_mib\": "
						 "99999999999999999999999}"),
					       true),
		    -EINVAL, "invalid JSON");
	EXPECT_FAIL(
	    cfg,
	    config_json_machine_config(cfg, B("{\"mem_size_mib\": 1e30}"), true),
	    -EINVAL, "must be an integer");
	EXPECT_FAIL(cfg,
		    config_json_machine_config(cfg, B("{\"smt\": true}"), true),
		    -EINVAL, "smt is not supported");
	EXPECT_FAIL(cfg, config_json_machine_config(cfg, B("{\"smt\": 0}"), true),
		    -EINVAL, "field 'smt' in machine-config must be a boolean");
	EXPECT_FAIL(cfg,
		    config_json_machine_config(cfg, B("{\"cpu_template\": \"T2\"}"), true),
		    -EINVAL, "cpu_template T2 is not supported");
	EXPECT_FAIL(cfg,
		    config_json_machine_config(cfg, B("{\"cpu_template\": \"none\"}"), true),
		    -EINVAL, "expected one of");
	EXPECT_FAIL(
	    cfg,
	    config_json_machine_config(cfg, B("{\"huge_pages\": \"2M\"}"), true),
	    -EINVAL, "huge_pages 2M");
	EXPECT_FAIL(cfg,
		    config_json_machine_config(cfg, B("{\"track_dirty_pages\": \"yes\"}"), true),
		    -EINVAL, "must be a boolean");
	/* An error anywhere fails the whole update, also after good fields. */
	EXPECT_FAIL(cfg,
		    config_json_machine_config(cfg,
					       B("{\"vcpu_count\": 4, \"mem_size_mib\": "
						 "64, \"foo\": 1}"),
					       false),
		    -EINVAL, "unknown field 'foo' in machine-config");
	EXPECT_FAIL(cfg,
		    config_json_machine_config(cfg, B("{\"vcpu_count\": 4, \"smt\": true}"), false),
		    -EINVAL, "");
	EXPECT_FAIL(cfg,
		    config_json_machine_config(cfg,
					       B("{\"vcpu_count\": 4, \"vcpu_count\": "
						 "4}"),
					       true),
		    -EINVAL, "duplicate");
	EXPECT_FAIL(cfg,
		    config_json_machine_config(cfg, B("{vcpu_count: 4}"), true),
		    -EINVAL, "invalid JSON");
	free(cfg);
}

static void test_machine_config_dump(void **state)
{
	struct vm_config *cfg = new_cfg();
	char *s;

	cfg->nr_cpus = 2;
	cfg->memory_mib = 512;
	s = config_json_machine_config_dump(cfg);
	assert_string_equal(s, "{\"vcpu_count\":2,\"mem_size_mib\":512,\"smt\":false,"
			       "\"track_dirty_pages\":false,\"huge_pages\":\"None\"}");
	/* What GET returns, PUT takes. */
	cfg->nr_cpus = 1;
	assert_int_equal(config_json_machine_config(cfg, s, strlen(s), false), 0);
	assert_int_equal(cfg->nr_cpus, 2);
	free(s);
	free(cfg);
}

/* enable_pci (skiff's key for --enable-pci): set and cleared only when given, dumped only when
 * set, and what GET returns PUT takes. */
static void test_machine_config_enable_pci(void **state)
{
	struct vm_config *cfg = new_cfg();
	char *s;

	assert_false(cfg->enable_pci);
	assert_int_equal(config_json_machine_config(cfg,
						    B("{\"vcpu_count\": 1, \"mem_size_mib\": 128, "
						      "\"enable_pci\": true}"),
						    false),
			 0);
	assert_true(cfg->enable_pci);
	/* A PUT without it leaves the flag (it may come from the command line). */
	assert_int_equal(
	    config_json_machine_config(cfg, B("{\"vcpu_count\": 1, \"mem_size_mib\": 128}"), false),
	    0);
	assert_true(cfg->enable_pci);
	s = config_json_machine_config_dump(cfg);
	assert_non_null(strstr(s, "\"enable_pci\":true"));
	cfg->enable_pci = false;
	assert_int_equal(config_json_machine_config(cfg, s, strlen(s), false), 0);
	assert_true(cfg->enable_pci);
	free(s);
	assert_int_equal(config_json_machine_config(cfg, B("{\"enable_pci\": false}"), true), 0);
	assert_false(cfg->enable_pci);
	s = config_json_machine_config_dump(cfg);
	assert_null(strstr(s, "enable_pci"));
	free(s);
	EXPECT_FAIL(cfg, config_json_machine_config(cfg, B("{\"enable_pci\": 1}"), true), -EINVAL,
		    "enable_pci");
	free(cfg);
}

/* mem_mergeable (skiff's key for --mem-mergeable): like enable_pci, set and cleared only when
 * given, dumped only when set, and a boolean. */
static void test_machine_config_mem_mergeable(void **state)
{
	struct vm_config *cfg = new_cfg();
	char *s;

	assert_false(cfg->mem_mergeable);
	s = config_json_machine_config_dump(cfg);
	assert_null(strstr(s, "mem_mergeable"));
	free(s);
	assert_int_equal(config_json_machine_config(cfg,
						    B("{\"vcpu_count\": 1, \"mem_size_mib\": 128, "
						      "\"mem_mergeable\": true}"),
						    false),
			 0);
	assert_true(cfg->mem_mergeable);
	assert_int_equal(
	    config_json_machine_config(cfg, B("{\"vcpu_count\": 1, \"mem_size_mib\": 128}"), false),
	    0);
	assert_true(cfg->mem_mergeable);
	s = config_json_machine_config_dump(cfg);
	assert_non_null(strstr(s, "\"mem_mergeable\":true"));
	cfg->mem_mergeable = false;
	assert_int_equal(config_json_machine_config(cfg, s, strlen(s), false), 0);
	assert_true(cfg->mem_mergeable);
	free(s);
	assert_int_equal(config_json_machine_config(cfg, B("{\"mem_mergeable\": false}"), true), 0);
	assert_false(cfg->mem_mergeable);
	EXPECT_FAIL(cfg, config_json_machine_config(cfg, B("{\"mem_mergeable\": \"yes\"}"), true),
		    -EINVAL, "mem_mergeable");
	free(cfg);
}

#define DRIVE(id, path, root)                                                                      \
	"{\"drive_id\": \"" id "\", \"path_on_host\": \"" path "\", \"is_root_device\": " root "}"

static void test_drives(void **state)
{
	struct vm_config *cfg = new_cfg();

	assert_int_equal(
	    config_json_drive(cfg, "data", B(DRIVE("data", "/d.img", "false"))),
	    0);
	assert_int_equal(cfg->nr_disks, 1);
	assert_string_equal(cfg->disks[0].id, "data");
	assert_string_equal(cfg->disks[0].path, "/d.img");
	assert_false(cfg->disks[0].is_root);
	assert_false(cfg->disks[0].read_only);
	assert_int_equal(cfg->disks[0].cache_type, DISK_CACHE_UNSAFE);
	assert_int_equal(cfg->disks[0].io_engine, DISK_IO_SYNC);

	assert_int_equal(
	    config_json_drive(cfg, "scratch",
			      B("{\"drive_id\": \"scratch\", \"path_on_host\": "
				"\"/s.img\", \"is_root_device\": false, "
				"\"is_read_only\": true, \"cache_type\": \"Writeback\", "
				"\"io_engine\": \"Async\", \"rate_limiter\": null, "
				"\"partuuid\": null, \"socket\": null}")),
	    0);
	assert_true(cfg->disks[1].read_only);
	assert_int_equal(cfg->disks[1].cache_type, DISK_CACHE_WRITEBACK);
	assert_int_equal(cfg->disks[1].io_engine, DISK_IO_ASYNC);
	assert_int_equal(cfg->disks[1].num_queues, 0);

	/* num_queues: skiff's own, 1..32 here (the vCPU count is checked at InstanceStart);
	 * dumped only when given. */
	assert_int_equal(config_json_drive(cfg, "mq",
					   B("{\"drive_id\": \"mq\", \"path_on_host\": "
					     "\"/m.img\", \"is_root_device\": false, "
					     "\"num_queues\": 2}")),
			 0);
	assert_int_equal(cfg->disks[2].num_queues, 2);
	{
		char *dumped = config_json_vm_config_dump(cfg);

		assert_non_null(dumped);
		assert_non_null(strstr(dumped, "\"path_on_host\":\"/m.img\""));
		assert_non_null(strstr(dumped, "\"num_queues\":2"));
		/* the two drives without it: no key */
		assert_null(strstr(strstr(dumped, "num_queues") + 1, "num_queues"));
		free(dumped);
	}
	cfg->nr_disks--;
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "mq",
				      B("{\"drive_id\": \"mq\", \"path_on_host\": \"/m.img\", "
					"\"is_root_device\": false, \"num_queues\": 0}")),
		    -EINVAL, "num_queues");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "mq",
				      B("{\"drive_id\": \"mq\", \"path_on_host\": \"/m.img\", "
					"\"is_root_device\": false, \"num_queues\": 33}")),
		    -EINVAL, "num_queues");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "mq",
				      B("{\"drive_id\": \"mq\", \"path_on_host\": \"/m.img\", "
					"\"is_root_device\": false, \"num_queues\": \"2\"}")),
		    -EINVAL, "num_queues");
	assert_int_equal(cfg->nr_disks, 2);

	/* Replace by id: in place, same count. */
	assert_int_equal(
	    config_json_drive(cfg, "data", B(DRIVE("data", "/d2.img", "false"))),
	    0);
	assert_int_equal(cfg->nr_disks, 2);
	assert_string_equal(cfg->disks[0].path, "/d2.img");
	assert_string_equal(cfg->disks[1].id, "scratch");

	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"path_on_host\": \"/x\", "
					"\"is_root_device\": false}")),
		    -EINVAL, "missing required field 'drive_id' in drive");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", "
					"\"is_root_device\": false}")),
		    -EINVAL, "missing required field 'path_on_host' in drive");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"\"/x\"}")),
		    -EINVAL, "missing required field 'is_root_device' in drive");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x", B(DRIVE("x", "/x", "\"false\""))),
		    -EINVAL, "field 'is_root_device' in drive must be a boolean");
	EXPECT_FAIL(cfg, config_json_drive(cfg, "x", B(DRIVE("x", "/x", "0"))),
		    -EINVAL, "must be a boolean");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "1",
				      B("{\"drive_id\": 1, \"path_on_host\": "
					"\"/x\", \"is_root_device\": false}")),
		    -EINVAL, "field 'drive_id' in drive must be a string");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"true, \"is_root_device\": false}")),
		    -EINVAL, "'path_on_host' in drive must be");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"\"/x\", \"is_root_device\": false, "
					"\"is_read_only\": 1}")),
		    -EINVAL, "'is_read_only' in drive must be a boolean");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "a b", B(DRIVE("a b", "/x", "false"))),
		    -EINVAL, "an id is 1 to 20");
	EXPECT_FAIL(cfg, config_json_drive(cfg, "", B(DRIVE("", "/x", "false"))),
		    -EINVAL, "an id is 1 to 20");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "123456789012345678901",
				      B(DRIVE("123456789012345678901", "/x", "false"))),
		    -EINVAL, "an id is 1 to 20");
	EXPECT_FAIL(
	    cfg, config_json_drive(cfg, "other", B(DRIVE("data", "/x", "false"))),
	    -EINVAL, "drive_id 'data' in the body does not match 'other' in the path");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"\"/x\", \"is_root_device\": false, "
					"\"rate_limiter\": {\"bandwidth\": {\"size\": "
					"1, \"refill_time\": 0}}}")),
		    -EINVAL, "rate_limiter.bandwidth of drive: refill_time 0 would never refill");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"\"/x\", \"is_root_device\": false, "
					"\"rate_limiter\": {\"ops\": {\"size\": 1}}}")),
		    -EINVAL, "missing required field 'refill_time' in rate_limiter.ops of drive");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"\"/x\", \"is_root_device\": false, "
					"\"rate_limiter\": {\"ops\": {\"size\": 1, "
					"\"refill_time\": 1, \"burst\": 2}}}")),
		    -EINVAL, "unknown field 'burst' in rate_limiter.ops of drive");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"\"/x\", \"is_root_device\": false, "
					"\"rate_limiter\": {\"iops\": {}}}")),
		    -EINVAL, "unknown field 'iops' in rate_limiter of drive");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"\"/x\", \"is_root_device\": false, "
					"\"rate_limiter\": {\"ops\": {\"size\": -1, "
					"\"refill_time\": 1}}}")),
		    -EINVAL, "field 'size' in rate_limiter.ops of drive is -1");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"\"/x\", \"is_root_device\": false, "
					"\"rate_limiter\": {\"ops\": {\"size\": 1, "
					"\"refill_time\": 4294967296}}}")),
		    -EINVAL, "refill_time 4294967296 ms is more than 4294967295");
	/* Accepted: the buckets are kept; a 0-sized one is no limit. */
	assert_int_equal(config_json_drive(cfg, "rl",
					   B("{\"drive_id\": \"rl\", \"path_on_host\": "
					     "\"/x\", \"is_root_device\": false, "
					     "\"rate_limiter\": {\"bandwidth\": {\"size\": "
					     "1048576, \"one_time_burst\": 4096, \"refill_time\": "
					     "1000}, \"ops\": {\"size\": 0, \"refill_time\": 0}}}")),
			 0);
	{
		const struct disk_config *d = &cfg->disks[cfg->nr_disks - 1];

		assert_string_equal(d->id, "rl");
		assert_int_equal(d->rate_limiter.bandwidth.size, 1048576);
		assert_int_equal(d->rate_limiter.bandwidth.one_time_burst, 4096);
		assert_int_equal(d->rate_limiter.bandwidth.refill_time_ms, 1000);
		assert_int_equal(d->rate_limiter.ops.size, 0);
		cfg->nr_disks--;
	}
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"\"/x\", \"is_root_device\": false, "
					"\"rate_limiter\": 5}")),
		    -EINVAL, "'rate_limiter' in drive must be an object");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"\"/x\", \"is_root_device\": false, "
					"\"cache_type\": \"None\"}")),
		    -EINVAL,
		    "'cache_type' in drive is \"None\"; expected one of \"Unsafe\", \"Writeback\"");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"\"/x\", \"is_root_device\": false, "
					"\"io_engine\": \"async\"}")),
		    -EINVAL, "io_engine");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"socket\": "
					"\"/vhost.sock\", \"is_root_device\": "
					"false}")),
		    -EINVAL, "vhost-user drives are not supported");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"\"/x\", \"is_root_device\": true, "
					"\"partuuid\": \"1234 init=/bin/sh\"}")),
		    -EINVAL, "partuuid");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"path_on_host\": "
					"\"/x\", \"is_root_device\": false, "
					"\"foo\": null}")),
		    -EINVAL, "unknown field 'foo' in drive");
	EXPECT_FAIL(cfg,
		    config_json_drive(cfg, "x",
				      B("{\"drive_id\": \"x\", \"drive_id\": \"x\", "
					"\"path_on_host\": \"/x\", "
					"\"is_root_device\": false}")),
		    -EINVAL, "duplicate");
	EXPECT_FAIL(cfg, config_json_drive(cfg, "x", B("{\"drive_id\": \"x\",")),
		    -EINVAL, "invalid JSON");
	EXPECT_FAIL(cfg, config_json_drive(cfg, "x", NULL, 0), -EINVAL,
		    "empty body");
	assert_int_equal(cfg->nr_disks, 2);
	free(cfg);
}

static void test_root_drive(void **state)
{
	struct vm_config *cfg = new_cfg();
	char out[VM_CONFIG_MAX_CMDLINE];

	assert_int_equal(
	    config_json_drive(cfg, "a", B(DRIVE("a", "/a", "false"))), 0);
	assert_int_equal(
	    config_json_drive(cfg, "b", B(DRIVE("b", "/b", "false"))), 0);
	assert_int_equal(vm_config_kernel_cmdline(cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "console=ttyS0");

	/* The root drive goes first, the others keep their order. */
	assert_int_equal(
	    config_json_drive(cfg, "rootfs", B(DRIVE("rootfs", "/r", "true"))),
	    0);
	assert_int_equal(cfg->nr_disks, 3);
	assert_string_equal(cfg->disks[0].id, "rootfs");
	assert_true(cfg->disks[0].is_root);
	assert_string_equal(cfg->disks[1].id, "a");
	assert_string_equal(cfg->disks[2].id, "b");
	assert_int_equal(vm_config_kernel_cmdline(cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "console=ttyS0 root=/dev/vda rw");

	EXPECT_FAIL(cfg, config_json_drive(cfg, "b", B(DRIVE("b", "/b", "true"))),
		    -EINVAL, "drive rootfs is already the root device");

	/* Replacing the root drive itself is fine: read-only now, with a PARTUUID. */
	assert_int_equal(config_json_drive(cfg, "rootfs",
					   B("{\"drive_id\": \"rootfs\", \"path_on_host\": \"/r\", "
					     "\"is_root_device\": true, \"is_read_only\": true, "
					     "\"partuuid\": \"0eaa91a0-01\"}")),
			 0);
	assert_int_equal(cfg->nr_disks, 3);
	assert_int_equal(vm_config_kernel_cmdline(cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "console=ttyS0 root=PARTUUID=0eaa91a0-01 ro");
	assert_int_equal(config_json_drive(cfg, "rootfs",
					   B("{\"drive_id\": \"rootfs\", \"path_on_host\": \"/r\", "
					     "\"is_root_device\": true, \"is_read_only\": true}")),
			 0);
	cfg->cmdline = "quiet";
	assert_int_equal(vm_config_kernel_cmdline(cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "quiet console=ttyS0 root=/dev/vda ro");
	/* The user's root= wins; init's arguments stay last. */
	cfg->cmdline = "root=/dev/vdb console=hvc0";
	assert_int_equal(vm_config_kernel_cmdline(cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "root=/dev/vdb console=hvc0");
	cfg->cmdline = "quiet -- single root=x";
	assert_int_equal(vm_config_kernel_cmdline(cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "quiet console=ttyS0 root=/dev/vda ro -- single root=x");
	cfg->cmdline = "-- single";
	assert_int_equal(vm_config_kernel_cmdline(cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "console=ttyS0 root=/dev/vda ro -- single");

	/* A root drive that stops being root stays where it is and root= goes. */
	cfg->cmdline = NULL;
	assert_int_equal(
	    config_json_drive(cfg, "rootfs", B(DRIVE("rootfs", "/r", "false"))),
	    0);
	assert_int_equal(vm_config_kernel_cmdline(cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "console=ttyS0");
	/* An existing drive made root moves to the front. */
	assert_int_equal(config_json_drive(cfg, "b", B(DRIVE("b", "/b", "true"))),
			 0);
	assert_string_equal(cfg->disks[0].id, "b");
	assert_string_equal(cfg->disks[1].id, "rootfs");
	assert_string_equal(cfg->disks[2].id, "a");
	assert_int_equal(cfg->nr_disks, 3);
	free(cfg);
}

static void test_drive_table_full(void **state)
{
	struct vm_config *cfg = new_cfg();
	char body[256], id[16];
	int n;

	for (int i = 0; i < VM_CONFIG_MAX_DISKS; i++) {
		snprintf(id, sizeof(id), "d%d", i);
		n = snprintf(body, sizeof(body), DRIVE("%s", "/x", "false"), id);
		assert_int_equal(config_json_drive(cfg, id, body, (size_t)n), 0);
	}
	n = snprintf(body, sizeof(body), DRIVE("%s", "/x", "false"), "one_more");
	EXPECT_FAIL(cfg, config_json_drive(cfg, "one_more", body, (size_t)n),
		    -ENOSPC, "at most 8 drives");
	/* Replacing still works when full. */
	n = snprintf(body, sizeof(body), DRIVE("%s", "/y", "true"), "d7");
	assert_int_equal(config_json_drive(cfg, "d7", body, (size_t)n), 0);
	assert_string_equal(cfg->disks[0].id, "d7");
	free(cfg);
}

static void test_drive_update(void **state)
{
	struct vm_config *cfg = new_cfg();
	struct drive_update u, before;

	assert_int_equal(
	    config_json_drive(cfg, "data", B(DRIVE("data", "/d.img", "false"))),
	    0);
	assert_int_equal(config_json_drive_update(cfg, "data",
						  B("{\"drive_id\": \"data\", "
						    "\"path_on_host\": \"/new\"}"),
						  &u),
			 0);
	assert_string_equal(u.drive_id, "data");
	assert_string_equal(u.path_on_host, "/new");
	assert_int_equal(config_json_drive_update(cfg, "data",
						  B("{\"drive_id\": \"data\", "
						    "\"rate_limiter\": null}"),
						  &u),
			 0);
	assert_string_equal(u.path_on_host, "");

	memcpy(&before, &u, sizeof(u));
	assert_int_equal(config_json_drive_update(cfg, "nope",
						  B("{\"drive_id\": \"nope\", "
						    "\"path_on_host\": \"/new\"}"),
						  &u),
			 -EINVAL);
	assert_non_null(strstr(err, "drive nope does not exist"));
	assert_int_equal(
	    config_json_drive_update(cfg, "x", B("{\"drive_id\": \"data\"}"), &u),
	    -EINVAL);
	assert_non_null(strstr(err, "does not match"));
	assert_int_equal(config_json_drive_update(cfg, "data",
						  B("{\"drive_id\": \"data\", "
						    "\"is_read_only\": true}"),
						  &u),
			 -EINVAL);
	assert_non_null(strstr(err, "unknown field 'is_read_only' in drive"));
	/* A PATCH names the buckets it changes; the others stay. */
	assert_int_equal(config_json_drive_update(cfg, "data",
						  B("{\"drive_id\": \"data\", "
						    "\"rate_limiter\": {}}"),
						  &u),
			 0);
	assert_int_equal(u.rate_limiter_given, 0);
	cfg->disks[0].rate_limiter.ops = (struct token_bucket_config){10, 0, 1000};
	assert_string_equal(cfg->disks[0].id, "data");
	assert_int_equal(config_json_drive_update(cfg, "data",
						  B("{\"drive_id\": \"data\", "
						    "\"rate_limiter\": {\"bandwidth\": {\"size\": 5, "
						    "\"refill_time\": 100}}}"),
						  &u),
			 0);
	assert_int_equal(u.rate_limiter_given, 1);
	assert_int_equal(u.rate_limiter.bandwidth.size, 5);
	assert_int_equal(u.rate_limiter.ops.size, 10);
	assert_int_equal(config_json_drive_update(cfg, "data",
						  B("{\"drive_id\": \"data\", "
						    "\"rate_limiter\": {\"ops\": {\"size\": 0, "
						    "\"refill_time\": 0}}}"),
						  &u),
			 0);
	assert_int_equal(u.rate_limiter_given, 2);
	assert_int_equal(u.rate_limiter.ops.size, 0);
	cfg->disks[0].rate_limiter = (struct rate_limiter_config){0};
	memcpy(&before, &u, sizeof(u));
	assert_int_equal(config_json_drive_update(cfg, "data",
						  B("{\"drive_id\": \"data\", "
						    "\"rate_limiter\": {\"ops\": {\"size\": 3, "
						    "\"refill_time\": 0}}}"),
						  &u),
			 -EINVAL);
	assert_non_null(strstr(err, "refill_time 0 would never refill"));
	assert_int_equal(config_json_drive_update(cfg, "data", B("{\"path_on_host\": \"/n\"}"), &u),
			 -EINVAL);
	assert_non_null(strstr(err, "missing required field 'drive_id'"));
	assert_memory_equal(&before, &u, sizeof(u));
	free(cfg);
}

#define NET(id, tap) "{\"iface_id\": \"" id "\", \"host_dev_name\": \"" tap "\"}"

static void test_network_interfaces(void **state)
{
	struct vm_config *cfg = new_cfg();

	assert_int_equal(config_json_network_interface(cfg, "eth0",
						       B("{\"iface_id\": \"eth0\", "
							 "\"host_dev_name\": \"tap0\", "
							 "\"guest_mac\": \"AA:FC:00:00:00:01\", "
							 "\"rx_rate_limiter\": null, "
							 "\"tx_rate_limiter\": null}")),
			 0);
	assert_int_equal(cfg->nr_nets, 1);
	assert_string_equal(cfg->nets[0].id, "eth0");
	assert_string_equal(cfg->nets[0].tap, "tap0");
	assert_true(cfg->nets[0].has_mac);
	assert_int_equal(cfg->nets[0].mac[0], 0xaa);
	assert_int_equal(cfg->nets[0].mac[5], 1);

	/* Replace by id. */
	assert_int_equal(
	    config_json_network_interface(cfg, "eth0", B(NET("eth0", "tap9"))),
	    0);
	assert_int_equal(cfg->nr_nets, 1);
	assert_string_equal(cfg->nets[0].tap, "tap9");
	assert_false(cfg->nets[0].has_mac);

	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "eth1", B("{\"iface_id\": \"eth1\"}")),
		    -EINVAL, "missing required field 'host_dev_name' in network-interface");
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "eth1", B("{\"host_dev_name\": \"tap1\"}")),
		    -EINVAL, "missing required field 'iface_id'");
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "eth1",
						  B("{\"iface_id\": \"eth1\", "
						    "\"host_dev_name\": 5}")),
		    -EINVAL, "'host_dev_name' in network-interface must be a string");
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "eth1", B(NET("eth1", "0123456789abcdef"))),
		    -EINVAL, "'host_dev_name' in network-interface must be an interface name");
	EXPECT_FAIL(
	    cfg,
	    config_json_network_interface(cfg, "eth1", B(NET("eth1", "../tap"))),
	    -EINVAL, "host_dev_name");
	EXPECT_FAIL(
	    cfg,
	    config_json_network_interface(cfg, "eth1", B(NET("eth1", "tap9"))),
	    -EINVAL, "interface eth0 already uses tap9");
	EXPECT_FAIL(
	    cfg,
	    config_json_network_interface(cfg, "eth2", B(NET("eth1", "tap1"))),
	    -EINVAL, "does not match");
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "eth1",
						  B("{\"iface_id\": \"eth1\", "
						    "\"host_dev_name\": \"tap1\", "
						    "\"guest_mac\": \"aa:bb:cc:dd:ee\"}")),
		    -EINVAL, "'guest_mac' in network-interface is \"aa:bb:cc:dd:ee\"");
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "eth1",
						  B("{\"iface_id\": \"eth1\", "
						    "\"host_dev_name\": \"tap1\", "
						    "\"guest_mac\": \"aa:bb:cc:dd:ee: f\"}")),
		    -EINVAL, "guest_mac");
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "eth1",
						  B("{\"iface_id\": \"eth1\", "
						    "\"host_dev_name\": \"tap1\", "
						    "\"guest_mac\": \"01:00:5e:00:00:01\"}")),
		    -EINVAL, "multicast");
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "eth1",
						  B("{\"iface_id\": \"eth1\", "
						    "\"host_dev_name\": \"tap1\", "
						    "\"guest_mac\": 17}")),
		    -EINVAL, "'guest_mac' in network-interface must be a string");
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "eth1",
						  B("{\"iface_id\": \"eth1\", "
						    "\"host_dev_name\": \"tap1\", "
						    "\"tx_rate_limiter\": {\"ops\": {\"size\": "
						    "1, \"refill_time\": 0}}}")),
		    -EINVAL, "tx_rate_limiter.ops of network-interface: refill_time 0");
	assert_int_equal(config_json_network_interface(
			     cfg, "eth1",
			     B("{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", "
			       "\"rx_rate_limiter\": {\"bandwidth\": {\"size\": 1000, "
			       "\"refill_time\": 10}}, \"tx_rate_limiter\": {\"ops\": "
			       "{\"size\": 7, \"one_time_burst\": 9, \"refill_time\": 20}}}")),
			 0);
	assert_int_equal(cfg->nets[1].rx_rate_limiter.bandwidth.size, 1000);
	assert_int_equal(cfg->nets[1].rx_rate_limiter.ops.size, 0);
	assert_int_equal(cfg->nets[1].tx_rate_limiter.ops.one_time_burst, 9);
	{
		char *dump = config_json_vm_config_dump(cfg);

		assert_non_null(strstr(dump, "\"rx_rate_limiter\":{\"bandwidth\":{\"size\":1000,"
					     "\"refill_time\":10},\"ops\":null},\"tx_rate_limiter\":"
					     "{\"bandwidth\":null,\"ops\":{\"size\":7,"
					     "\"one_time_burst\":9,\"refill_time\":20}}"));
		free(dump);
	}
	{
		struct net_update nu;

		assert_int_equal(config_json_network_interface_update(
				     cfg, "eth1",
				     B("{\"iface_id\": \"eth1\", \"rx_rate_limiter\": {\"ops\": "
				       "{\"size\": 5, \"refill_time\": 50}}}"),
				     &nu),
				 0);
		assert_int_equal(nu.rx_given, 2);
		assert_int_equal(nu.tx_given, 0);
		assert_int_equal(nu.rx_rate_limiter.bandwidth.size, 1000);
		assert_int_equal(nu.rx_rate_limiter.ops.size, 5);
		assert_int_equal(nu.tx_rate_limiter.ops.size, 7);
		assert_int_equal(config_json_network_interface_update(
				     cfg, "eth9", B("{\"iface_id\": \"eth9\"}"), &nu),
				 -EINVAL);
		assert_non_null(strstr(err, "network interface eth9 does not exist"));
		assert_int_equal(config_json_network_interface_update(
				     cfg, "eth1",
				     B("{\"iface_id\": \"eth1\", \"host_dev_name\": \"x\"}"),
				     &nu),
				 -EINVAL);
		assert_non_null(strstr(err, "unknown field 'host_dev_name'"));
	}
	assert_int_equal(cfg->nr_nets, 2);
	cfg->nr_nets--; /* eth1 again, for what follows */
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "eth1",
						  B("{\"iface_id\": \"eth1\", "
						    "\"host_dev_name\": \"tap1\", \"mtu\": "
						    "1500}")),
		    -EINVAL, "MTU is not supported");
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "eth1",
						  B("{\"iface_id\": \"eth1\", "
						    "\"host_dev_name\": \"tap1\", \"bar\": "
						    "1}")),
		    -EINVAL, "unknown field 'bar' in network-interface");

	/* num_queues: skiff's own, 1..8 here (the vCPU count is checked at InstanceStart), never
	 * with vhost; dumped only when given. */
	assert_int_equal(config_json_network_interface(cfg, "mq",
						       B("{\"iface_id\": \"mq\", "
							 "\"host_dev_name\": \"tapmq\", "
							 "\"num_queues\": 2}")),
			 0);
	assert_int_equal(cfg->nets[cfg->nr_nets - 1].num_queues, 2);
	{
		char *dumped = config_json_vm_config_dump(cfg);

		assert_non_null(dumped);
		assert_non_null(strstr(dumped, "\"num_queues\":2"));
		assert_null(strstr(strstr(dumped, "\"num_queues\":2") + 2, "num_queues"));
		free(dumped);
	}
	cfg->nr_nets--;
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "mq",
						  B("{\"iface_id\": \"mq\", \"host_dev_name\": "
						    "\"tapmq\", \"num_queues\": 0}")),
		    -EINVAL, "num_queues");
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "mq",
						  B("{\"iface_id\": \"mq\", \"host_dev_name\": "
						    "\"tapmq\", \"num_queues\": 9}")),
		    -EINVAL, "num_queues");
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "mq",
						  B("{\"iface_id\": \"mq\", \"host_dev_name\": "
						    "\"tapmq\", \"num_queues\": \"2\"}")),
		    -EINVAL, "num_queues");
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "mq",
						  B("{\"iface_id\": \"mq\", \"host_dev_name\": "
						    "\"tapmq\", \"num_queues\": 2, \"vhost\": true}")),
		    -EINVAL, "vhost=on supports one queue pair");

	/* Two interfaces may not share a MAC address. */
	assert_int_equal(config_json_network_interface(cfg, "eth0",
						       B("{\"iface_id\": \"eth0\", "
							 "\"host_dev_name\": \"tap0\", "
							 "\"guest_mac\": \"02:00:00:00:00:01\"}")),
			 0);
	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "eth1",
						  B("{\"iface_id\": \"eth1\", "
						    "\"host_dev_name\": \"tap1\", "
						    "\"guest_mac\": \"02:00:00:00:00:01\"}")),
		    -EINVAL, "already has that guest_mac");

	for (int i = 1; i < VM_CONFIG_MAX_NETS; i++) {
		char body[128], id[8];
		int n;

		snprintf(id, sizeof(id), "n%d", i);
		n = snprintf(body, sizeof(body), "{\"iface_id\":\"%s\",\"host_dev_name\":\"t%d\"}",
			     id, i);
		assert_int_equal(
		    config_json_network_interface(cfg, id, body, (size_t)n), 0);
	}
	EXPECT_FAIL(
	    cfg,
	    config_json_network_interface(cfg, "last", B(NET("last", "tlast"))),
	    -ENOSPC, "at most 4 interfaces");
	free(cfg);
}

/* skiff's "vhost" on an interface: a boolean, dumped only when on, never rate-limited (PUT,
 * PATCH). */
static void test_network_interface_vhost(void **state)
{
	struct vm_config *cfg = new_cfg();
	struct net_update nu;
	char *dump;

	EXPECT_FAIL(cfg,
		    config_json_network_interface(cfg, "v0",
						  B("{\"iface_id\": \"v0\", \"host_dev_name\": "
						    "\"tv0\", \"vhost\": 1}")),
		    -EINVAL, "field 'vhost' in network-interface must be a boolean");
	EXPECT_FAIL(cfg,
		    config_json_network_interface(
			cfg, "v0",
			B("{\"iface_id\": \"v0\", \"host_dev_name\": \"tv0\", \"vhost\": true, "
			  "\"rx_rate_limiter\": {\"ops\": {\"size\": 5, \"refill_time\": 50}}}")),
		    -EINVAL, "network-interface v0: vhost=on cannot be rate-limited");
	assert_int_equal(config_json_network_interface(cfg, "v0",
						       B("{\"iface_id\": \"v0\", "
							 "\"host_dev_name\": \"tv0\", "
							 "\"vhost\": true}")),
			 0);
	assert_int_equal(config_json_network_interface(cfg, "v1",
						       B("{\"iface_id\": \"v1\", "
							 "\"host_dev_name\": \"tv1\", "
							 "\"vhost\": false}")),
			 0);
	assert_true(cfg->nets[0].vhost);
	assert_false(cfg->nets[1].vhost);
	dump = config_json_vm_config_dump(cfg);
	assert_non_null(strstr(dump, "\"host_dev_name\":\"tv0\""));
	assert_non_null(strstr(dump, "\"vhost\":true"));
	assert_null(strstr(dump, "\"vhost\":false"));
	free(dump);
	assert_int_equal(config_json_network_interface_update(
			     cfg, "v0",
			     B("{\"iface_id\": \"v0\", \"tx_rate_limiter\": {\"bandwidth\": "
			       "{\"size\": 5000, \"refill_time\": 50}}}"),
			     &nu),
			 -EINVAL);
	assert_non_null(strstr(err, "network-interface v0: vhost=on cannot be rate-limited"));
	/* Removing a limit (size 0) limits nothing: accepted. */
	assert_int_equal(config_json_network_interface_update(
			     cfg, "v0",
			     B("{\"iface_id\": \"v0\", \"tx_rate_limiter\": {\"bandwidth\": "
			       "{\"size\": 0, \"refill_time\": 50}}}"),
			     &nu),
			 0);
	assert_int_equal(config_json_network_interface_update(
			     cfg, "v1",
			     B("{\"iface_id\": \"v1\", \"tx_rate_limiter\": {\"bandwidth\": "
			       "{\"size\": 5000, \"refill_time\": 50}}}"),
			     &nu),
			 0);
	free(cfg);
}

static void test_entropy(void **state)
{
	struct vm_config *cfg = new_cfg();

	assert_int_equal(config_json_entropy(cfg, B("{}")), 0);
	assert_true(cfg->rng);
	cfg->rng = false;
	assert_int_equal(config_json_entropy(cfg, B("{\"rate_limiter\": null}")),
			 0);
	assert_true(cfg->rng);
	cfg->rng = false;
	assert_int_equal(config_json_entropy(cfg, B("{\"rate_limiter\": {\"bandwidth\": "
						    "{\"size\": 100, \"refill_time\": 10}}}")),
			 0);
	assert_true(cfg->rng);
	assert_int_equal(cfg->rng_rate_limiter.bandwidth.size, 100);
	assert_int_equal(cfg->rng_rate_limiter.bandwidth.refill_time_ms, 10);
	cfg->rng = false;
	cfg->rng_rate_limiter = (struct rate_limiter_config){0};
	EXPECT_FAIL(cfg, config_json_entropy(cfg, B("{\"rate_limiter\": {\"ops\": "
						    "{\"size\": 100, \"refill_time\": 0}}}")),
		    -EINVAL, "rate_limiter.ops of entropy: refill_time 0");
	EXPECT_FAIL(cfg, config_json_entropy(cfg, B("{\"rate_limiter\": \"x\"}")),
		    -EINVAL, "must be an object");
	EXPECT_FAIL(cfg, config_json_entropy(cfg, B("{\"x\": 1}")), -EINVAL,
		    "unknown field 'x' in entropy");
	EXPECT_FAIL(cfg, config_json_entropy(cfg, B("")), -EINVAL, "empty body");
	free(cfg);
}

static int put_vsock(struct vm_config *cfg, const char *body, bool checked)
{
	return checked ? config_resource_put_checked(&vsock_resource, cfg, "", body, strlen(body))
		       : config_resource_put(&vsock_resource, cfg, "", body, strlen(body));
}

static void test_vsock(void **state)
{
	struct vm_config *cfg = new_cfg();
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char dir[] = "/tmp/skiff-cfg-vsock-XXXXXX", body[256], *dump;
	int l;

	assert_int_equal(put_vsock(cfg, "{\"guest_cid\": 3, \"uds_path\": \"/tmp/v.sock\"}", false),
			 0);
	assert_true(cfg->vsock.enabled);
	assert_int_equal(cfg->vsock.guest_cid, 3);
	assert_string_equal(cfg->vsock.uds_path, "/tmp/v.sock");
	assert_int_equal(vsock_resource.count(cfg), 1);
	dump = cj_dump(vsock_resource.dump(cfg));
	assert_string_equal(dump, "{\"guest_cid\":3,\"uds_path\":\"/tmp/v.sock\"}");
	free(dump);
	/* Firecracker's vsock_id is accepted and reported back. */
	assert_int_equal(put_vsock(cfg,
				   "{\"vsock_id\": \"vsock0\", \"guest_cid\": 4294967294, "
				   "\"uds_path\": \"/tmp/w.sock\"}",
				   false),
			 0);
	dump = cj_dump(vsock_resource.dump(cfg));
	assert_string_equal(dump, "{\"guest_cid\":4294967294,\"uds_path\":\"/tmp/w.sock\","
				  "\"vsock_id\":\"vsock0\"}");
	free(dump);
	EXPECT_FAIL(cfg, put_vsock(cfg, "{\"guest_cid\": 2, \"uds_path\": \"/v\"}", false),
		    -EINVAL, "guest_cid 2: a guest's CID is 3 to 4294967294");
	EXPECT_FAIL(cfg, put_vsock(cfg, "{\"guest_cid\": 4294967295, \"uds_path\": \"/v\"}", false),
		    -EINVAL, "guest_cid 4294967295");
	EXPECT_FAIL(cfg, put_vsock(cfg, "{\"guest_cid\": 3}", false), -EINVAL,
		    "missing required field 'uds_path'");
	EXPECT_FAIL(cfg, put_vsock(cfg, "{\"uds_path\": \"/v\"}", false), -EINVAL,
		    "missing required field 'guest_cid'");
	EXPECT_FAIL(cfg, put_vsock(cfg, "{\"guest_cid\": 3, \"uds_path\": \"/v\", \"x\": 1}", false),
		    -EINVAL, "unknown field 'x'");
	snprintf(body, sizeof(body), "{\"guest_cid\": 3, \"uds_path\": \"/%0100d\"}", 0);
	EXPECT_FAIL(cfg, put_vsock(cfg, body, false), -EINVAL, "at most 96");
	/* At PUT time the path is checked: its directory, and nobody listening there. */
	EXPECT_FAIL(cfg,
		    put_vsock(cfg, "{\"guest_cid\": 3, \"uds_path\": \"/nonexistent/dir/v\"}",
			      true),
		    -EINVAL, "directory /nonexistent/dir does not exist");
	EXPECT_FAIL(cfg, put_vsock(cfg, "{\"guest_cid\": 3, \"uds_path\": \"/etc/passwd\"}", true),
		    -EINVAL, "exists and is not a socket");
	assert_non_null(mkdtemp(dir));
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/live.sock", dir);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	snprintf(body, sizeof(body), "{\"guest_cid\": 3, \"uds_path\": \"%s\"}", a.sun_path);
	EXPECT_FAIL(cfg, put_vsock(cfg, body, true), -EINVAL, "a socket something listens on");
	close(l); /* now stale: accepted, the device replaces it */
	assert_int_equal(put_vsock(cfg, body, true), 0);
	unlink(a.sun_path);
	rmdir(dir);
	free(cfg);
}

static int put_fs(struct vm_config *cfg, const char *id, const char *body, bool api)
{
	return api ? config_resource_put_checked(&fs_resource, cfg, id, body, strlen(body))
		   : config_resource_put(&fs_resource, cfg, id, body, strlen(body));
}

/* PUT /fs/{fs_id} and the "fs" section: one of socket and shared_dir, a tag of 1 to 36 bytes, no
 * tag twice; through the API the socket must exist (and be one), and shared_dir is refused (skiff
 * cannot start virtiofsd from its sandboxed API thread). */
static void test_fs(void **state)
{
	struct vm_config *cfg = new_cfg();
	char sock_path[] = "/tmp/skiff-test-fs-XXXXXX";
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	char body[256];

	assert_int_equal(put_fs(cfg, "a", "{\"fs_id\":\"a\",\"tag\":\"t1\",\"socket\":\"/x.sock\"}",
				false),
			 0);
	assert_int_equal(cfg->nr_fs, 1);
	assert_string_equal(cfg->fs[0].tag, "t1");
	assert_string_equal(cfg->fs[0].socket, "/x.sock");
	/* The same id again replaces it. */
	assert_int_equal(put_fs(cfg, "a", "{\"fs_id\":\"a\",\"tag\":\"t2\",\"shared_dir\":\"/s\"}",
				false),
			 0);
	assert_int_equal(cfg->nr_fs, 1);
	assert_string_equal(cfg->fs[0].shared_dir, "/s");
	assert_string_equal(cfg->fs[0].socket, "");
	EXPECT_FAIL(cfg, put_fs(cfg, "b", "{\"fs_id\":\"b\",\"tag\":\"t2\",\"socket\":\"/y\"}", false),
		    -EINVAL, "tag \"t2\" is already a's");
	EXPECT_FAIL(cfg, put_fs(cfg, "b", "{\"fs_id\":\"b\",\"tag\":\"t3\"}", false), -EINVAL,
		    "give one of 'socket' and 'shared_dir'");
	EXPECT_FAIL(cfg,
		    put_fs(cfg, "b",
			   "{\"fs_id\":\"b\",\"tag\":\"t3\",\"socket\":\"/y\",\"shared_dir\":\"/z\"}",
			   false),
		    -EINVAL, "give one of");
	EXPECT_FAIL(cfg, put_fs(cfg, "b", "{\"fs_id\":\"b\",\"tag\":\"\",\"socket\":\"/y\"}", false),
		    -EINVAL, "tag");
	EXPECT_FAIL(cfg,
		    put_fs(cfg, "b",
			   "{\"fs_id\":\"b\",\"tag\":\"0123456789012345678901234567890123456\","
			   "\"socket\":\"/y\"}",
			   false),
		    -EINVAL, "1 to 36 printable bytes");
	EXPECT_FAIL(cfg, put_fs(cfg, "b", "{\"fs_id\":\"b\",\"tag\":\"a b\",\"socket\":\"/y\"}", false),
		    -EINVAL, "without spaces");
	EXPECT_FAIL(cfg, put_fs(cfg, "c", "{\"fs_id\":\"b\",\"tag\":\"x\",\"socket\":\"/y\"}", false),
		    -EINVAL, "fs_id");
	EXPECT_FAIL(cfg, put_fs(cfg, "b", "{\"fs_id\":\"b\",\"tag\":\"x\",\"socket\":5}", false),
		    -EINVAL, "socket");
	EXPECT_FAIL(cfg, put_fs(cfg, "b", "{\"fs_id\":\"b\",\"tag\":\"x\",\"sock\":\"/y\"}", false),
		    -EINVAL, "unknown field 'sock'");
	/* A 36-byte tag is the most there is room for. */
	assert_int_equal(put_fs(cfg, "b",
				"{\"fs_id\":\"b\",\"tag\":\"012345678901234567890123456789012345\","
				"\"socket\":\"/y\"}",
				false),
			 0);

	/* The API: a missing socket, a file that is not a socket, shared_dir. */
	EXPECT_FAIL(cfg,
		    put_fs(cfg, "c",
			   "{\"fs_id\":\"c\",\"tag\":\"c\",\"socket\":\"/nonexistent/v.sock\"}", true),
		    -EINVAL, "vhost-user socket /nonexistent/v.sock: No such file or directory");
	EXPECT_FAIL(cfg, put_fs(cfg, "c", "{\"fs_id\":\"c\",\"tag\":\"c\",\"socket\":\"/etc/passwd\"}", true),
		    -EINVAL, "not a socket");
	EXPECT_FAIL(cfg, put_fs(cfg, "c", "{\"fs_id\":\"c\",\"tag\":\"c\",\"shared_dir\":\"/tmp\"}", true),
		    -EINVAL, "start virtiofsd and give 'socket'");
	assert_true(fd >= 0);
	assert_non_null(mktemp(sock_path));
	strcpy(addr.sun_path, sock_path);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	snprintf(body, sizeof(body), "{\"fs_id\":\"c\",\"tag\":\"c\",\"socket\":\"%s\"}", sock_path);
	assert_int_equal(put_fs(cfg, "c", body, true), 0);
	assert_int_equal(cfg->nr_fs, 3);
	unlink(sock_path);
	close(fd);
	free(cfg);
}

static void test_logger_metrics(void **state)
{
	struct logger_config lc, before;
	struct metrics_config mc;

	memset(&lc, 0, sizeof(lc));
	assert_int_equal(config_json_logger(B("{\"log_path\": \"/tmp/log\", \"level\": "
					      "\"warning\", \"show_level\": true, "
					      "\"show_log_origin\": false, \"module\": "
					      "\"api_server\"}"),
					    &lc),
			 0);
	assert_string_equal(lc.log_path, "/tmp/log");
	assert_true(lc.has_level);
	assert_int_equal(lc.level, LOG_WARN);
	assert_true(lc.show_level);
	assert_false(lc.show_log_origin);
	assert_int_equal(config_json_logger(B("{\"level\": \"TRACE\"}"), &lc), 0);
	assert_int_equal(lc.level, LOG_DEBUG);
	assert_string_equal(lc.log_path, "");
	assert_int_equal(config_json_logger(B("{\"level\": \"Off\"}"), &lc), 0);
	assert_int_equal(lc.level, LOG_ERROR);
	assert_int_equal(config_json_logger(B("{\"level\": \"Info\"}"), &lc), 0);
	assert_int_equal(lc.level, LOG_INFO);
	assert_int_equal(config_json_logger(B("{}"), &lc), 0);
	assert_false(lc.has_level);

	memcpy(&before, &lc, sizeof(lc));
	assert_int_equal(config_json_logger(B("{\"level\": \"Verbose\"}"), &lc),
			 -EINVAL);
	assert_non_null(strstr(err, "'level' in logger is \"Verbose\""));
	assert_int_equal(config_json_logger(B("{\"level\": 3}"), &lc), -EINVAL);
	assert_non_null(strstr(err, "must be a string"));
	assert_int_equal(config_json_logger(B("{\"show_level\": \"true\"}"), &lc),
			 -EINVAL);
	assert_int_equal(config_json_logger(B("{\"module\": 1}"), &lc), -EINVAL);
	assert_int_equal(
	    config_json_logger(B("{\"log_path\": \"/x\", \"color\": true}"), &lc),
	    -EINVAL);
	assert_non_null(strstr(err, "unknown field 'color' in logger"));
	assert_memory_equal(&before, &lc, sizeof(lc));

	assert_int_equal(
	    config_json_metrics(B("{\"metrics_path\": \"/tmp/m\"}"), &mc), 0);
	assert_string_equal(mc.metrics_path, "/tmp/m");
	assert_int_equal(config_json_metrics(B("{}"), &mc), -EINVAL);
	assert_non_null(strstr(err, "missing required field 'metrics_path' in metrics"));
	assert_int_equal(config_json_metrics(B("{\"metrics_path\": 1}"), &mc),
			 -EINVAL);
	assert_string_equal(mc.metrics_path, "/tmp/m");
}

static void test_actions_and_vm_state(void **state)
{
	enum api_action a = API_ACTION_FLUSH_METRICS;
	bool pause = false;

	assert_int_equal(
	    config_json_action(B("{\"action_type\": \"InstanceStart\"}"), &a), 0);
	assert_int_equal(a, API_ACTION_INSTANCE_START);
	assert_int_equal(
	    config_json_action(B("{\"action_type\": \"SendCtrlAltDel\"}"), &a),
	    0);
	assert_int_equal(a, API_ACTION_SEND_CTRL_ALT_DEL);
	assert_int_equal(
	    config_json_action(B("{\"action_type\": \"FlushMetrics\"}"), &a), 0);
	assert_int_equal(a, API_ACTION_FLUSH_METRICS);
	assert_int_equal(
	    config_json_action(B("{\"action_type\": \"Reboot\"}"), &a), -EINVAL);
	assert_non_null(strstr(err, "\"Reboot\""));
	assert_int_equal(
	    config_json_action(B("{\"action_type\": \"instancestart\"}"), &a),
	    -EINVAL);
	assert_int_equal(config_json_action(B("{}"), &a), -EINVAL);
	assert_non_null(strstr(err, "missing required field 'action_type' in action"));
	assert_int_equal(config_json_action(B("{\"action_type\": 1}"), &a),
			 -EINVAL);
	assert_int_equal(config_json_action(B("{\"action_type\": \"FlushMetrics\", \"x\": 1}"), &a),
			 -EINVAL);
	assert_int_equal(a, API_ACTION_FLUSH_METRICS);

	assert_int_equal(
	    config_json_vm_state(B("{\"state\": \"Paused\"}"), &pause), 0);
	assert_true(pause);
	assert_int_equal(
	    config_json_vm_state(B("{\"state\": \"Resumed\"}"), &pause), 0);
	assert_false(pause);
	assert_int_equal(
	    config_json_vm_state(B("{\"state\": \"Running\"}"), &pause), -EINVAL);
	assert_int_equal(config_json_vm_state(B("{\"state\": null}"), &pause),
			 -EINVAL);
	assert_non_null(strstr(err, "missing required field 'state' in vm"));
	assert_int_equal(
	    config_json_vm_state(B("{\"state\": \"Paused\"} {}"), &pause),
	    -EINVAL);
	assert_false(pause);
}

static const char full_doc[] =
    "{\"boot-source\": {\"kernel_image_path\": \"/vmlinux\", \"boot_args\": \"quiet\", "
    "\"initrd_path\": \"/initrd\"},"
    " \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 1024, \"smt\": false, "
    "\"track_dirty_pages\": true},"
    " \"drives\": [{\"drive_id\": \"data\", \"path_on_host\": \"/data.img\", "
    "\"is_root_device\": false, \"is_read_only\": true, \"cache_type\": \"Writeback\"},"
    " {\"drive_id\": \"rootfs\", \"path_on_host\": \"/rootfs.ext4\", \"is_root_device\": true, "
    "\"partuuid\": \"abcd-01\", \"io_engine\": \"Async\"}],"
    " \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", "
    "\"guest_mac\": \"06:00:ac:10:00:02\"}, {\"iface_id\": \"eth1\", \"host_dev_name\": "
    "\"tap1\"}],"
    " \"logger\": {\"log_path\": \"/tmp/fc.log\", \"level\": \"Debug\"},"
    " \"metrics\": {\"metrics_path\": \"/tmp/metrics\"},"
    " \"entropy\": {},"
    " \"balloon\": null, \"vsock\": null, \"mmds-config\": null, \"cpu-config\": null}";

static void test_document(void **state)
{
	struct vm_config *cfg = new_cfg();
	struct logger_config lc;
	struct metrics_config mc;
	char out[VM_CONFIG_MAX_CMDLINE];

	assert_int_equal(config_json_document(cfg, &lc, &mc, B(full_doc)), 0);
	assert_string_equal(cfg->kernel_path, "/vmlinux");
	assert_string_equal(cfg->initrd_path, "/initrd");
	assert_string_equal(cfg->cmdline, "quiet");
	assert_int_equal(cfg->nr_cpus, 2);
	assert_int_equal(cfg->memory_mib, 1024);
	assert_true(cfg->track_dirty_pages);
	assert_int_equal(cfg->nr_disks, 2);
	assert_string_equal(cfg->disks[0].id, "rootfs");
	assert_string_equal(cfg->disks[1].id, "data");
	assert_int_equal(cfg->nr_nets, 2);
	assert_true(cfg->rng);
	assert_string_equal(lc.log_path, "/tmp/fc.log");
	assert_int_equal(lc.level, LOG_DEBUG);
	assert_string_equal(mc.metrics_path, "/tmp/metrics");
	/* The owned strings survive the copy out of the document's working config. */
	assert_ptr_equal(cfg->kernel_path, cfg->kernel_path_buf);
	assert_int_equal(vm_config_kernel_cmdline(cfg, out, sizeof(out)), 0);
	assert_string_equal(out, "quiet console=ttyS0 root=PARTUUID=abcd-01 rw");

	/* Errors leave everything as it was, however far the document got. */
	memset(&lc, 0x5a, sizeof(lc));
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, &lc, &mc,
					 B("{\"boot-source\": {\"kernel_image_path\": \"/k\"},"
					   " \"machine-config\": {\"vcpu_count\": 1, "
					   "\"mem_size_mib\": 64}, \"drives\": [{\"drive_id\": "
					   "\"x\", \"path_on_host\": \"/x\", "
					   "\"is_root_device\": false}, {\"drive_id\": \"y\", "
					   "\"path_on_host\": \"/y\"}]}")),
		    -EINVAL, "missing required field 'is_root_device' in drives[1]");
	assert_int_equal(((unsigned char *)&lc)[0], 0x5a);
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, &lc, &mc,
					 B("{\"boot-source\": {\"kernel_image_path\": \"/k\"},"
					   " \"logger\": {\"level\": \"Loud\"}}")),
		    -EINVAL, "'level' in logger");
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, &lc, &mc,
					 B("{\"boot-source\": {\"kernel_image_path\": \"/k\"},"
					   " \"network-interfaces\": [{\"iface_id\": \"e\", "
					   "\"host_dev_name\": \"t\", \"guest_mac\": \"x\"}]}")),
		    -EINVAL, "'guest_mac' in network-interfaces[0]");
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, &lc, &mc,
					 B("{\"machine-config\": {\"vcpu_count\": 1, "
					   "\"mem_size_mib\": 64}}")),
		    -EINVAL, "missing required section 'boot-source'");
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, &lc, &mc,
					 B("{\"boot-source\": {\"kernel_image_path\": \"/k\"},"
					   " \"machine-config\": {\"vcpu_count\": 1}}")),
		    -EINVAL, "missing required field 'mem_size_mib' in machine-config");
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, &lc, &mc,
					 B("{\"boot-source\": {\"kernel_image_path\": \"/k\"},"
					   " \"vsock\": {\"guest_cid\": 2, \"uds_path\": "
					   "\"/v\"}}")),
		    -EINVAL, "guest_cid 2: a guest's CID is 3 to 4294967294");
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, &lc, &mc,
					 B("{\"boot-source\": {\"kernel_image_path\": \"/k\"},"
					   " \"balloon\": {}}")),
		    -EINVAL, "missing required field 'amount_mib' in balloon");
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, &lc, &mc,
					 B("{\"boot-source\": {\"kernel_image_path\": \"/k\"},"
					   " \"boot_source\": {}}")),
		    -EINVAL, "unknown field 'boot_source'");
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, &lc, &mc,
					 B("{\"boot-source\": {\"kernel_image_path\": \"/k\"},"
					   " \"drives\": {}}")),
		    -EINVAL, "'drives' must be an array");
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, &lc, &mc,
					 B("{\"boot-source\": {\"kernel_image_path\": \"/k\"},"
					   " \"drives\": [1]}")),
		    -EINVAL, "drives[0] must be an object");
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, &lc, &mc,
					 B("{\"boot-source\": [],"
					   " \"drives\": []}")),
		    -EINVAL, "'boot-source' must be an object");
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, &lc, &mc,
					 B("{\"boot-source\": {\"kernel_image_path\": \"/k\"},"
					   " \"boot-source\": {\"kernel_image_path\": \"/k\"}}")),
		    -EINVAL, "duplicate");
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, &lc, &mc, B("{\"boot-source\": ")),
		    -EINVAL, "invalid JSON");
	EXPECT_FAIL(cfg, config_json_document(cfg, &lc, &mc, "", 0), -EINVAL,
		    "empty body");
	/* Sections the caller does not take. */
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, NULL, NULL,
					 B("{\"boot-source\": {\"kernel_image_path\": \"/k\"},"
					   " \"logger\": {}}")),
		    -EINVAL, "'logger' is not supported here");
	assert_int_equal(((unsigned char *)&lc)[0], 0x5a);

	/* Duplicate drive ids in one document: a slip, refused (two PUTs would replace). */
	free(cfg);
	cfg = new_cfg();
	EXPECT_FAIL(cfg,
		    config_json_document(cfg, NULL, NULL,
					 B("{\"boot-source\": {\"kernel_image_path\": \"/k\"},"
					   " \"drives\": [{\"drive_id\": \"data\", "
					   "\"path_on_host\": \"/1\", \"is_root_device\": false},"
					   " {\"drive_id\": \"data\", \"path_on_host\": \"/2\", "
					   "\"is_root_device\": false}], \"pmem\": []}")),
		    -EINVAL, "drives[1]: its id is already used by an earlier entry of 'drives'");
	free(cfg);
}

static void test_round_trip(void **state)
{
	struct vm_config *a = new_cfg(), *b = new_cfg();
	char *dump_a, *dump_b;

	assert_int_equal(
	    config_json_document(a, NULL, NULL,
				 B("{\"boot-source\": {\"kernel_image_path\": "
				   "\"/vmlinux\", \"boot_args\": \"quiet\", "
				   "\"initrd_path\": \"/initrd\"},"
				   " \"machine-config\": {\"vcpu_count\": 2, "
				   "\"mem_size_mib\": 1024, \"track_dirty_pages\": "
				   "true},"
				   " \"drives\": [{\"drive_id\": \"data\", "
				   "\"path_on_host\": \"/data.img\", "
				   "\"is_root_device\": false, \"is_read_only\": true, "
				   "\"cache_type\": \"Writeback\"}, {\"drive_id\": "
				   "\"rootfs\", \"path_on_host\": \"/rootfs.ext4\", "
				   "\"is_root_device\": true, \"partuuid\": \"abcd-01\", "
				   "\"io_engine\": \"Async\"}],"
				   " \"network-interfaces\": [{\"iface_id\": \"eth0\", "
				   "\"host_dev_name\": \"tap0\", \"guest_mac\": "
				   "\"06:00:AC:10:00:02\"}, {\"iface_id\": \"eth1\", "
				   "\"host_dev_name\": \"tap1\"}], \"entropy\": {},"
				   " \"fs\": [{\"fs_id\": \"docs\", \"tag\": \"docs\", "
				   "\"socket\": \"/run/docs.sock\"}, {\"fs_id\": \"src\", "
				   "\"tag\": \"src\", \"shared_dir\": \"/src\"}]}")),
	    0);
	dump_a = config_json_vm_config_dump(a);
	assert_non_null(dump_a);
	assert_string_equal(
	    dump_a,
	    "{\"balloon\":null,\"drives\":[{\"drive_id\":\"rootfs\",\"partuuid\":\"abcd-01\","
	    "\"is_root_device\":true,\"cache_type\":\"Unsafe\",\"is_read_only\":false,"
	    "\"path_on_host\":\"/rootfs.ext4\",\"rate_limiter\":null,\"io_engine\":\"Async\"},"
	    "{\"drive_id\":\"data\",\"partuuid\":null,\"is_root_device\":false,\"cache_type\":"
	    "\"Writeback\",\"is_read_only\":true,\"path_on_host\":\"/data.img\","
	    "\"rate_limiter\":null,\"io_engine\":\"Sync\"}],\"boot-source\":{"
	    "\"kernel_image_path\":\"/vmlinux\",\"initrd_path\":\"/initrd\",\"boot_args\":"
	    "\"quiet\"},\"cpu-config\":null,\"logger\":null,\"machine-config\":{\"vcpu_count\":2,"
	    "\"mem_size_mib\":1024,\"smt\":false,\"track_dirty_pages\":true,\"huge_pages\":"
	    "\"None\"},\"metrics\":null,\"mmds-config\":null,\"network-interfaces\":[{"
	    "\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":"
	    "\"06:00:ac:10:00:02\",\"rx_rate_limiter\":null,\"tx_rate_limiter\":null},{"
	    "\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\",\"guest_mac\":null,"
	    "\"rx_rate_limiter\":null,\"tx_rate_limiter\":null}],\"vsock\":null,\"entropy\":{"
	    "\"rate_limiter\":null},"
	    "\"fs\":[{\"fs_id\":\"docs\",\"tag\":\"docs\",\"socket\":\"/run/docs.sock\","
	    "\"shared_dir\":null},{\"fs_id\":\"src\",\"tag\":\"src\",\"socket\":null,"
	    "\"shared_dir\":\"/src\"}]}");

	/* The dump read back as a document gives the same configuration. */
	assert_int_equal(
	    config_json_document(b, NULL, NULL, dump_a, strlen(dump_a)), 0);
	assert_string_equal(a->kernel_path, b->kernel_path);
	assert_string_equal(a->initrd_path, b->initrd_path);
	assert_string_equal(a->cmdline, b->cmdline);
	assert_int_equal(a->nr_cpus, b->nr_cpus);
	assert_int_equal(a->memory_mib, b->memory_mib);
	assert_int_equal(a->track_dirty_pages, b->track_dirty_pages);
	assert_int_equal(a->rng, b->rng);
	assert_int_equal(a->nr_disks, b->nr_disks);
	for (int i = 0; i < a->nr_disks; i++)
		assert_memory_equal(&a->disks[i], &b->disks[i], sizeof(a->disks[i]));
	assert_int_equal(a->nr_nets, b->nr_nets);
	for (int i = 0; i < a->nr_nets; i++)
		assert_memory_equal(&a->nets[i], &b->nets[i], sizeof(a->nets[i]));
	assert_int_equal(a->nr_fs, 2);
	assert_int_equal(b->nr_fs, 2);
	assert_memory_equal(a->fs, b->fs, sizeof(a->fs));
	dump_b = config_json_vm_config_dump(b);
	assert_string_equal(dump_a, dump_b);
	free(dump_a);
	free(dump_b);

	/* Nothing configured: no boot source yet, no devices. */
	vm_config_init_defaults(a);
	dump_a = config_json_vm_config_dump(a);
	assert_non_null(strstr(dump_a, "\"drives\":[],\"boot-source\":null,"));
	assert_non_null(strstr(dump_a, "\"entropy\":null,\"fs\":[]}"));
	free(dump_a);
	free(a);
	free(b);
}

static void test_validate_root_first(void **state)
{
	struct vm_config *cfg = new_cfg();

	char tmpl[] = "/tmp/skiff-test-root-first-XXXXXX", spec[64];
	int fd = mkstemp(tmpl);

	assert_true(fd >= 0);
	close(fd);
	cfg->kernel_path = tmpl;
	snprintf(spec, sizeof(spec), "%s,ro,id=a", tmpl);
	assert_int_equal(vm_config_add_disk(cfg, spec), 0);
	snprintf(spec, sizeof(spec), "%s,ro,id=b", tmpl);
	assert_int_equal(vm_config_add_disk(cfg, spec), 0);
	cfg->disks[1].is_root = true;
	assert_int_equal(vm_config_validate(cfg, 0, 0), -EINVAL);
	assert_non_null(strstr(err, "the root device must be the first disk"));
	unlink(tmpl);
	free(cfg);
}

/* A value that came in JSON (a config file, an API body) is named in messages by its field, not
 * by the command-line option that fills the same setting; one set on the command line keeps the
 * option's name, whichever came last decides. */
static void test_validation_names_json_fields(void **state)
{
	struct vm_config *cfg = new_cfg();
	char tmpl[] = "/tmp/skiff-test-json-names-XXXXXX";
	int fd = mkstemp(tmpl);

	assert_true(fd >= 0);
	close(fd);
	cfg->kernel_path = tmpl;
	assert_int_equal(config_json_machine_config(cfg,
						    B("{\"vcpu_count\": 2, "
						      "\"mem_size_mib\": 1}"),
						    false),
			 0);
	assert_int_equal(vm_config_validate(cfg, 0, 0), -EINVAL);
	assert_string_equal(err, "mem_size_mib 1: at least 16 MiB are needed");

	assert_int_equal(config_json_machine_config(cfg, B("{\"mem_size_mib\": 4096}"), true), 0);
	assert_int_equal(vm_config_validate(cfg, 0, 2048), -EINVAL);
	assert_string_equal(err, "mem_size_mib 4096 is more than this host's 2048 MiB of RAM");
	assert_int_equal(vm_config_validate(cfg, 1, 0), -EINVAL);
	assert_string_equal(err, "vcpu_count 2: this host's KVM allows at most 1 vCPUs");

	/* The command line set them last: its options' names. */
	cfg->memory_mib = 1;
	cfg->origin[VM_SETTING_MEMORY] = VM_ORIGIN_CLI;
	assert_int_equal(vm_config_validate(cfg, 0, 0), -EINVAL);
	assert_string_equal(err, "--memory 1 MiB: at least 16 MiB are needed");
	cfg->memory_mib = 64;
	cfg->origin[VM_SETTING_CPUS] = VM_ORIGIN_CLI;
	assert_int_equal(vm_config_validate(cfg, 1, 0), -EINVAL);
	assert_string_equal(err, "--cpus 2: this host's KVM allows at most 1 vCPUs");

	/* A whole document names its fields too. */
	vm_config_init_defaults(cfg);
	{
		char doc[256];

		snprintf(doc, sizeof(doc),
			 "{\"boot-source\": {\"kernel_image_path\": \"%s\"}, "
			 "\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 8}}",
			 tmpl);
		assert_int_equal(config_json_document(cfg, NULL, NULL, doc, strlen(doc)), 0);
	}
	assert_int_equal(vm_config_validate(cfg, 0, 0), -EINVAL);
	assert_string_equal(err, "mem_size_mib 8: at least 16 MiB are needed");
	assert_null(strstr(err, "--"));

	/* Nobody set it: the value is named as the default. */
	vm_config_init_defaults(cfg);
	assert_int_equal(vm_config_validate(cfg, 0, 128), -EINVAL);
	assert_string_equal(err, "256 MiB of memory (the default) is more than this host's 128 MiB "
				 "of RAM");
	unlink(tmpl);
	free(cfg);
}

/* The balloon: PUT /balloon, its dump (GET /balloon and GET /vm/config), the PATCH bodies and
 * their state rules, --balloon. */
static void test_balloon(void **state)
{
	struct vm_config *cfg = calloc(1, sizeof(*cfg));
	uint32_t amount = 0;
	uint16_t interval = 0;
	char *dump;

	assert_non_null(cfg);
	vm_config_init_defaults(cfg); /* 256 MiB */
	EXPECT_FAIL(cfg, config_json_balloon_update(cfg, B("{\"amount_mib\": 1}"), &amount), -EINVAL,
		    "no balloon device");
	assert_null(config_json_balloon_dump(cfg));
	EXPECT_FAIL(cfg,
		    config_resource_put(&balloon_resource, cfg, "", B("{\"amount_mib\": 300, "
								       "\"deflate_on_oom\": false}")),
		    -EINVAL, "amount_mib 300: the balloon cannot be larger than the guest's memory "
			     "(256 MiB)");
	EXPECT_FAIL(cfg,
		    config_resource_put(&balloon_resource, cfg, "", B("{\"amount_mib\": 1}")),
		    -EINVAL, "missing required field 'deflate_on_oom' in balloon");
	EXPECT_FAIL(cfg,
		    config_resource_put(&balloon_resource, cfg, "",
					B("{\"amount_mib\": 1, \"deflate_on_oom\": true, "
					  "\"free_page_hinting\": true}")),
		    -EINVAL, "free_page_hinting is not supported");
	EXPECT_FAIL(cfg,
		    config_resource_put(&balloon_resource, cfg, "",
					B("{\"amount_mib\": 1, \"deflate_on_oom\": true, "
					  "\"stats_polling_interval_s\": 65536}")),
		    -EINVAL, "stats_polling_interval_s");
	EXPECT_FAIL(cfg,
		    config_resource_put(&balloon_resource, cfg, "",
					B("{\"amount_mib\": -1, \"deflate_on_oom\": true}")),
		    -EINVAL, "amount_mib");
	assert_int_equal(config_resource_put(&balloon_resource, cfg, "",
					     B("{\"amount_mib\": 64, \"deflate_on_oom\": false, "
					       "\"stats_polling_interval_s\": 2, "
					       "\"free_page_reporting\": true}")),
			 0);
	assert_true(cfg->balloon.enabled);
	assert_int_equal(balloon_resource.count(cfg), 1);
	dump = config_json_balloon_dump(cfg);
	assert_string_equal(dump, "{\"amount_mib\":64,\"deflate_on_oom\":false,"
				  "\"stats_polling_interval_s\":2,\"free_page_hinting\":false,"
				  "\"free_page_reporting\":true}");
	free(dump);
	dump = config_json_vm_config_dump(cfg);
	assert_non_null(strstr(dump, "\"balloon\":{\"amount_mib\":64,"));
	free(dump);

	/* PATCH /balloon and /balloon/statistics */
	EXPECT_FAIL(cfg, config_json_balloon_update(cfg, B("{\"amount_mib\": 257}"), &amount),
		    -EINVAL, "cannot be larger than the guest's memory");
	EXPECT_FAIL(cfg,
		    config_json_balloon_update(cfg, B("{\"amount_mib\": 1, \"x\": 1}"), &amount),
		    -EINVAL, "unknown field 'x'");
	assert_int_equal(config_json_balloon_update(cfg, B("{\"amount_mib\": 256}"), &amount), 0);
	assert_int_equal(amount, 256);
	EXPECT_FAIL(cfg,
		    config_json_balloon_stats_update(cfg, B("{\"stats_polling_interval_s\": 0}"),
						     &interval),
		    -EINVAL, "cannot be disabled after the start");
	assert_int_equal(config_json_balloon_stats_update(
			     cfg, B("{\"stats_polling_interval_s\": 9}"), &interval),
			 0);
	assert_int_equal(interval, 9);
	cfg->balloon.stats_polling_interval_s = 0;
	EXPECT_FAIL(cfg,
		    config_json_balloon_stats_update(cfg, B("{\"stats_polling_interval_s\": 1}"),
						     &interval),
		    -EINVAL, "cannot be enabled after it");

	/* at the start: the memory may have shrunk since the PUT */
	cfg->memory_mib = 32;
	assert_int_equal(balloon_resource.validate(cfg), -EINVAL);
	assert_non_null(strstr(err, "balloon amount_mib 64"));

	/* --balloon */
	vm_config_init_defaults(cfg);
	assert_int_equal(balloon_resource.parse_option(
			     cfg, "amount_mib=16,deflate_on_oom=on,stats_polling_interval_s=1,"
				  "free_page_reporting=off"),
			 0);
	assert_true(cfg->balloon.enabled && cfg->balloon.deflate_on_oom);
	assert_int_equal(cfg->balloon.amount_mib, 16);
	assert_int_equal(cfg->balloon.stats_polling_interval_s, 1);
	assert_false(cfg->balloon.free_page_reporting);
	assert_int_equal(balloon_resource.parse_option(cfg, "amount_mib=x"), -EINVAL);
	assert_string_equal(err, "--balloon amount_mib=x: a number from 0 to 4294967295");
	assert_int_equal(balloon_resource.parse_option(cfg, "size=1"), -EINVAL);
	assert_non_null(strstr(err, "unknown key 'size'"));
	assert_int_equal(balloon_resource.parse_option(cfg, "deflate_on_oom=maybe"), -EINVAL);
	assert_int_equal(balloon_resource.parse_option(cfg, "stats_polling_interval_s=65536"),
			 -EINVAL);
	free(cfg);
}

/* PUT /serial: serial_out_path, or back to stdout without it; no rate limiter. */
static void test_serial(void **state)
{
	struct vm_config *cfg = calloc(1, sizeof(*cfg));

	assert_non_null(cfg);
	vm_config_init_defaults(cfg);
	assert_int_equal(config_resource_put(&serial_resource, cfg, "",
					     B("{\"serial_out_path\": \"/tmp/serial.out\"}")),
			 0);
	assert_string_equal(cfg->serial_out_path, "/tmp/serial.out");
	EXPECT_FAIL(cfg,
		    config_resource_put(&serial_resource, cfg, "",
					B("{\"serial_out_path\": \"/x\", \"rate_limiter\": "
					  "{\"size\": 1, \"refill_time\": 1}}")),
		    -EINVAL, "rate_limiter");
	EXPECT_FAIL(cfg, config_resource_put(&serial_resource, cfg, "", B("{\"path\": \"/x\"}")),
		    -EINVAL, "unknown field 'path'");
	assert_int_equal(config_resource_put(&serial_resource, cfg, "", B("{}")), 0);
	assert_string_equal(cfg->serial_out_path, "");
	assert_int_equal(serial_resource.parse_option(cfg, "/tmp/x"), 0);
	assert_string_equal(cfg->serial_out_path, "/tmp/x");
	free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_boot_source),
	    cmocka_unit_test(test_copy_and_cli_strings),
	    cmocka_unit_test(test_machine_config),
	    cmocka_unit_test(test_machine_config_dump),
	    cmocka_unit_test(test_machine_config_enable_pci),
	    cmocka_unit_test(test_machine_config_mem_mergeable),
	    cmocka_unit_test(test_drives),
	    cmocka_unit_test(test_root_drive),
	    cmocka_unit_test(test_drive_table_full),
	    cmocka_unit_test(test_drive_update),
	    cmocka_unit_test(test_network_interfaces),
	    cmocka_unit_test(test_network_interface_vhost),
	    cmocka_unit_test(test_entropy),
	    cmocka_unit_test(test_vsock),
	    cmocka_unit_test(test_fs),
	    cmocka_unit_test(test_logger_metrics),
	    cmocka_unit_test(test_actions_and_vm_state),
	    cmocka_unit_test(test_document),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_validate_root_first),
	    cmocka_unit_test(test_validation_names_json_fields),
	    cmocka_unit_test(test_balloon),
	    cmocka_unit_test(test_serial),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
