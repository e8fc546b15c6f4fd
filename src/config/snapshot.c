#include "config/snapshot.h"
#include "config/json_fields.h"
#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int config_json_snapshot_create(const char *body, size_t len, struct snapshot_create_request *out)
{
	static const char *const known[] = {"snapshot_type", "snapshot_path", "mem_file_path",
					    "version", NULL};
	static const char *const types[] = {"Full", "Diff", NULL};
	const char *what = "snapshot create";
	json_t *obj = cj_parse_object(body, len, what);
	int type = 0, ret;
	bool present;

	if (!obj)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!(ret = cj_check_fields(what, obj, known)) &&
	    !(ret = cj_enum(what, obj, "snapshot_type", types, false, &type, &present)) &&
	    !(ret = cj_string(what, obj, "snapshot_path", true, out->snapshot_path,
			      sizeof(out->snapshot_path), &present)) &&
	    !(ret = cj_string(what, obj, "mem_file_path", true, out->mem_path,
			      sizeof(out->mem_path), &present)) &&
	    /* Firecracker 1.x dropped the target version; older clients may still send it. */
	    cj_field(obj, "version") && !json_is_string(cj_field(obj, "version")))
		ret = cj_wrong_type(what, "version", "a string");
	out->diff = type == 1;
	json_decref(obj);
	return ret;
}

int config_json_net_overrides(const char *what, struct json_t *obj,
			      struct snapshot_net_override *out, int *nr)
{
	static const char *const known[] = {"iface_id", "host_dev_name", NULL};
	json_t *list = cj_field(obj, "network_overrides"), *o;
	char item[64];
	size_t i;
	int ret;

	if (!list)
		return 0;
	if (!json_is_array(list))
		return cj_wrong_type(what, "network_overrides", "an array");
	if (json_array_size(list) > VM_CONFIG_MAX_NETS)
		return log_set_error(-EINVAL, "%s: more than %d network_overrides", what,
				     VM_CONFIG_MAX_NETS);
	json_array_foreach(list, i, o)
	{
		struct snapshot_net_override *ov = &out[i];
		bool present;

		snprintf(item, sizeof(item), "network_overrides[%zu]", i);
		if (!json_is_object(o))
			return log_set_error(-EINVAL, "%s: %s must be an object", what, item);
		if ((ret = cj_check_fields(item, o, known)) ||
		    (ret = cj_id(item, o, "iface_id", ov->iface_id)) ||
		    (ret = cj_string(item, o, "host_dev_name", true, ov->host_dev_name,
				     sizeof(ov->host_dev_name), &present)))
			return ret;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(out[j].iface_id, ov->iface_id))
				return log_set_error(-EINVAL, "%s: %s: iface_id '%s' twice", what,
						     item, ov->iface_id);
		*nr = (int)i + 1;
	}
	return 0;
}

int config_parse_net_override(const char *arg, struct snapshot_net_override *out, int *nr)
{
	const char *eq = strchr(arg, '=');
	struct snapshot_net_override ov = {0};
	size_t id_len = eq ? (size_t)(eq - arg) : 0;

	if (!eq || id_len > VM_CONFIG_MAX_ID || !eq[1] || strlen(eq + 1) >= sizeof(ov.host_dev_name))
		return log_set_error(-EINVAL, "--net-override is IFACE_ID=TAP (a tap name of 1 to "
					      "%zu characters), not '%.80s'",
				     sizeof(ov.host_dev_name) - 1, arg);
	memcpy(ov.iface_id, arg, id_len);
	if (!vm_config_id_valid(ov.iface_id))
		return log_set_error(-EINVAL, "--net-override: '%s' is no interface id (1 to %d "
					      "letters, digits, '_' or '-')",
				     ov.iface_id, VM_CONFIG_MAX_ID);
	snprintf(ov.host_dev_name, sizeof(ov.host_dev_name), "%s", eq + 1);
	for (int i = 0; i < *nr; i++)
		if (!strcmp(out[i].iface_id, ov.iface_id))
			return log_set_error(-EINVAL, "--net-override: interface '%s' twice",
					     ov.iface_id);
	if (*nr >= VM_CONFIG_MAX_NETS)
		return log_set_error(-EINVAL, "--net-override: more than %d", VM_CONFIG_MAX_NETS);
	out[(*nr)++] = ov;
	return 0;
}

int config_apply_net_overrides(struct vm_config *cfg, const struct snapshot_net_override *ov,
			       int nr, const char *source)
{
	for (int i = 0; i < nr; i++) {
		int n;

		for (n = 0; n < cfg->nr_nets; n++)
			if (!strcmp(cfg->nets[n].id, ov[i].iface_id))
				break;
		if (n == cfg->nr_nets)
			return log_set_error(-EINVAL, "network_overrides: %s has no interface '%s'",
					     source, ov[i].iface_id);
		snprintf(cfg->nets[n].tap, sizeof(cfg->nets[n].tap), "%s", ov[i].host_dev_name);
	}
	return 0;
}

int config_json_snapshot_load(const char *body, size_t len, struct snapshot_load_request *out)
{
	static const char *const known[] = {"snapshot_path",	     "mem_file_path",
					    "mem_backend",	     "enable_diff_snapshots",
					    "track_dirty_pages",     "resume_vm",
					    "network_overrides",     "clock_realtime",
					    NULL};
	static const char *const backend_known[] = {"backend_type", "backend_path", NULL};
	static const char *const backends[] = {"File", "Uffd", NULL};
	const char *what = "snapshot load";
	json_t *obj = cj_parse_object(body, len, what), *backend;
	bool present, has_file = false, diff = false;
	int type = 0, ret;

	if (!obj)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	backend = cj_field(obj, "mem_backend");
	if ((ret = cj_check_fields(what, obj, known)) ||
	    (ret = cj_string(what, obj, "snapshot_path", true, out->snapshot_path,
			     sizeof(out->snapshot_path), &present)) ||
	    (ret = cj_string(what, obj, "mem_file_path", false, out->mem_path,
			     sizeof(out->mem_path), &has_file)) ||
	    (ret = cj_bool(what, obj, "enable_diff_snapshots", false, &diff, &present)) ||
	    (ret = cj_bool(what, obj, "track_dirty_pages", false, &out->track_dirty_pages,
			   &present)) ||
	    (ret = cj_bool(what, obj, "resume_vm", false, &out->resume, &present)) ||
	    (ret = cj_bool(what, obj, "clock_realtime", false, &out->clock_realtime, &present)) ||
	    (ret = config_json_net_overrides(what, obj, out->overrides, &out->nr_overrides)))
		goto out;
	if (backend && has_file) {
		ret = log_set_error(-EINVAL, "%s: mem_backend and mem_file_path are mutually "
					     "exclusive",
				    what);
	} else if (!backend && !has_file) {
		ret = log_set_error(-EINVAL, "%s: missing required field 'mem_backend'", what);
	} else if (backend && !json_is_object(backend)) {
		ret = cj_wrong_type(what, "mem_backend", "an object");
	} else if (backend &&
		   (!(ret = cj_check_fields("mem_backend", backend, backend_known)) &&
		    !(ret = cj_enum("mem_backend", backend, "backend_type", backends, false, &type,
				    &present)) &&
		    !present)) {
		ret = cj_missing("mem_backend", "backend_type");
	} else if (backend && !ret) {
		ret = cj_string("mem_backend", backend, "backend_path", true, out->mem_path,
				sizeof(out->mem_path), &present);
		out->uffd = type == 1;
	}
	out->track_dirty_pages |= diff;
out:
	json_decref(obj);
	return ret;
}
