/* The bodies of Firecracker's snapshot requests, read strictly (config/json_fields.h):
 *
 *   PUT /snapshot/create {"snapshot_type": "Full" | "Diff", "snapshot_path", "mem_file_path"}
 *   PUT /snapshot/load   {"snapshot_path", "mem_backend": {"backend_type": "File" | "Uffd",
 *                         "backend_path"} (or the older "mem_file_path"), "track_dirty_pages",
 *                         "resume_vm", "network_overrides": [{"iface_id", "host_dev_name"}],
 *                         and the deprecated "enable_diff_snapshots"}
 *
 * They are requests, not part of the VM's description: they fill the structs below. Each
 * parser returns 0, or -EINVAL with the reason as the thread's last error. */
#ifndef SKIFF_CONFIG_SNAPSHOT_H
#define SKIFF_CONFIG_SNAPSHOT_H

#include "config/vm_config.h"

#include <stdbool.h>
#include <stddef.h>

struct snapshot_create_request {
	bool diff; /* "Diff": only the pages written since the last snapshot */
	char snapshot_path[VM_CONFIG_MAX_PATH];
	char mem_path[VM_CONFIG_MAX_PATH];
};

struct snapshot_net_override {
	char iface_id[VM_CONFIG_MAX_ID + 1];
	char host_dev_name[16]; /* IFNAMSIZ */
};

struct snapshot_load_request {
	char snapshot_path[VM_CONFIG_MAX_PATH];
	char mem_path[VM_CONFIG_MAX_PATH];
	bool uffd; /* "Uffd": backend_path is a page-fault handler's socket */
	bool resume;
	bool track_dirty_pages;
	bool clock_realtime; /* the guest clock moves on by the real time since the snapshot */
	int nr_overrides;
	struct snapshot_net_override overrides[VM_CONFIG_MAX_NETS];
};

/* The "network_overrides" array of obj (absent: none) into out (VM_CONFIG_MAX_NETS of them),
 * *nr set to how many; what names the request in the reasons. Also used by
 * PUT /migration/receive (config/migration.h). */
struct json_t;
int config_json_net_overrides(const char *what, struct json_t *obj, struct snapshot_net_override *out,
			      int *nr);
/* The command line's --net-override ID=TAP, added to out[*nr] (at most VM_CONFIG_MAX_NETS,
 * each iface_id once). 0, or -EINVAL with the reason as the last error. */
int config_parse_net_override(const char *arg, struct snapshot_net_override *out, int *nr);
/* Renames the taps of the interfaces the overrides name; an iface_id that cfg does not have is
 * refused: "network_overrides: SOURCE has no interface 'ID'" as the thread's last error,
 * -EINVAL. */
int config_apply_net_overrides(struct vm_config *cfg, const struct snapshot_net_override *ov,
			       int nr, const char *source);

int config_json_snapshot_create(const char *body, size_t len, struct snapshot_create_request *out);
int config_json_snapshot_load(const char *body, size_t len, struct snapshot_load_request *out);

#endif
