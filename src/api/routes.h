/* Firecracker's API endpoints on a skiff instance: the request handler the API server calls. The
 * PUT of a config resource (boot source, machine, drives, interfaces, entropy: every descriptor
 * of config/resource.h with an api_path) goes to that resource; one table maps the other methods
 * and paths to what they do. Bodies are read by src/config/ and acted on through vmm/instance.h
 * under the instance's lock; a refusal's fault_message is the reason the callee set as the
 * thread's last error (base/log.h).
 *
 *   GET   /                          instance info: id, state, versions
 *   PUT   /boot-source               kernel, initrd, command line            (before start)
 *   GET   /machine-config            vCPUs and memory
 *   PUT   /machine-config, PATCH     vCPUs and memory                        (before start)
 *   PUT   /drives/{id}               a virtio-blk disk                       (before start)
 *   PATCH /drives/{id}               a new backing file                      (after start)
 *   PUT   /network-interfaces/{id}   a virtio-net interface on a tap         (before start)
 *   PUT   /entropy                   a virtio-rng device                     (before start)
 *   PUT   /logger, PUT /metrics      where logs and metrics go               (before start)
 *   PUT   /actions                   InstanceStart, SendCtrlAltDel, FlushMetrics
 *   PATCH /vm                        {"state": "Paused" | "Resumed"}         (after start)
 *   GET   /vm/config                 the whole configuration
 *
 * Success is 204 (200 with a JSON body for GET); a bad request is 400 with
 * {"fault_message": "..."}, as Firecracker answers. */
#ifndef SKIFF_API_ROUTES_H
#define SKIFF_API_ROUTES_H

#include "api/http.h"

/* `ctx` is the struct instance. */
void api_handle_request(void *ctx, const struct http_request *req, struct http_response *resp);

#endif
