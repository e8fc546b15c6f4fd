/* The entropy device (virtio-rng, the guest's /dev/hwrng): --rng, the "entropy" section and
 * PUT /entropy ({"rate_limiter"}). */
#include "config/json_fields.h"
#include "config/resource.h"

static int parse_option(struct vm_config *cfg, const char *arg)
{
	cfg->rng = true;
	return 0;
}

static int apply(const struct config_target *t, const char *path_id, json_t *obj, const char *what)
{
	static const char *const known[] = {"rate_limiter", NULL};
	int ret;

	if ((ret = cj_check_fields(what, obj, known)) ||
	    (ret = cj_no_rate_limiter(what, obj, "rate_limiter")))
		return ret;
	t->vm->rng = true;
	return 0;
}

static json_t *dump(const struct vm_config *cfg)
{
	return cfg->rng ? json_object() : json_null();
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
    .option_help = "  --rng                  virtio-rng: the guest's /dev/hwrng\n",
    .option_label = "--rng",
    .parse_option = parse_option,
    .count = count,
};

int config_json_entropy(struct vm_config *cfg, const char *body, size_t len)
{
	return config_resource_put(&entropy_resource, cfg, NULL, body, len);
}
