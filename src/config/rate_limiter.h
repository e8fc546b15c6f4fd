/* Rate limiters in the VM description (Firecracker's RateLimiter: {bandwidth, ops}, each a
 * TokenBucket {size, one_time_burst, refill_time}), private to src/config/: how the JSON objects
 * of drives, network interfaces and entropy read and dump them, and how the command line spells
 * them (--disk ...,bw=SIZE/MS[+BURST],ops=N/MS[+BURST]).
 *
 * The checks, the same on both sides: a bucket of size 0 is no limit (Firecracker's way to
 * remove one); a bucket with a size and a refill_time of 0 would never refill and is refused;
 * refill_time is at most TOKEN_BUCKET_MAX_REFILL_MS. Errors: -EINVAL with the reason as the
 * thread's last error. */
#ifndef SKIFF_CONFIG_RATE_LIMITER_H
#define SKIFF_CONFIG_RATE_LIMITER_H

#include "base/token_bucket.h"

#include <jansson.h>

/* Reads field `name` of `obj` (absent or null: nothing) into *out. *given gets the buckets the
 * object named (RATE_LIMITER_* of virtio/rate_limiter.h: 1 bandwidth, 2 ops), so that a PATCH
 * changes only those; a bucket not named is left as it was in *out. */
int cj_rate_limiter(const char *what, json_t *obj, const char *name,
		    struct rate_limiter_config *out, unsigned *given);

/* The limiter as GET /vm/config shows it: null when it limits nothing. A new reference. */
json_t *cj_rate_limiter_dump(const struct rate_limiter_config *rl);

/* One command-line bucket, the value of `key` ("bw", "rx_ops"): SIZE/MS or SIZE/MS+BURST, sizes
 * with an optional K, M or G (binary) suffix. `option` names the option in messages. */
int config_parse_bucket(const char *option, const char *key, const char *value,
			struct token_bucket_config *out);

/* True when the limiter limits something. */
bool config_rate_limited(const struct rate_limiter_config *rl);

#endif
