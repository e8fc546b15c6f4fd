#include "config/migration.h"
#include "config/json_fields.h"
#include <stdbool.h>

#include <errno.h>
#include <string.h>

int config_json_migration_send(const char *body, size_t len, struct migration_request *out)
{
	static const char *const known[] = {"destination_url", "downtime_ms", NULL};
	const char *what = "migration send";
	json_t *obj = cj_parse_object(body, len, what);
	uint64_t downtime = MIGRATION_DEFAULT_DOWNTIME_MS;
	bool present;
	int ret;

	if (!obj)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!(ret = cj_check_fields(what, obj, known)) &&
	    !(ret = cj_string(what, obj, "destination_url", true, out->url, sizeof(out->url),
			      &present)))
		ret = cj_uint(what, obj, "downtime_ms", false, 1, 60000, &downtime, &present);
	out->downtime_ms = (uint32_t)downtime;
	json_decref(obj);
	return ret;
}

int config_json_migration_receive(const char *body, size_t len, struct migration_request *out)
{
	static const char *const known[] = {"receiver_url", "network_overrides", NULL};
	const char *what = "migration receive";
	json_t *obj = cj_parse_object(body, len, what);
	bool present;
	int ret;

	if (!obj)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!(ret = cj_check_fields(what, obj, known)) &&
	    !(ret =
		  cj_string(what, obj, "receiver_url", true, out->url, sizeof(out->url), &present)))
		ret = config_json_net_overrides(what, obj, out->overrides, &out->nr_overrides);
	json_decref(obj);
	return ret;
}
