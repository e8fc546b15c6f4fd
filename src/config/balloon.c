/* The memory balloon (virtio-balloon): --balloon, the "balloon" section, PUT /balloon
 * ({"amount_mib", "deflate_on_oom", "stats_polling_interval_s", "free_page_hinting",
 * "free_page_reporting"}, Firecracker's Balloon), and the bodies of PATCH /balloon
 * ({"amount_mib"}) and PATCH /balloon/statistics ({"stats_polling_interval_s"}), which change a
 * running balloon (api/routes.c hands them to the device). */
#include "config/config_json.h"
#include "config/json_fields.h"
#include "config/resource.h"
#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A balloon cannot take more than the guest has. */
static int check_amount(const struct vm_config *cfg, uint64_t amount_mib, const char *what)
{
	if (amount_mib > cfg->memory_mib)
		return log_set_error(-EINVAL,
				     "%s amount_mib %llu: the balloon cannot be larger than the "
				     "guest's memory (%llu MiB)",
				     what, (unsigned long long)amount_mib,
				     (unsigned long long)cfg->memory_mib);
	return 0;
}

static int apply(const struct config_target *t, const char *path_id, json_t *obj, const char *what)
{
	static const char *const known[] = {"amount_mib",	   "deflate_on_oom",
					    "stats_polling_interval_s", "free_page_hinting",
					    "free_page_reporting", NULL};
	struct balloon_config b = {.enabled = true};
	uint64_t amount = 0, interval = 0;
	bool present, hinting = false;
	int ret;

	if ((ret = cj_check_fields(what, obj, known)) ||
	    (ret = cj_uint(what, obj, "amount_mib", true, 0, UINT32_MAX, &amount, &present)) ||
	    (ret = cj_bool(what, obj, "deflate_on_oom", true, &b.deflate_on_oom, &present)) ||
	    (ret = cj_uint(what, obj, "stats_polling_interval_s", false, 0,
			   BALLOON_MAX_STATS_INTERVAL_S, &interval, &present)) ||
	    (ret = cj_bool(what, obj, "free_page_hinting", false, &hinting, &present)) ||
	    (ret = cj_bool(what, obj, "free_page_reporting", false, &b.free_page_reporting,
			   &present)))
		return ret;
	if (hinting)
		return log_set_error(-EINVAL,
				     "%s: free_page_hinting is not supported (free_page_reporting "
				     "gives free memory back without a host-driven run)",
				     what);
	if ((ret = check_amount(t->vm, amount, what)))
		return ret;
	b.amount_mib = (uint32_t)amount;
	b.stats_polling_interval_s = (uint16_t)interval;
	t->vm->balloon = b;
	return 0;
}

static json_t *dump_balloon(const struct balloon_config *b)
{
	return json_pack("{s:I, s:b, s:I, s:b, s:b}", "amount_mib", (json_int_t)b->amount_mib,
			 "deflate_on_oom", b->deflate_on_oom, "stats_polling_interval_s",
			 (json_int_t)b->stats_polling_interval_s, "free_page_hinting", 0,
			 "free_page_reporting", b->free_page_reporting);
}

static json_t *dump(const struct vm_config *cfg)
{
	return cfg->balloon.enabled ? dump_balloon(&cfg->balloon) : json_null();
}

/* on|off (also true|false, 1|0) */
static int parse_switch(const char *key, const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0"))
		*out = false;
	else
		return log_set_error(-EINVAL, "--balloon %s=%s: on or off", key, v);
	return 0;
}

static int parse_number(const char *key, const char *v, unsigned long long max,
			unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(v, &end, 10);
	if (!*v || *end || errno || v[0] == '-' || *out > max)
		return log_set_error(-EINVAL, "--balloon %s=%s: a number from 0 to %llu", key, v,
				     max);
	return 0;
}

/* amount_mib=N,deflate_on_oom=on|off,stats_polling_interval_s=S,free_page_reporting=on|off */
static int parse_option(struct vm_config *cfg, const char *arg)
{
	struct balloon_config b = {.enabled = true};
	char buf[256], *fields[8];
	int n, ret;

	if (config_copy_field(buf, sizeof(buf), arg))
		return log_set_error(-EINVAL, "--balloon: too long");
	n = config_split_fields(buf, fields, 8);
	if (n < 0)
		return log_set_error(-EINVAL, "--balloon: too many fields");
	for (int i = 0; i < n; i++) {
		char *eq = strchr(fields[i], '=');
		unsigned long long v;
		const char *key = fields[i];

		if (!eq)
			return log_set_error(-EINVAL,
					     "--balloon %s: expected KEY=VALUE (amount_mib, "
					     "deflate_on_oom, stats_polling_interval_s, "
					     "free_page_reporting)",
					     key);
		*eq = '\0';
		if (!strcmp(key, "amount_mib")) {
			if ((ret = parse_number(key, eq + 1, UINT32_MAX, &v)))
				return ret;
			b.amount_mib = (uint32_t)v;
		} else if (!strcmp(key, "stats_polling_interval_s")) {
			if ((ret = parse_number(key, eq + 1, BALLOON_MAX_STATS_INTERVAL_S, &v)))
				return ret;
			b.stats_polling_interval_s = (uint16_t)v;
		} else if (!strcmp(key, "deflate_on_oom")) {
			if ((ret = parse_switch(key, eq + 1, &b.deflate_on_oom)))
				return ret;
		} else if (!strcmp(key, "free_page_reporting")) {
			if ((ret = parse_switch(key, eq + 1, &b.free_page_reporting)))
				return ret;
		} else {
			return log_set_error(-EINVAL,
					     "--balloon: unknown key '%s' (amount_mib, "
					     "deflate_on_oom, stats_polling_interval_s, "
					     "free_page_reporting)",
					     key);
		}
	}
	cfg->balloon = b;
	return 0;
}

static int count(const struct vm_config *cfg)
{
	return cfg->balloon.enabled ? 1 : 0;
}

static int validate(const struct vm_config *cfg)
{
	if (!cfg->balloon.enabled)
		return 0;
	return check_amount(cfg, cfg->balloon.amount_mib, "balloon");
}

const struct config_resource balloon_resource = {
    .name = "balloon",
    .shape = CONFIG_OBJECT,
    .in_full_config = true,
    .object_name = "balloon",
    .api_path = "/balloon",
    .apply = apply,
    .dump = dump,
    .option = "balloon",
    .option_arg = true,
    .option_help = "  --balloon amount_mib=N[,deflate_on_oom=on][,stats_polling_interval_s=S]"
		   "[,free_page_reporting=on]\n"
		   "                         virtio-balloon: N MiB taken back from the guest\n",
    .option_label = "--balloon",
    .parse_option = parse_option,
    .count = count,
    .validate = validate,
};

int config_json_balloon_update(const struct vm_config *cfg, const char *body, size_t len,
			       uint32_t *amount_mib)
{
	static const char *const known[] = {"amount_mib", NULL};
	json_t *obj;
	uint64_t v = 0;
	bool present;
	int ret;

	if (!cfg->balloon.enabled)
		return log_set_error(-EINVAL, "no balloon device: PUT /balloon before the start");
	obj = cj_parse_object(body, len, "balloon update");
	if (!obj)
		return -EINVAL;
	if (!(ret = cj_check_fields("balloon update", obj, known)) &&
	    !(ret = cj_uint("balloon update", obj, "amount_mib", true, 0, UINT32_MAX, &v,
			    &present)) &&
	    !(ret = check_amount(cfg, v, "balloon update")))
		*amount_mib = (uint32_t)v;
	json_decref(obj);
	return ret;
}

int config_json_balloon_stats_update(const struct vm_config *cfg, const char *body, size_t len,
				     uint16_t *interval_s)
{
	static const char *const known[] = {"stats_polling_interval_s", NULL};
	const char *what = "balloon statistics update";
	json_t *obj;
	uint64_t v = 0;
	bool present;
	int ret;

	if (!cfg->balloon.enabled)
		return log_set_error(-EINVAL, "no balloon device: PUT /balloon before the start");
	obj = cj_parse_object(body, len, what);
	if (!obj)
		return -EINVAL;
	if (!(ret = cj_check_fields(what, obj, known)) &&
	    !(ret = cj_uint(what, obj, "stats_polling_interval_s", true, 0,
			    BALLOON_MAX_STATS_INTERVAL_S, &v, &present))) {
		if (cfg->balloon.stats_polling_interval_s == 0)
			ret = log_set_error(-EINVAL,
					    "%s: statistics were not enabled before the start, and "
					    "cannot be enabled after it",
					    what);
		else if (v == 0)
			ret = log_set_error(-EINVAL,
					    "%s: statistics cannot be disabled after the start "
					    "(stats_polling_interval_s must stay above 0)",
					    what);
		else
			*interval_s = (uint16_t)v;
	}
	json_decref(obj);
	return ret;
}

char *config_json_balloon_dump(const struct vm_config *cfg)
{
	if (!cfg->balloon.enabled) {
		log_set_error(-EINVAL, "no balloon device is configured");
		return NULL;
	}
	return cj_dump(dump_balloon(&cfg->balloon));
}
