/* Where the serial console's output goes: PUT /serial ({"serial_out_path", "rate_limiter"},
 * Firecracker's SerialDevice) before the start, or --serial-out PATH; without either it is
 * skiff's stdout. The file is opened (created 0600, appended to; a FIFO without waiting for a
 * reader) when the VM is built (vmm/vm.c). Firecracker's configuration file has no such section,
 * so neither has skiff's. */
#include "config/json_fields.h"
#include "config/resource.h"
#include "base/log.h"

#include <errno.h>
#include <string.h>

static int set_path(struct vm_config *cfg, const char *path, const char *what)
{
	if (!path[0])
		return log_set_error(-EINVAL, "%s: the path is empty", what);
	if (config_copy_field(cfg->serial_out_path, sizeof(cfg->serial_out_path), path))
		return log_set_error(-ENAMETOOLONG, "%s: the path is too long", what);
	return 0;
}

static int apply(const struct config_target *t, const char *path_id, json_t *obj, const char *what)
{
	static const char *const known[] = {"serial_out_path", "rate_limiter", NULL};
	char path[VM_CONFIG_MAX_PATH];
	bool present;
	int ret;

	if ((ret = cj_check_fields(what, obj, known)) ||
	    (ret = cj_unsupported(what, obj, "rate_limiter",
				  "skiff does not rate-limit the serial console")) ||
	    (ret = cj_string(what, obj, "serial_out_path", false, path, sizeof(path), &present)))
		return ret;
	if (!present) {
		t->vm->serial_out_path[0] = '\0'; /* back to stdout */
		return 0;
	}
	return set_path(t->vm, path, "serial_out_path");
}

static int parse_option(struct vm_config *cfg, const char *arg)
{
	return set_path(cfg, arg, "--serial-out");
}

const struct config_resource serial_resource = {
    .object_name = "serial",
    .api_path = "/serial",
    .apply = apply,
    .option = "serial-out",
    .option_arg = true,
    .option_help = "  --serial-out PATH      the serial console's output to a file or FIFO, not stdout\n",
    .parse_option = parse_option,
};
