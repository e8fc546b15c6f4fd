/* Firecracker's JSON documents, read into a struct vm_config and written back out. The same
 * objects arrive as API request bodies (PUT /boot-source, /machine-config, /drives/{id}, ...)
 * and as the sections of a --config-file document, so both go through the same code: each
 * section is a resource of config/resource.h, read and written by its own file
 * (config/boot_source.c, machine.c, drive.c, net.c, entropy.c, logger.c, metrics.c); this
 * module holds the whole document, the whole dump and the bodies that are not a resource.
 *
 * Field names, types and meanings follow Firecracker's API (its swagger definition). Reading is
 * strict, as Firecracker's: unknown fields, wrong JSON types, out-of-range values and duplicate
 * keys are errors. Every function returns 0, or -EINVAL (-ENOSPC when a table is full) with a
 * one-line reason as the calling thread's last error (log_set_error, base/log.h), which the API
 * sends back as the fault_message; on error the config is unchanged. Bodies need not be
 * NUL-terminated. JSON parsing is jansson's. */
#ifndef SKIFF_CONFIG_JSON_H
#define SKIFF_CONFIG_JSON_H

#include "config/vm_config.h"

#include <stdbool.h>
#include <stddef.h>

/* PUT /logger and the "logger" section: where logs go and how much of them. */
struct logger_config {
	char log_path[4096]; /* empty: stay on stderr */
	bool has_level;
	int level; /* enum log_level, when has_level */
	bool show_level;
	bool show_log_origin;
};

/* PUT /metrics and the "metrics" section. */
struct metrics_config {
	char metrics_path[4096];
};

/* PUT /actions */
enum api_action {
	API_ACTION_INSTANCE_START,
	API_ACTION_SEND_CTRL_ALT_DEL,
	API_ACTION_FLUSH_METRICS,
};

/* PATCH /drives/{id} after boot: a new backing file. */
struct drive_update {
	char drive_id[VM_CONFIG_MAX_ID + 1];
	char path_on_host[4096]; /* empty: not given */
	/* The drive's limiter with the body's buckets merged in; rate_limiter_given says which
	 * buckets the body named (1 bandwidth, 2 ops; 0: no change). */
	struct rate_limiter_config rate_limiter;
	unsigned rate_limiter_given;
};

/* PUT /boot-source: {"kernel_image_path", "initrd_path", "boot_args"}. */
int config_json_boot_source(struct vm_config *cfg, const char *body, size_t len);

/* PUT /machine-config (vcpu_count and mem_size_mib required) and PATCH /machine-config (any
 * subset): {"vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "cpu_template",
 * "huge_pages"}. Fields skiff cannot honour (smt true, a CPU template other than "None", huge
 * pages) are refused by name. */
int config_json_machine_config(struct vm_config *cfg, const char *body, size_t len, bool patch);

/* PUT /drives/{id}: {"drive_id", "path_on_host", "is_root_device", "is_read_only", "partuuid",
 * "cache_type", "io_engine", "rate_limiter"}. `path_id` (from the URL) must equal drive_id (NULL:
 * not checked). A known id replaces that drive; a second root device is refused; the root device
 * becomes disks[0]. "socket" (vhost-user) and a rate_limiter other than null are refused. */
int config_json_drive(struct vm_config *cfg, const char *path_id, const char *body, size_t len);

/* PATCH /drives/{id}: {"drive_id", "path_on_host", "rate_limiter"}; the id must name a drive of
 * `cfg`. */
int config_json_drive_update(const struct vm_config *cfg, const char *path_id, const char *body,
			     size_t len, struct drive_update *out);

/* PUT /network-interfaces/{id}: {"iface_id", "host_dev_name", "guest_mac", "rx_rate_limiter",
 * "tx_rate_limiter"}. A known id replaces that interface. */
int config_json_network_interface(struct vm_config *cfg, const char *path_id, const char *body,
				  size_t len);

/* PATCH /network-interfaces/{id} after boot: {"iface_id", "rx_rate_limiter",
 * "tx_rate_limiter"}; the id must name an interface of cfg. The interface's limiters with the
 * body's buckets merged in; *_given say which buckets the body named (1 bandwidth, 2 ops). */
struct net_update {
	char iface_id[VM_CONFIG_MAX_ID + 1];
	struct rate_limiter_config rx_rate_limiter, tx_rate_limiter;
	unsigned rx_given, tx_given;
};
int config_json_network_interface_update(const struct vm_config *cfg, const char *path_id,
					 const char *body, size_t len, struct net_update *out);

/* PUT /entropy: {"rate_limiter"}: a virtio-rng device. */
int config_json_entropy(struct vm_config *cfg, const char *body, size_t len);

/* PATCH /balloon: {"amount_mib"}, at most the guest's memory, into *amount_mib; PATCH
 * /balloon/statistics: {"stats_polling_interval_s"}, which may change the interval but not turn
 * the statistics on or off (as Firecracker). Both need a configured balloon. GET /balloon: the
 * balloon as PUT /balloon takes it (malloc'd; NULL when out of memory or none is configured). */
int config_json_balloon_update(const struct vm_config *cfg, const char *body, size_t len,
			       uint32_t *amount_mib);
int config_json_balloon_stats_update(const struct vm_config *cfg, const char *body, size_t len,
				     uint16_t *interval_s);
char *config_json_balloon_dump(const struct vm_config *cfg);

int config_json_logger(const char *body, size_t len, struct logger_config *out);
int config_json_metrics(const char *body, size_t len, struct metrics_config *out);

/* PUT /actions: {"action_type": "InstanceStart" | "SendCtrlAltDel" | "FlushMetrics"}. */
int config_json_action(const char *body, size_t len, enum api_action *out);

/* PATCH /vm: {"state": "Paused" | "Resumed"}; *pause is true for Paused. */
int config_json_vm_state(const char *body, size_t len, bool *pause);

/* A whole --config-file document: one key per resource of config/resource.h ("boot-source"
 * required, the others optional). `logger` and `metrics` may be NULL when the caller takes
 * neither. The sections are applied as the API calls would be (machine-config as a PUT; drives
 * and interfaces one by one, by id), onto `cfg` as it is. Firecracker's "balloon", "vsock",
 * "mmds-config", "cpu-config" and "memory-hotplug" are accepted only as null ("pmem" also as
 * []). On success an absent logger or metrics section leaves a zeroed struct (no change); such a
 * section when its pointer is NULL is an error. */
int config_json_document(struct vm_config *cfg, struct logger_config *logger,
			 struct metrics_config *metrics, const char *doc, size_t len);

/* The answers of GET /machine-config and GET /vm/config (Firecracker's FullVmConfiguration), as
 * malloc'd JSON text; NULL when out of memory. */
char *config_json_machine_config_dump(const struct vm_config *cfg);
char *config_json_vm_config_dump(const struct vm_config *cfg);

#endif
