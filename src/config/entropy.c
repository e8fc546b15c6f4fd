/* The entropy device (virtio-rng, the guest's /dev/hwrng): --rng[=bw=SIZE/MS,ops=N/MS], the
 * "entropy" section and PUT /entropy ({"rate_limiter"}). */
#include "config/json_fields.h"
#include "config/rate_limiter.h"
#include "config/resource.h"
#include "base/log.h"

#include <errno.h>
#include <string.h>

static int parse_option(struct vm_config *cfg, const char *arg)
{
	struct rate_limiter_config rl = {0};
	char buf[256];
	char *fields[4];
	int n = 0;

	if (arg && (config_copy_field(buf, sizeof(buf), arg) ||
		    (n = config_split_fields(buf, fields, 4)) < 1))
		return log_set_error(-EINVAL, "--rng=%s: expected --rng or --rng=bw=SIZE/MS,ops=N/MS",
				     arg);
	for (int i = 0; i < n; i++) {
		if (strncmp(fields[i], "bw=", 3) == 0) {
			if (config_parse_bucket("--rng", "bw", fields[i] + 3, &rl.bandwidth))
				return -EINVAL;
		} else if (strncmp(fields[i], "ops=", 4) == 0) {
			if (config_parse_bucket("--rng", "ops", fields[i] + 4, &rl.ops))
				return -EINVAL;
		} else {
			return log_set_error(-EINVAL,
					     "--rng=%s: unknown option '%.64s' (expected bw=SIZE/MS "
					     "or ops=N/MS)",
					     arg, fields[i]);
		}
	}
	cfg->rng = true;
	cfg->rng_rate_limiter = rl;
	return 0;
}

static int apply(const struct config_target *t, const char *path_id, json_t *obj, const char *what)
{
	static const char *const known[] = {"rate_limiter", NULL};
	struct rate_limiter_config rl = {0};
	unsigned given;
	int ret;

	if ((ret = cj_check_fields(what, obj, known)) ||
	    (ret = cj_rate_limiter(what, obj, "rate_limiter", &rl, &given)))
		return ret;
	t->vm->rng = true;
	t->vm->rng_rate_limiter = rl;
	return 0;
}

static json_t *dump(const struct vm_config *cfg)
{
	if (!cfg->rng)
		return json_null();
	return json_pack("{s:o}", "rate_limiter", cj_rate_limiter_dump(&cfg->rng_rate_limiter));
}

static int count(const struct vm_config *cfg)
{
	return cfg->rng ? 1 : 0;
}

const struct config_resource entropy_resource = {
    .name = "entropy",
    .shape = CONFIG_OBJECT,
    .in_full_config = true,
    .object_name = "entropy",
    .api_path = "/entropy",
    .apply = apply,
    .dump = dump,
    .option = "rng",
    .option_arg_optional = true,
    .option_help = "  --rng[=bw=SIZE/MS,ops=N/MS]\n"
		   "                         virtio-rng: the guest's /dev/hwrng; bw= and ops=\n"
		   "                         rate-limit it (docs/rate-limiters.md)\n",
    .option_label = "--rng",
    .parse_option = parse_option,
    .count = count,
};

int config_json_entropy(struct vm_config *cfg, const char *body, size_t len)
{
	return config_resource_put(&entropy_resource, cfg, NULL, body, len);
}
