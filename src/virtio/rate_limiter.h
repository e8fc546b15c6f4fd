/* A device queue's rate limiter: Firecracker's two token buckets (base/token_bucket.h), bandwidth
 * in bytes and ops in requests, and the timer a throttled queue waits on. A device asks before
 * it takes work from its ring; when the buckets say not yet, the limiter arms its timerfd in the
 * device's event loop and the device stops taking chains (nothing dropped, nothing spinning);
 * when the timer fires, the limiter calls the device's resume function, which takes the work up
 * again.
 *
 * Threads: everything runs on the device's worker thread (the loop), apart from init and fini
 * (creation and destruction of the device). */
#ifndef SKIFF_VIRTIO_RATE_LIMITER_H
#define SKIFF_VIRTIO_RATE_LIMITER_H

#include "base/token_bucket.h"

#include <stdbool.h>
#include <stdint.h>

struct event_loop;

/* Which buckets an update replaces (the others keep their state, as Firecracker's PATCH). */
#define RATE_LIMITER_BANDWIDTH 1u
#define RATE_LIMITER_OPS       2u

struct rate_limiter {
	struct token_bucket bandwidth, ops;
	struct rate_limiter_config cfg; /* as configured, for logs */
	int timer_fd;			/* a timerfd, from init to fini */
	bool blocked;			/* the timer is armed: the queue waits */
	struct event_loop *loop;	/* set while attached */
	void (*resume)(void *ctx);
	void *ctx;
	const char *name;   /* "virtio-blk rootfs rate limiter", for log lines */
	uint64_t throttled; /* times a queue had to wait, for metrics and tests */
};

/* Sets the buckets up from `cfg` (NULL: no limit). 0, or -errno (no timerfd) after a logged line
 * naming `name`, which must outlive the limiter. */
int rate_limiter_init(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
		      const char *name);
void rate_limiter_fini(struct rate_limiter *rl);

/* The device is active: its timer goes into `loop`, and `resume(ctx)` runs there when it fires.
 * 0 or -errno after a logged line. */
int rate_limiter_attach(struct rate_limiter *rl, struct event_loop *loop, void (*resume)(void *),
			void *ctx);
/* The device was reset: the timer leaves the loop, disarmed. */
void rate_limiter_detach(struct rate_limiter *rl);

/* Replaces the buckets named in `which` (RATE_LIMITER_*) by cfg's, full. A queue waiting on the
 * timer is resumed at once (the new buckets decide again). 0 or -errno after a logged line. */
int rate_limiter_update(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
			unsigned which);

static inline bool rate_limiter_enabled(const struct rate_limiter *rl)
{
	return token_bucket_enabled(&rl->bandwidth) || token_bucket_enabled(&rl->ops);
}

/* May a request of `bytes` and `ops` go now? If so it is taken from the buckets and true comes
 * back; if not, the timer is armed for when it can and false comes back: the caller leaves the
 * request where it was and waits for resume. Also false while the timer is armed. */
bool rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t ops);

/* For work whose size is known only once done (a packet read from the tap): true when at least
 * one byte and one op may go (nothing is taken; charge what it was afterwards with
 * rate_limiter_charge), false with the timer armed. */
bool rate_limiter_ready(struct rate_limiter *rl);
void rate_limiter_charge(struct rate_limiter *rl, uint64_t bytes, uint64_t ops);

/* The monotonic clock the limiter reads, in ns. */
uint64_t rate_limiter_now(void);

#endif
