/* The table of config resources (config/resource.h): every descriptor carries what the layers
 * above it rely on, paths find their resource, and the document and the dump follow the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/log.h"
#include "config/config_json.h"
#include "config/resource.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A string literal as (body, length). */
#define B(s) s, sizeof(s) - 1

static void test_descriptors_are_complete(void **state)
{
	int devices = 0;

	for (const struct config_resource *const *r = config_resources; *r; r++) {
		/* A document section or an option: a resource nobody can reach is a mistake. */
		assert_true((*r)->name || (*r)->option);
		if ((*r)->shape == CONFIG_OBJECT || (*r)->shape == CONFIG_ARRAY) {
			assert_non_null((*r)->apply);
			assert_non_null((*r)->object_name);
		}
		if ((*r)->api_path) {
			assert_non_null((*r)->apply);
			assert_int_equal((*r)->api_path[0], '/');
		}
		if ((*r)->option) {
			assert_non_null((*r)->parse_option);
			assert_non_null((*r)->option_help);
			assert_int_equal((*r)->option_help[strlen((*r)->option_help) - 1], '\n');
		}
		if ((*r)->count) {
			assert_non_null((*r)->option_label);
			devices++;
		}
		/* Names are unique: the document and the dump look resources up by name. */
		if ((*r)->name)
			assert_ptr_equal(config_resource_named((*r)->name), *r);
	}
	assert_int_equal(devices, 7); /* drives, network interfaces, entropy, vsock, fs, balloon, console */
}

static void test_paths(void **state)
{
	const char *id = NULL;

	assert_ptr_equal(config_resource_at_path("/drives/rootfs", &id), &drive_resource);
	assert_string_equal(id, "rootfs");
	assert_ptr_equal(config_resource_at_path("/network-interfaces/eth0", &id), &net_resource);
	assert_string_equal(id, "eth0");
	assert_ptr_equal(config_resource_at_path("/entropy", &id), &entropy_resource);
	assert_string_equal(id, "");
	assert_ptr_equal(config_resource_at_path("/boot-source", &id), &boot_source_resource);
	assert_ptr_equal(config_resource_at_path("/machine-config", &id), &machine_resource);
	assert_null(config_resource_at_path("/drives/", &id));
	assert_null(config_resource_at_path("/drives/a/b", &id));
	assert_null(config_resource_at_path("/drives", &id));
	assert_null(config_resource_at_path("/entropy/x", &id));
	/* The logger and metrics act on the instance: the API routes them itself. */
	assert_null(config_resource_at_path("/logger", &id));
	assert_null(config_resource_at_path("/metrics", &id));
}

static void test_put_through_descriptor(void **state)
{
	struct vm_config *cfg = malloc(sizeof(*cfg));

	assert_non_null(cfg);
	vm_config_init_defaults(cfg);
	assert_int_equal(config_resource_put(&entropy_resource, cfg, "", B("{}")), 0);
	assert_true(cfg->rng);
	assert_int_equal(entropy_resource.count(cfg), 1);
	log_clear_last_error();
	assert_int_equal(config_resource_put(&drive_resource, cfg, "a",
					     B("{\"drive_id\": \"b\", \"path_on_host\": \"/x\", "
					       "\"is_root_device\": false}")),
			 -EINVAL);
	assert_non_null(strstr(log_last_error(), "does not match 'a' in the path"));
	assert_int_equal(drive_resource.count(cfg), 0);
	free(cfg);
}

/* A device kind without a JSON section (the console) is not a key of a document. */
static void test_option_only_kind_is_not_a_section(void **state)
{
	struct vm_config *cfg = malloc(sizeof(*cfg));

	assert_non_null(cfg);
	vm_config_init_defaults(cfg);
	assert_int_equal(config_json_document(cfg, NULL, NULL,
					      B("{\"boot-source\": {\"kernel_image_path\": "
						"\"/k\"}, \"console\": {}}")),
			 -EINVAL);
	assert_non_null(strstr(log_last_error(), "unknown field 'console' in the configuration"));
	assert_int_equal(console_resource.parse_option(cfg, "virtio"), 0);
	assert_int_equal(console_resource.count(cfg), 1);
	assert_int_equal(console_resource.parse_option(cfg, "hvc"), -EINVAL);
	assert_string_equal(log_last_error(), "--console is serial or virtio, not 'hvc'");
	free(cfg);
}

/* Each device kind's option label is in the message, in table order. */
static void test_kernel_needed_names_every_kind(void **state)
{
	struct vm_config cfg;

	vm_config_init_defaults(&cfg);
	cfg.console = CONSOLE_VIRTIO;
	assert_int_equal(vm_config_validate(&cfg, 0, 0), -EINVAL);
	assert_string_equal(
	    log_last_error(),
	    "virtio devices (--disk, --net, --rng, --vsock, --fs, --balloon, --console virtio) need "
	    "--kernel or --raw");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_descriptors_are_complete),
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_put_through_descriptor),
	    cmocka_unit_test(test_option_only_kind_is_not_a_section),
	    cmocka_unit_test(test_kernel_needed_names_every_kind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
