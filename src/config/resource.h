/* One resource of a VM description, described once: a section of Firecracker's configuration
 * ("boot-source", "drives", "entropy", ...) or a device kind only the command line offers
 * ("console"). A descriptor carries everything the layers above need to know about it, so that
 * none of them lists resources by hand:
 *
 *   - its JSON section: how a --config-file document holds it (one object, an array of objects
 *     applied one by one, or a Firecracker section skiff has nothing for and accepts only as
 *     null), the API path a PUT of one object goes to, how one object is read into the
 *     struct vm_config (apply) and how it is written back in GET /vm/config (dump);
 *   - for a device kind, its command-line option (--disk PATH[,ro][,id=NAME]: parse_option and
 *     the lines of skiff --help), how many devices the config asks for (count) and the checks
 *     vm_config_validate() makes of them (validate).
 *
 * Each resource is one file, src/config/<resource>.c, defining its descriptor; config_resources[]
 * (resource.c) lists them in the order they are applied, offered on the command line and
 * checked. Creating a device kind's devices on a VM is not here: config is below the VM, so the
 * creation table is on the VM's side (src/vmm/virtio_devices.c: one row per device kind, pointing at
 * the descriptor below). Arrows point one way: api/, main.c and vmm/virtio_devices.c include this
 * header; nothing in src/config/ includes anything of theirs.
 *
 * Errors: every function returns 0 or a negative errno with the reason as the calling thread's
 * last error (log_set_error, base/log.h). */
#ifndef SKIFF_CONFIG_RESOURCE_H
#define SKIFF_CONFIG_RESOURCE_H

#include "config/config_json.h"
#include "config/vm_config.h"

#include <jansson.h>
#include <stdbool.h>

/* What applying a section may change: the VM description, and where logs and metrics go
 * (NULL: the caller takes no logger or metrics section). */
struct config_target {
	struct vm_config *vm;
	struct logger_config *logger;
	struct metrics_config *metrics;
	bool check_files; /* an API PUT: the files it names are checked at once */
};

enum config_shape {
	CONFIG_NONE,	    /* not in a document (a device only the command line offers) */
	CONFIG_OBJECT,	    /* "entropy": {...} */
	CONFIG_ARRAY,	    /* "drives": [{...}, ...], each applied as a PUT of its id would be */
	CONFIG_UNSUPPORTED, /* a Firecracker section skiff has nothing for: null only */
};

struct config_resource {
	/* The document's section and GET /vm/config's key: "drives". */
	const char *name;
	enum config_shape shape;
	bool required;	     /* a document without it is refused (boot-source) */
	bool empty_array_ok; /* CONFIG_UNSUPPORTED that also takes [] (Firecracker's pmem) */
	bool in_full_config; /* a key of GET /vm/config (Firecracker's FullVmConfiguration) */
	/* One object, as a PUT body: "drive" in messages; PUT at api_path ("/drives/": a trailing
	 * '/' takes the id, which apply gets as path_id; NULL: no PUT of its own). */
	const char *object_name;
	const char *api_path;
	int (*apply)(const struct config_target *t, const char *path_id, json_t *obj,
		     const char *what);
	json_t *(*dump)(const struct vm_config *cfg); /* a new reference, NULL when out of memory;
						       * no dump: null */

	/* Device kinds. option: "disk" for --disk; option_arg: it takes a value; option_help: its
	 * lines of skiff --help; option_label: how "virtio devices (...) need --kernel" names it.
	 */
	const char *option;
	bool option_arg;
	bool option_arg_optional; /* --rng or --rng=VALUE (parse_option gets NULL without one) */
	const char *option_help;
	const char *option_label;
	int (*parse_option)(struct vm_config *cfg, const char *arg);
	int (*count)(const struct vm_config *cfg); /* NULL: not a device kind */
	int (*validate)(const struct vm_config *cfg);
};

/* Every resource, NULL-terminated, in order: applied in a document, offered and shown by the
 * command line, checked by vm_config_validate(). */
extern const struct config_resource *const config_resources[];

/* The descriptors, defined by their files. */
extern const struct config_resource boot_source_resource, machine_resource, drive_resource,
    net_resource, entropy_resource, vsock_resource, balloon_resource, console_resource,
    serial_resource, logger_resource, metrics_resource, debug_exit_resource, gdb_resource;
extern const struct config_resource fs_resource;

/* Matches an API path against a pattern: "/exact" or "/prefix/" for "/prefix/{id}". Returns
 * the id (non-empty, no further '/'), "" for an exact match, or NULL when the path does not
 * match. The API's routes use it too. */
const char *config_match_path(const char *pattern, const char *path);

/* The resource whose PUT path matches `path` ("/drives/rootfs"), with *path_id set to the id
 * ("rootfs"; "" for a path without one); NULL when none. */
const struct config_resource *config_resource_at_path(const char *path, const char **path_id);

/* The resource named `name` ("drives"), NULL when none. */
const struct config_resource *config_resource_named(const char *name);

/* A PUT body for `r` onto `cfg` (unchanged on error). */
int config_resource_put(const struct config_resource *r, struct vm_config *cfg, const char *path_id,
			const char *body, size_t len);

/* The same for the API: the files the object names are also checked at once (a drive's image
 * exists, is a regular file or a block device, ...), as Firecracker does at PUT time. */
int config_resource_put_checked(const struct config_resource *r, struct vm_config *cfg,
				const char *path_id, const char *body, size_t len);

/* For the resource files: splits "a,b,c" in place into at most `max` fields (-1: more);
 * copies src into dst[size] (-1: too long); checks a device's id (vm_config_id_valid) and says
 * why not ("--disk id=...: ..."). */
int config_split_fields(char *buf, char **fields, int max);
int config_copy_field(char *dst, size_t size, const char *src);
int config_check_id(const char *what, const char *id);

#endif
