#include "config/config_json.h"
#include "config/json_fields.h"
#include "config/resource.h"
#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- bodies that are not a resource --- */

/* A body that is one required enum field. */
static int one_enum(const char *what, const char *name, const char *const *values, const char *body,
		    size_t len, int *out)
{
	const char *const known[] = {name, NULL};
	json_t *obj = cj_parse_object(body, len, what);
	bool present;
	int v = 0, ret;

	if (!obj)
		return -EINVAL;
	if (!(ret = cj_check_fields(what, obj, known)) &&
	    !(ret = cj_enum(what, obj, name, values, false, &v, &present))) {
		if (present)
			*out = v;
		else
			ret = cj_missing(what, name);
	}
	json_decref(obj);
	return ret;
}

int config_json_action(const char *body, size_t len, enum api_action *out)
{
	/* In enum api_action's order. */
	static const char *const actions[] = {"InstanceStart", "SendCtrlAltDel", "FlushMetrics",
					      NULL};
	int v, ret = one_enum("action", "action_type", actions, body, len, &v);

	if (!ret)
		*out = (enum api_action)v;
	return ret;
}

int config_json_vm_state(const char *body, size_t len, bool *pause)
{
	static const char *const states[] = {"Paused", "Resumed", NULL};
	int v, ret = one_enum("vm", "state", states, body, len, &v);

	if (!ret)
		*pause = v == 0;
	return ret;
}

/* --- the whole document --- */

/* The section's value (NULL: absent or null) when it has the shape its resource wants. */
static int section(json_t *doc, const struct config_resource *r, json_t **out)
{
	json_t *v;
	size_t i;

	*out = cj_field(doc, r->name);
	if (!*out)
		return 0;
	if (r->shape == CONFIG_OBJECT && !json_is_object(*out))
		return log_set_error(-EINVAL, "'%s' must be an object", r->name);
	if (r->shape == CONFIG_ARRAY) {
		if (!json_is_array(*out))
			return log_set_error(-EINVAL, "'%s' must be an array", r->name);
		json_array_foreach(*out, i, v) if (!json_is_object(v)) return log_set_error(
		    -EINVAL, "%s[%zu] must be an object", r->name, i);
	}
	return 0;
}

static int document(const struct config_target *t, json_t *doc)
{
	const char *key;
	json_t *v;
	char what[48];
	size_t i;
	int ret;

	json_object_foreach(doc, key, v)
	{
		const struct config_resource *r = config_resource_named(key);

		if (!r || r->shape == CONFIG_NONE)
			return log_set_error(-EINVAL, "unknown field '%.64s' in the configuration",
					     key);
	}
	for (const struct config_resource *const *r = config_resources; *r; r++) {
		if ((*r)->shape != CONFIG_UNSUPPORTED || !(v = cj_field(doc, (*r)->name)))
			continue;
		if (!((*r)->empty_array_ok && json_is_array(v) && json_array_size(v) == 0))
			return log_set_error(-EINVAL, "'%s' is not supported by skiff", (*r)->name);
	}
	for (const struct config_resource *const *r = config_resources; *r; r++) {
		if ((*r)->shape != CONFIG_OBJECT && (*r)->shape != CONFIG_ARRAY)
			continue;
		if ((ret = section(doc, *r, &v)))
			return ret;
		if (!v && (*r)->required && !t->vm->restored)
			return log_set_error(-EINVAL, "missing required section '%s'", (*r)->name);
	}
	for (const struct config_resource *const *r = config_resources; *r; r++) {
		if ((*r)->shape != CONFIG_OBJECT && (*r)->shape != CONFIG_ARRAY)
			continue;
		section(doc, *r, &v);
		if (v && (*r)->shape == CONFIG_OBJECT &&
		    (ret = (*r)->apply(t, NULL, v, (*r)->name)))
			return ret;
		if (v && (*r)->shape == CONFIG_ARRAY) {
			json_t *obj;

			json_array_foreach(v, i, obj)
			{
				int before = (*r)->count ? (*r)->count(t->vm) : -1;

				snprintf(what, sizeof(what), "%s[%zu]", (*r)->name, i);
				if ((ret = (*r)->apply(t, NULL, obj, what)))
					return ret;
				/* A PUT with a known id replaces; in one document it is a slip. */
				if (before >= 0 && (*r)->count(t->vm) == before)
					return log_set_error(-EINVAL,
							     "%s: its id is already used by an "
							     "earlier entry of '%s'",
							     what, (*r)->name);
			}
		}
	}
	return 0;
}

int config_json_document(struct vm_config *cfg, struct logger_config *logger_out,
			 struct metrics_config *metrics_out, const char *doc, size_t len)
{
	json_t *obj = cj_parse_object(doc, len, "configuration");
	struct vm_config *tmp;
	struct logger_config *lc;
	struct metrics_config *mc;
	int ret = -EINVAL;

	if (!obj)
		return -EINVAL;
	/* Every section goes into copies; cfg and the outputs change only when all are good. */
	tmp = malloc(sizeof(*tmp));
	lc = calloc(1, sizeof(*lc));
	mc = calloc(1, sizeof(*mc));
	if (!tmp || !lc || !mc) {
		log_set_error(-EINVAL, "configuration: out of memory");
		goto out;
	}
	vm_config_copy(tmp, cfg);
	ret = document(
	    &(struct config_target){tmp, logger_out ? lc : NULL, metrics_out ? mc : NULL}, obj);
	if (ret)
		goto out;
	vm_config_copy(cfg, tmp);
	if (logger_out)
		*logger_out = *lc;
	if (metrics_out)
		*metrics_out = *mc;
out:
	free(tmp);
	free(lc);
	free(mc);
	json_decref(obj);
	return ret;
}

/* --- the whole dump --- */

/* Firecracker's FullVmConfiguration, in the order Firecracker writes it; a resource of skiff's
 * that Firecracker lacks comes after these, in config_resources[] order. */
static const char *const full_config_order[] = {
    "balloon", "drives",      "boot-source",	    "cpu-config", "logger",  "machine-config",
    "metrics", "mmds-config", "network-interfaces", "vsock",	  "entropy", NULL,
};

static bool in_firecracker_order(const char *name)
{
	for (const char *const *n = full_config_order; *n; n++)
		if (strcmp(*n, name) == 0)
			return true;
	return false;
}

/* Adds r's key; false when out of memory. */
static bool add_section(json_t *out, const struct config_resource *r, const struct vm_config *cfg)
{
	json_t *v = r->dump ? r->dump(cfg) : json_null();

	return v && json_object_set_new(out, r->name, v) == 0;
}

/* What skiff has no device for (or does not keep in vm_config: logger, metrics) is null. */
char *config_json_vm_config_dump(const struct vm_config *cfg)
{
	json_t *out = json_object();
	bool ok = out != NULL;

	for (const char *const *n = full_config_order; ok && *n; n++)
		ok = add_section(out, config_resource_named(*n), cfg);
	for (const struct config_resource *const *r = config_resources; ok && *r; r++)
		if ((*r)->name && (*r)->in_full_config && !in_firecracker_order((*r)->name))
			ok = add_section(out, *r, cfg);
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return cj_dump(out);
}
