#include "config/resource.h"
#include "config/json_fields.h"
#include "base/log.h"

#include <errno.h>
#include <string.h>

/* Firecracker's sections skiff has no device for: accepted only as null. */
#define UNSUPPORTED(n, full)                                                                       \
	{                                                                                          \
		.name = (n), .shape = CONFIG_UNSUPPORTED, .in_full_config = (full)                 \
	}

static const struct config_resource mmds = UNSUPPORTED("mmds-config", true);
static const struct config_resource cpu_config = UNSUPPORTED("cpu-config", true);
static const struct config_resource memory_hotplug = UNSUPPORTED("memory-hotplug", false);
static const struct config_resource pmem = {
    .name = "pmem",
    .shape = CONFIG_UNSUPPORTED,
    .empty_array_ok = true,
};

const struct config_resource *const config_resources[] = {
    &boot_source_resource,
    &machine_resource,
    &drive_resource,
    &net_resource,
    &entropy_resource,
    &vsock_resource,
    &fs_resource,
    &balloon_resource,
    &console_resource,
    &serial_resource,
    &debug_exit_resource,
    &logger_resource,
    &metrics_resource,
    &gdb_resource,
    &mmds,
    &cpu_config,
    &memory_hotplug,
    &pmem,
    NULL,
};

const char *config_match_path(const char *pattern, const char *path)
{
	size_t n = strlen(pattern);

	if (pattern[n - 1] != '/' || n == 1)
		return strcmp(pattern, path) == 0 ? "" : NULL;
	if (strncmp(pattern, path, n) != 0 || !path[n] || strchr(path + n, '/'))
		return NULL;
	return path + n;
}

const struct config_resource *config_resource_at_path(const char *path, const char **path_id)
{
	for (const struct config_resource *const *r = config_resources; *r; r++) {
		const char *id = (*r)->api_path ? config_match_path((*r)->api_path, path) : NULL;

		if (id) {
			*path_id = id;
			return *r;
		}
	}
	return NULL;
}

const struct config_resource *config_resource_named(const char *name)
{
	for (const struct config_resource *const *r = config_resources; *r; r++)
		if ((*r)->name && strcmp((*r)->name, name) == 0)
			return *r;
	return NULL;
}

static int put(const struct config_resource *r, struct vm_config *cfg, const char *path_id,
	       const char *body, size_t len, bool check_files)
{
	struct config_target t = {.vm = cfg, .check_files = check_files};
	json_t *obj = cj_parse_object(body, len, r->object_name);
	int ret;

	if (!obj)
		return -EINVAL;
	ret = r->apply(&t, path_id, obj, r->object_name);
	json_decref(obj);
	return ret;
}

int config_resource_put(const struct config_resource *r, struct vm_config *cfg, const char *path_id,
			const char *body, size_t len)
{
	return put(r, cfg, path_id, body, len, false);
}

int config_resource_put_checked(const struct config_resource *r, struct vm_config *cfg,
				const char *path_id, const char *body, size_t len)
{
	return put(r, cfg, path_id, body, len, true);
}

/* --- helpers of the resource files --- */

int config_split_fields(char *buf, char **fields, int max)
{
	int n = 0;

	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n == max)
			return -1;
		fields[n++] = tok;
	}
	return n;
}

int config_copy_field(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

int config_check_id(const char *what, const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > VM_CONFIG_MAX_ID)
		return log_set_error(-EINVAL, "%s id=%s: an id is 1 to %d characters", what, id,
				     VM_CONFIG_MAX_ID);
	if (!vm_config_id_valid(id))
		return log_set_error(-EINVAL, "%s id=%s: use letters, digits, '_' and '-'", what,
				     id);
	return 0;
}
