/* The "boot-source" section and PUT /boot-source: {"kernel_image_path", "initrd_path",
 * "boot_args"}. The command line's --kernel, --initrd and --cmdline (main.c) fill the same
 * fields; they are not a device, so they have no option here. */
#include "config/json_fields.h"
#include "config/resource.h"
#include "base/log.h"

#include <errno.h>
#include <stdlib.h>

static int apply(const struct config_target *t, const char *path_id, json_t *obj, const char *what)
{
	static const char *const known[] = {"kernel_image_path", "initrd_path", "boot_args", NULL};
	/* 12 KiB: on the heap rather than the API thread's stack. */
	char *kernel = malloc(2 * VM_CONFIG_MAX_PATH + VM_CONFIG_MAX_CMDLINE);
	char *initrd = kernel + VM_CONFIG_MAX_PATH, *args = initrd + VM_CONFIG_MAX_PATH;
	bool has_kernel, has_initrd, has_args;
	int ret;

	if (!kernel)
		return log_set_error(-EINVAL, "%s: out of memory", what);
	/* boot_args: vm_config_validate's limit, which leaves room for what
	 * vm_config_kernel_cmdline() appends. */
	if (!(ret = cj_check_fields(what, obj, known)) &&
	    !(ret = cj_string(what, obj, "kernel_image_path", true, kernel, VM_CONFIG_MAX_PATH,
			      &has_kernel)) &&
	    !(ret = cj_string(what, obj, "initrd_path", false, initrd, VM_CONFIG_MAX_PATH,
			      &has_initrd)) &&
	    !(ret = cj_string(what, obj, "boot_args", false, args, VM_CONFIG_MAX_CMDLINE - 32,
			      &has_args)))
		ret = vm_config_set_boot_source(t->vm, kernel, has_initrd ? initrd : NULL,
						has_args ? args : NULL);
	free(kernel);
	return ret;
}

static json_t *dump(const struct vm_config *cfg)
{
	if (!cfg->kernel_path)
		return json_null();
	return json_pack("{s:s, s:s?, s:s?}", "kernel_image_path", cfg->kernel_path, "initrd_path",
			 cfg->initrd_path, "boot_args", cfg->cmdline);
}

const struct config_resource boot_source_resource = {
    .name = "boot-source",
    .shape = CONFIG_OBJECT,
    .required = true,
    .in_full_config = true,
    .object_name = "boot-source",
    .api_path = "/boot-source",
    .apply = apply,
    .dump = dump,
};

int config_json_boot_source(struct vm_config *cfg, const char *body, size_t len)
{
	return config_resource_put(&boot_source_resource, cfg, NULL, body, len);
}
