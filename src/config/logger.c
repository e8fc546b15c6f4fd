/* The "logger" section and PUT /logger: {"log_path", "level", "show_level", "show_log_origin",
 * "module"}, read into a struct logger_config (vmm/instance.c applies it). */
#include "config/json_fields.h"
#include "config/resource.h"
#include "base/log.h"

#include <errno.h>
#include <stdlib.h>

static int logger(json_t *obj, struct logger_config *out, const char *what)
{
	static const char *const known[] = {"log_path",	       "level",	 "show_level",
					    "show_log_origin", "module", NULL};
	static const char *const levels[] = {"Error", "Warning", "Info", "Debug",
					     "Trace", "Off",	 NULL};
	/* skiff's levels: Trace is Debug, and errors are always logged, so Off is Error. */
	static const enum log_level map[] = {LOG_ERROR, LOG_WARN,  LOG_INFO,
					     LOG_DEBUG, LOG_DEBUG, LOG_ERROR};
	struct logger_config *lc = calloc(1, sizeof(*lc));
	char module[256];
	bool present;
	int level = 0, ret;

	if (!lc)
		return log_set_error(-EINVAL, "%s: out of memory", what);
	/* module: accepted for compatibility and ignored; skiff's log has no module filter. */
	if (!(ret = cj_check_fields(what, obj, known)) &&
	    !(ret = cj_string(what, obj, "log_path", false, lc->log_path, sizeof(lc->log_path),
			      &present)) &&
	    !(ret = cj_enum(what, obj, "level", levels, true, &level, &lc->has_level)) &&
	    !(ret = cj_bool(what, obj, "show_level", false, &lc->show_level, &present)) &&
	    !(ret = cj_bool(what, obj, "show_log_origin", false, &lc->show_log_origin, &present)) &&
	    !(ret = cj_string(what, obj, "module", false, module, sizeof(module), &present))) {
		lc->level = lc->has_level ? (int)map[level] : 0;
		*out = *lc;
	}
	free(lc);
	return ret;
}

static int apply(const struct config_target *t, const char *path_id, json_t *obj, const char *what)
{
	if (!t->logger)
		return log_set_error(-EINVAL, "'logger' is not supported here");
	return logger(obj, t->logger, what);
}

/* Not kept in the vm_config: null in GET /vm/config. PUT /logger acts on the instance, so the
 * API routes it themselves (no api_path). */
const struct config_resource logger_resource = {
    .name = "logger",
    .shape = CONFIG_OBJECT,
    .in_full_config = true,
    .object_name = "logger",
    .apply = apply,
};

int config_json_logger(const char *body, size_t len, struct logger_config *out)
{
	json_t *obj = cj_parse_object(body, len, "logger");
	int ret;

	if (!obj)
		return -EINVAL;
	ret = logger(obj, out, "logger");
	json_decref(obj);
	return ret;
}
