/* Firecracker's token bucket, as a pure calculation on an injected clock: `size` tokens that
 * refill evenly over `refill_time_ms` (so at size / refill_time_ms tokens a millisecond, never
 * beyond size), plus an optional `one_time_burst` of extra tokens spent first and never refilled.
 * A rate limiter (virtio/rate_limiter.h) holds two: bandwidth (bytes) and ops (requests).
 *
 * Semantics:
 *   - a new (or reconfigured) bucket starts full;
 *   - token_bucket_wait() says how long until `tokens` can be taken (0: now);
 *   - token_bucket_take() takes them, from the burst first. It may leave the bucket in debt:
 *     a request bigger than the bucket only waits for a full bucket (it could never fit), then
 *     goes and owes the rest, which the next requests wait off. So a request of any size makes
 *     progress, and over time the rate is what was configured.
 *   - a size of 0 is no limit (Firecracker: a 0-sized bucket disables it).
 *
 * The caller passes the time (nanoseconds on a monotonic clock) to every call: unit tests drive
 * it by hand. No locks: one thread owns a bucket. */
#ifndef SKIFF_BASE_TOKEN_BUCKET_H
#define SKIFF_BASE_TOKEN_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

/* Firecracker's TokenBucket object. size 0: no limit (the other fields are then ignored). */
struct token_bucket_config {
	uint64_t size;
	uint64_t one_time_burst;
	uint64_t refill_time_ms;
};

/* Firecracker's RateLimiter object: bandwidth in bytes, ops in requests (or packets). */
struct rate_limiter_config {
	struct token_bucket_config bandwidth, ops;
};

/* The largest refill_time the configuration accepts (about 49 days): keeps the arithmetic far
 * from overflow. */
#define TOKEN_BUCKET_MAX_REFILL_MS 0xffffffffULL

struct token_bucket {
	uint64_t size;
	uint64_t burst;	    /* what is left of one_time_burst */
	uint64_t refill_ns; /* refill_time in ns */
	/* Tokens available, in units of 1/refill_ns of a token (one ns of refill adds `size`
	 * units), so refilling never loses a fraction; negative while in debt. */
	__int128 credit;
	uint64_t last_ns; /* the time credit was last brought up to date */
};

/* Sets the bucket up full (also to reconfigure it). `cfg->size` 0: no limit. */
void token_bucket_init(struct token_bucket *b, const struct token_bucket_config *cfg,
		       uint64_t now_ns);

static inline bool token_bucket_enabled(const struct token_bucket *b)
{
	return b->size != 0;
}

/* Nanoseconds until `tokens` can be taken (0: now). */
uint64_t token_bucket_wait(struct token_bucket *b, uint64_t tokens, uint64_t now_ns);

/* Takes `tokens` (the burst first, then the bucket, into debt if need be). */
void token_bucket_take(struct token_bucket *b, uint64_t tokens, uint64_t now_ns);

/* Whole tokens available now (the burst not included; 0 while in debt), for tests and logs. */
uint64_t token_bucket_available(struct token_bucket *b, uint64_t now_ns);

#endif
