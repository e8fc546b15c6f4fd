/* The "metrics" section and PUT /metrics: {"metrics_path"}, read into a struct metrics_config
 * (vmm/instance.c applies it). */
#include "config/json_fields.h"
#include "config/resource.h"
#include "base/log.h"

#include <errno.h>
#include <stdlib.h>

static int metrics(json_t *obj, struct metrics_config *out, const char *what)
{
	static const char *const known[] = {"metrics_path", NULL};
	struct metrics_config *mc = calloc(1, sizeof(*mc));
	bool present;
	int ret;

	if (!mc)
		return log_set_error(-EINVAL, "%s: out of memory", what);
	if (!(ret = cj_check_fields(what, obj, known)) &&
	    !(ret = cj_string(what, obj, "metrics_path", true, mc->metrics_path,
			      sizeof(mc->metrics_path), &present)))
		*out = *mc;
	free(mc);
	return ret;
}

static int apply(const struct config_target *t, const char *path_id, json_t *obj, const char *what)
{
	if (!t->metrics)
		return log_set_error(-EINVAL, "'metrics' is not supported here");
	return metrics(obj, t->metrics, what);
}

/* As the logger: not kept in the vm_config, and PUT /metrics is routed by the API itself. */
const struct config_resource metrics_resource = {
    .name = "metrics",
    .shape = CONFIG_OBJECT,
    .in_full_config = true,
    .object_name = "metrics",
    .apply = apply,
};

int config_json_metrics(const char *body, size_t len, struct metrics_config *out)
{
	json_t *obj = cj_parse_object(body, len, "metrics");
	int ret;

	if (!obj)
		return -EINVAL;
	ret = metrics(obj, out, "metrics");
	json_decref(obj);
	return ret;
}
