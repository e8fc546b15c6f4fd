#include "api/routes.h"
#include "config/config_json.h"
#include "config/migration.h"
#include "config/resource.h"
#include "version.h"
#include "vmm/instance.h"
#include "base/device.h"
#include "base/log.h"
#include "vmm/metrics.h"
#include "vmm/migration.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAULT_LEN 512

/* What a handler sees: the request, the id from a /{resource}/{id} path, and where to put an
 * error. Returns the status; a 4xx takes `fault` as its message. */
struct call {
	struct instance *in;
	const struct http_request *req;
	const char *path_id;
	const struct config_resource *resource; /* for put_resource */
	char fault[FAULT_LEN];
	char *body; /* a 200's JSON body, malloc'd */
};

enum when { ANY_TIME, BEFORE_START, AFTER_START };

struct route {
	enum http_method method;
	const char *path; /* a trailing '/' takes an id: "/drives/" matches /drives/{id} */
	enum when when;
	int (*handle)(struct call *c);
};

static int fail(struct call *c, const char *fmt, const char *arg)
{
	snprintf(c->fault, sizeof(c->fault), fmt, arg);
	return 400;
}

/* 204 for 0; for a negative errno, 400 with the reason the callee set as this thread's last
 * error (base/log.h: the one way a reason reaches a fault_message). */
static int status_of(struct call *c, int ret)
{
	if (!ret)
		return 204;
	snprintf(c->fault, sizeof(c->fault), "%s",
		 log_last_error()[0] ? log_last_error() : strerror(-ret));
	return 400;
}

static const char *state_name(struct instance *in)
{
	switch (in->state) {
	case INSTANCE_NOT_STARTED:
		return "Not started";
	case INSTANCE_RUNNING:
		return vm_is_paused(&in->vm) ? "Paused" : "Running";
	default:
		return "Stopped";
	}
}

static int reply_json(struct call *c, json_t *obj)
{
	if (!obj)
		return fail(c, "%s", "out of memory");
	/* Reals (milliseconds, MiB/s) to 9 significant digits: 76.79056, not 76.790559999999999. */
	c->body = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9));
	json_decref(obj);
	return c->body ? 200 : fail(c, "%s", "out of memory");
}

static int get_instance_info(struct call *c)
{
	return reply_json(c, json_pack("{s:s, s:s, s:s, s:s}", "id", c->in->id, "state",
				       state_name(c->in), "vmm_version", SKIFF_VERSION, "app_name",
				       "skiff"));
}

static int get_version(struct call *c)
{
	return reply_json(c, json_pack("{s:s}", "firecracker_version", SKIFF_VERSION));
}

static int get_machine_config(struct call *c)
{
	c->body = config_json_machine_config_dump(&c->in->cfg);
	return c->body ? 200 : fail(c, "%s", "out of memory");
}

static int get_vm_config(struct call *c)
{
	c->body = config_json_vm_config_dump(&c->in->cfg);
	return c->body ? 200 : fail(c, "%s", "out of memory");
}

/* PUT of one object of a config resource (/boot-source, /drives/{id}, /entropy, ...: the
 * resources of config/resource.h that have an api_path). */
static int put_resource(struct call *c)
{
	return status_of(c, config_resource_put_checked(c->resource, &c->in->cfg, c->path_id,
							c->req->body, c->req->body_len));
}

static int patch_machine_config(struct call *c)
{
	return status_of(c, config_json_machine_config(&c->in->cfg, c->req->body,
						       c->req->body_len, true));
}

static int put_logger(struct call *c)
{
	struct logger_config lc;
	int ret = config_json_logger(c->req->body, c->req->body_len, &lc);

	return status_of(c, ret ? ret : instance_set_logger(c->in, &lc));
}

static int put_metrics(struct call *c)
{
	struct metrics_config mc;
	int ret = config_json_metrics(c->req->body, c->req->body_len, &mc);

	return status_of(c, ret ? ret : instance_set_metrics(c->in, mc.metrics_path));
}

/* A new backing file or rate limiter for a running disk. */
static int patch_drive(struct call *c)
{
	struct drive_update *up = calloc(1, sizeof(*up));
	struct vm_device *dev;
	int ret;

	if (!up)
		return fail(c, "%s", "out of memory");
	ret = config_json_drive_update(&c->in->cfg, c->path_id, c->req->body, c->req->body_len,
				       up);
	if (ret) {
		ret = status_of(c, ret);
		goto out;
	}
	ret = 204;
	if (!up->path_on_host[0] && !up->rate_limiter_given)
		goto out; /* nothing to change */
	dev = vm_device_find(&c->in->vm.devices, VM_DEVICE_VIRTIO_BLK, up->drive_id);
	if (!dev) {
		ret = fail(c, "no drive '%s' in the running microVM", up->drive_id);
		goto out;
	}
	ret = vm_device_update(dev, &(struct vm_device_update){
					.backing_path = up->path_on_host[0] ? up->path_on_host : NULL,
					.rate_limiter = {&up->rate_limiter, up->rate_limiter_given}});
	if (ret) {
		ret = status_of(c, ret);
		goto out;
	}
	for (int i = 0; i < c->in->cfg.nr_disks; i++) {
		struct disk_config *d = &c->in->cfg.disks[i];

		if (strcmp(d->id, up->drive_id) != 0)
			continue;
		if (up->path_on_host[0])
			snprintf(d->path, sizeof(d->path), "%s", up->path_on_host);
		d->rate_limiter = up->rate_limiter;
	}
	ret = 204;
out:
	free(up);
	return ret;
}

/* New rate limiters for a running interface. */
static int patch_network_interface(struct call *c)
{
	struct net_update up;
	struct vm_device *dev;
	int ret;

	ret = config_json_network_interface_update(&c->in->cfg, c->path_id, c->req->body,
						   c->req->body_len, &up);
	if (ret)
		return status_of(c, ret);
	if (!up.rx_given && !up.tx_given)
		return 204;
	dev = vm_device_find(&c->in->vm.devices, VM_DEVICE_VIRTIO_NET, up.iface_id);
	if (!dev)
		return fail(c, "no network interface '%s' in the running microVM", up.iface_id);
	ret = vm_device_update(dev, &(struct vm_device_update){
					.rx_rate_limiter = {&up.rx_rate_limiter, up.rx_given},
					.tx_rate_limiter = {&up.tx_rate_limiter, up.tx_given}});
	if (ret)
		return status_of(c, ret);
	for (int i = 0; i < c->in->cfg.nr_nets; i++) {
		struct net_config *nc = &c->in->cfg.nets[i];

		if (strcmp(nc->id, up.iface_id) == 0) {
			nc->rx_rate_limiter = up.rx_rate_limiter;
			nc->tx_rate_limiter = up.tx_rate_limiter;
		}
	}
	return 204;
}

/* --- the balloon (PUT /balloon is its config resource's) --- */

static int get_balloon(struct call *c)
{
	if (!c->in->cfg.balloon.enabled)
		return fail(c, "%s", "no balloon device is configured (PUT /balloon before the start)");
	c->body = config_json_balloon_dump(&c->in->cfg);
	return c->body ? 200 : fail(c, "%s", "out of memory");
}

static struct vm_device *running_balloon(struct call *c)
{
	return vm_device_find(&c->in->vm.devices, VM_DEVICE_VIRTIO_BALLOON, NULL);
}

/* A new target for the running balloon: the guest is told with a configuration change. */
static int patch_balloon(struct call *c)
{
	struct vm_device_update up = {.balloon_target = true};
	struct vm_device *dev;
	int ret;

	ret = config_json_balloon_update(&c->in->cfg, c->req->body, c->req->body_len,
					 &up.balloon_amount_mib);
	if (ret)
		return status_of(c, ret);
	dev = running_balloon(c);
	if (!dev)
		return fail(c, "%s", "no balloon device in the running microVM");
	ret = vm_device_update(dev, &up);
	if (ret)
		return status_of(c, ret);
	c->in->cfg.balloon.amount_mib = up.balloon_amount_mib;
	return 204;
}

static int get_balloon_statistics(struct call *c)
{
	struct vm_device *dev = running_balloon(c);

	if (!c->in->cfg.balloon.enabled || !dev)
		return fail(c, "%s", "no balloon device is configured (PUT /balloon before the start)");
	if (!c->in->cfg.balloon.stats_polling_interval_s)
		return fail(c, "%s", "balloon statistics are not enabled (stats_polling_interval_s "
				     "was 0 at the start)");
	return reply_json(c, vm_device_stats(dev));
}

static int patch_balloon_statistics(struct call *c)
{
	struct vm_device_update up = {.balloon_stats_interval = true};
	struct vm_device *dev;
	int ret;

	ret = config_json_balloon_stats_update(&c->in->cfg, c->req->body, c->req->body_len,
					       &up.balloon_stats_interval_s);
	if (ret)
		return status_of(c, ret);
	dev = running_balloon(c);
	if (!dev)
		return fail(c, "%s", "no balloon device in the running microVM");
	ret = vm_device_update(dev, &up);
	if (ret)
		return status_of(c, ret);
	c->in->cfg.balloon.stats_polling_interval_s = up.balloon_stats_interval_s;
	return 204;
}

static int patch_vm(struct call *c)
{
	bool pause;
	int ret = config_json_vm_state(c->req->body, c->req->body_len, &pause);

	if (!ret)
		ret = pause ? vm_pause(&c->in->vm) : vm_resume(&c->in->vm);
	return status_of(c, ret);
}

static int put_snapshot_create(struct call *c)
{
	struct snapshot_create_request *req = malloc(sizeof(*req));
	int ret;

	if (!req)
		return fail(c, "%s", "out of memory");
	ret = config_json_snapshot_create(c->req->body, c->req->body_len, req);
	if (!ret)
		ret = instance_snapshot_create(c->in, req);
	free(req);
	return status_of(c, ret);
}

static int put_snapshot_load(struct call *c)
{
	struct snapshot_load_request *req = malloc(sizeof(*req));
	int ret;

	if (!req)
		return fail(c, "%s", "out of memory");
	ret = config_json_snapshot_load(c->req->body, c->req->body_len, req);
	if (!ret)
		ret = instance_snapshot_load(c->in, req);
	free(req);
	return status_of(c, ret);
}

static int put_migration_send(struct call *c)
{
	struct migration_request req;
	int ret = config_json_migration_send(c->req->body, c->req->body_len, &req);

	if (!ret)
		ret = instance_migration_send(c->in, req.url, req.downtime_ms);
	return status_of(c, ret);
}

static int put_migration_receive(struct call *c)
{
	struct migration_request req;
	int ret = config_json_migration_receive(c->req->body, c->req->body_len, &req);

	if (!ret)
		ret = instance_migration_receive(c->in, &req);
	return status_of(c, ret);
}

static int get_migration(struct call *c)
{
	struct migration_status st = migration_get_status(c->in);
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:f, s:f}", "state",
			      migration_state_name(st.state), "role",
			      st.state == MIGRATION_NONE ? "none"
			      : st.receiving		 ? "destination"
							 : "source",
			      "iterations", (json_int_t)st.iterations, "bytes_sent",
			      (json_int_t)(st.receiving ? 0 : st.bytes), "pages",
			      (json_int_t)st.pages, "downtime_ms", st.downtime_ms, "total_ms",
			      st.total_ms);

	if (o && st.state != MIGRATION_NONE) {
		json_object_set_new(o, "url", json_string(st.url));
		if (st.receiving) {
			json_object_set_new(o, "bytes_received", json_integer((json_int_t)st.bytes));
		} else {
			json_object_set_new(o, "downtime_limit_ms",
					    json_integer(st.downtime_limit_ms));
			json_object_set_new(o, "remaining_pages",
					    json_integer((json_int_t)st.remaining_pages));
			json_object_set_new(o, "throughput_mib_s", json_real(st.throughput_mib_s));
		}
		if (st.state == MIGRATION_FAILED)
			json_object_set_new(o, "error", json_string(st.error));
	}
	return reply_json(c, o);
}

static int put_actions(struct call *c)
{
	enum api_action action;
	int ret = config_json_action(c->req->body, c->req->body_len, &action);

	if (ret)
		return status_of(c, ret);
	switch (action) {
	case API_ACTION_INSTANCE_START:
		return status_of(c, instance_start(c->in));
	case API_ACTION_SEND_CTRL_ALT_DEL:
		if (c->in->state != INSTANCE_RUNNING)
			return fail(c, "%s", "SendCtrlAltDel: the microVM is not running");
		return status_of(c, vm_send_ctrl_alt_del(&c->in->vm));
	case API_ACTION_FLUSH_METRICS:
		if (!c->in->metrics)
			return fail(c, "%s", "FlushMetrics: metrics are not configured "
					     "(PUT /metrics or --metrics-path)");
		if (metrics_flush(c->in->metrics))
			return fail(c, "%s", "FlushMetrics: cannot write the metrics file");
		return 204;
	}
	return fail(c, "%s", "unknown action");
}

/* The routes that are not a config resource's PUT (those come from config/resource.h). */
static const struct route routes[] = {
	{ HTTP_GET, "/", ANY_TIME, get_instance_info },
	{ HTTP_GET, "/version", ANY_TIME, get_version },
	{ HTTP_GET, "/machine-config", ANY_TIME, get_machine_config },
	{ HTTP_GET, "/vm/config", ANY_TIME, get_vm_config },
	{ HTTP_PATCH, "/machine-config", BEFORE_START, patch_machine_config },
	{ HTTP_PATCH, "/drives/", AFTER_START, patch_drive },
	{ HTTP_PATCH, "/network-interfaces/", AFTER_START, patch_network_interface },
	{ HTTP_PUT, "/logger", BEFORE_START, put_logger },
	{ HTTP_PUT, "/metrics", BEFORE_START, put_metrics },
	{ HTTP_PUT, "/actions", ANY_TIME, put_actions },
	{ HTTP_PATCH, "/vm", AFTER_START, patch_vm },
	{ HTTP_PUT, "/snapshot/create", AFTER_START, put_snapshot_create },
	{ HTTP_PUT, "/snapshot/load", BEFORE_START, put_snapshot_load },
	{ HTTP_PUT, "/migration/send", AFTER_START, put_migration_send },
	{ HTTP_PUT, "/migration/receive", BEFORE_START, put_migration_receive },
	{ HTTP_GET, "/migration", ANY_TIME, get_migration },
	{ HTTP_GET, "/balloon", ANY_TIME, get_balloon },
	{ HTTP_PATCH, "/balloon", AFTER_START, patch_balloon },
	{ HTTP_GET, "/balloon/statistics", AFTER_START, get_balloon_statistics },
	{ HTTP_PATCH, "/balloon/statistics", AFTER_START, patch_balloon_statistics },
};

/* A config resource's PUT: changes the description, so only before the start. */
static const struct route resource_route = { HTTP_PUT, NULL, BEFORE_START, put_resource };

static int run_route(struct call *c, const struct route *r, const char *id)
{
	const struct http_request *req = c->req;

	if ((req->method == HTTP_PUT || req->method == HTTP_PATCH) && req->body_len == 0)
		return fail(c, "%s", "the request has no body (a JSON object is expected)");
	if (r->when == BEFORE_START && c->in->state != INSTANCE_NOT_STARTED)
		return fail(c, "%s", "The requested operation is not supported after "
				     "starting the microVM.");
	/* A VM being received must not be described meanwhile. */
	if (r->when == BEFORE_START && migration_busy(c->in))
		return fail(c, "%s", "a migration is being received: the microVM cannot be "
				     "configured meanwhile");
	if (r->when == AFTER_START && c->in->state != INSTANCE_RUNNING)
		return fail(c, "%s", "The requested operation is not supported before "
				     "starting the microVM.");
	c->path_id = id;
	log_clear_last_error();
	return r->handle(c);
}

static int dispatch(struct call *c)
{
	const struct http_request *req = c->req;
	bool path_known = false;
	const char *id;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];

		id = config_match_path(r->path, req->path);
		if (!id)
			continue;
		path_known = true;
		if (r->method == req->method)
			return run_route(c, r, id);
	}
	c->resource = config_resource_at_path(req->path, &id);
	if (c->resource) {
		path_known = true;
		if (req->method == resource_route.method)
			return run_route(c, &resource_route, id);
	}
	snprintf(c->fault, sizeof(c->fault), "Invalid request method and/or path: %s %.200s%s",
		 req->method_name, req->path,
		 path_known ? " (this path takes another method)" : "");
	return 400;
}

/* A fault message may quote the client's path or values: JSON wants UTF-8, so anything outside
 * printable ASCII becomes '?'. */
static void make_printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

void api_handle_request(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct call c = { .in = ctx, .req = req };
	int status;

	pthread_mutex_lock(&c.in->lock);
	if (c.in->state == INSTANCE_STOPPED) {
		snprintf(c.fault, sizeof(c.fault), "the microVM has stopped");
		status = 400;
	} else {
		status = dispatch(&c);
	}
	if (c.in->metrics)
		metrics_count_api_request(c.in->metrics, status);
	pthread_mutex_unlock(&c.in->lock);

	resp->status = status;
	resp->body = NULL;
	if (status == 200) {
		resp->body = c.body;
	} else if (status >= 400) {
		json_t *f;

		make_printable(c.fault);
		f = json_pack("{s:s}", "fault_message", c.fault);

		resp->body = f ? json_dumps(f, JSON_COMPACT) : NULL;
		json_decref(f);
		free(c.body);
	}
	if (status >= 400)
		log_info("api: %s %s: %d %s", req->method_name, req->path, status, c.fault);
	else
		log_debug("api: %s %s: %d", req->method_name, req->path, status);
}
