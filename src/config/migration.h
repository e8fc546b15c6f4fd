/* The bodies of the live migration requests (vmm/migration.h), read strictly
 * (config/json_fields.h):
 *
 *   PUT /migration/send    {"destination_url": "unix:/path" | "tcp:HOST:PORT", "downtime_ms"}
 *   PUT /migration/receive {"receiver_url": "unix:/path" | "tcp:HOST:PORT",
 *                           "network_overrides": [{"iface_id", "host_dev_name"}]}
 *
 * downtime_ms (1 to 60000, default 300) is how long the VM may stay paused for the last copy.
 * network_overrides rename the arriving VM's taps, as for PUT /snapshot/load; which interfaces
 * the VM has is known only once the source has sent its description, so an unknown iface_id
 * fails the migration then (before any memory moves), not the request.
 * Requests, not part of the VM's description. Each parser returns 0, or -EINVAL with the
 * reason as the thread's last error. */
#ifndef SKIFF_CONFIG_MIGRATION_H
#define SKIFF_CONFIG_MIGRATION_H

#include "config/snapshot.h"

#include <stddef.h>
#include <stdint.h>

#define MIGRATION_DEFAULT_DOWNTIME_MS 300

struct migration_request {
	char url[128];
	uint32_t downtime_ms;
	int nr_overrides; /* receive */
	struct snapshot_net_override overrides[VM_CONFIG_MAX_NETS];
};

int config_json_migration_send(const char *body, size_t len, struct migration_request *out);
int config_json_migration_receive(const char *body, size_t len, struct migration_request *out);

#endif
