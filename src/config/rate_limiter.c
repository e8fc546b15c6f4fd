#include "config/rate_limiter.h"
#include "config/json_fields.h"
#include "base/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKET_BANDWIDTH 1u /* = RATE_LIMITER_BANDWIDTH (virtio/rate_limiter.h) */
#define BUCKET_OPS	 2u

/* The one check both sides make; `what` names the bucket. */
static int check_bucket(const char *what, struct token_bucket_config *b)
{
	if (b->size == 0) {
		*b = (struct token_bucket_config){0}; /* no limit */
		return 0;
	}
	if (b->refill_time_ms == 0)
		return log_set_error(-EINVAL,
				     "%s: refill_time 0 would never refill the bucket (size 0 "
				     "removes the limit)",
				     what);
	if (b->refill_time_ms > TOKEN_BUCKET_MAX_REFILL_MS)
		return log_set_error(-EINVAL, "%s: refill_time %llu ms is more than %llu", what,
				     (unsigned long long)b->refill_time_ms,
				     (unsigned long long)TOKEN_BUCKET_MAX_REFILL_MS);
	return 0;
}

static int read_bucket(const char *what, json_t *v, struct token_bucket_config *out)
{
	static const char *const known[] = {"size", "one_time_burst", "refill_time", NULL};
	struct token_bucket_config b = {0};
	bool present;
	int ret;

	if (!json_is_object(v))
		return log_set_error(-EINVAL, "%s must be an object", what);
	if ((ret = cj_check_fields(what, v, known)) ||
	    (ret = cj_uint(what, v, "size", true, 0, INT64_MAX, &b.size, &present)) ||
	    (ret = cj_uint(what, v, "one_time_burst", false, 0, INT64_MAX, &b.one_time_burst,
			   &present)) ||
	    (ret = cj_uint(what, v, "refill_time", true, 0, INT64_MAX, &b.refill_time_ms,
			   &present)) ||
	    (ret = check_bucket(what, &b)))
		return ret;
	*out = b;
	return 0;
}

int cj_rate_limiter(const char *what, json_t *obj, const char *name,
		    struct rate_limiter_config *out, unsigned *given)
{
	static const char *const known[] = {"bandwidth", "ops", NULL};
	struct rate_limiter_config rl = *out;
	json_t *v = cj_field(obj, name), *b;
	char inner[160], bucket[200];
	int ret;

	*given = 0;
	if (!v)
		return 0;
	if (!json_is_object(v))
		return cj_wrong_type(what, name, "an object");
	snprintf(inner, sizeof(inner), "%s of %s", name, what);
	if ((ret = cj_check_fields(inner, v, known)))
		return ret;
	if ((b = cj_field(v, "bandwidth"))) {
		snprintf(bucket, sizeof(bucket), "%s.bandwidth of %s", name, what);
		if ((ret = read_bucket(bucket, b, &rl.bandwidth)))
			return ret;
		*given |= BUCKET_BANDWIDTH;
	}
	if ((b = cj_field(v, "ops"))) {
		snprintf(bucket, sizeof(bucket), "%s.ops of %s", name, what);
		if ((ret = read_bucket(bucket, b, &rl.ops)))
			return ret;
		*given |= BUCKET_OPS;
	}
	*out = rl;
	return 0;
}

static json_t *bucket_dump(const struct token_bucket_config *b)
{
	json_t *o;

	if (!b->size)
		return json_null();
	o = json_pack("{s:I}", "size", (json_int_t)b->size);
	if (o && b->one_time_burst)
		json_object_set_new(o, "one_time_burst",
				    json_integer((json_int_t)b->one_time_burst));
	if (o)
		json_object_set_new(o, "refill_time", json_integer((json_int_t)b->refill_time_ms));
	return o;
}

bool config_rate_limited(const struct rate_limiter_config *rl)
{
	return rl->bandwidth.size || rl->ops.size;
}

json_t *cj_rate_limiter_dump(const struct rate_limiter_config *rl)
{
	if (!config_rate_limited(rl))
		return json_null();
	return json_pack("{s:o, s:o}", "bandwidth", bucket_dump(&rl->bandwidth), "ops",
			 bucket_dump(&rl->ops));
}

/* A count with an optional K, M or G suffix (powers of 1024). */
static int parse_count(const char *s, const char *end, uint64_t *out)
{
	uint64_t v = 0, mult = 1;

	if (s == end || !isdigit((unsigned char)*s))
		return -1;
	for (; s < end && isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (s < end) {
		if (end - s != 1)
			return -1;
		switch (*s) {
		case 'K':
		case 'k':
			mult = 1ULL << 10;
			break;
		case 'M':
		case 'm':
			mult = 1ULL << 20;
			break;
		case 'G':
		case 'g':
			mult = 1ULL << 30;
			break;
		default:
			return -1;
		}
	}
	if (v > INT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int config_parse_bucket(const char *option, const char *key, const char *value,
			struct token_bucket_config *out)
{
	struct token_bucket_config b = {0};
	const char *slash = strchr(value, '/'), *plus, *end = value + strlen(value);
	char what[96];

	plus = slash ? strchr(slash, '+') : NULL;
	if (!slash || parse_count(value, slash, &b.size) ||
	    parse_count(slash + 1, plus ? plus : end, &b.refill_time_ms) ||
	    (plus && parse_count(plus + 1, end, &b.one_time_burst)))
		return log_set_error(-EINVAL,
				     "%s %s=%.64s: expected SIZE/MS or SIZE/MS+BURST (e.g. "
				     "%s=1M/1000: SIZE tokens refilled every MS milliseconds)",
				     option, key, value, key);
	snprintf(what, sizeof(what), "%s %s=%.32s", option, key, value);
	if (check_bucket(what, &b))
		return -EINVAL;
	*out = b;
	return 0;
}
