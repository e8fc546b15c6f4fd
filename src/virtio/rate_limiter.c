#include "virtio/rate_limiter.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

uint64_t rate_limiter_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int open_timer(struct rate_limiter *rl)
{
	if (rl->timer_fd >= 0)
		return 0;
	rl->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (rl->timer_fd < 0) {
		int err = -errno;

		log_error("%s: timerfd: %s", rl->name, strerror(-err));
		return err;
	}
	return 0;
}

int rate_limiter_init(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
		      const char *name)
{
	uint64_t now = rate_limiter_now();

	memset(rl, 0, sizeof(*rl));
	rl->timer_fd = -1;
	rl->name = name;
	if (cfg)
		rl->cfg = *cfg;
	token_bucket_init(&rl->bandwidth, &rl->cfg.bandwidth, now);
	token_bucket_init(&rl->ops, &rl->cfg.ops, now);
	/* Always, even without a limit yet: a PATCH may set one later, on the worker thread,
	 * whose seccomp filter has no timerfd_create. */
	return open_timer(rl);
}

void rate_limiter_fini(struct rate_limiter *rl)
{
	if (rl->timer_fd >= 0)
		close(rl->timer_fd);
	rl->timer_fd = -1;
}

static void disarm(struct rate_limiter *rl)
{
	struct itimerspec off = {0};

	if (rl->timer_fd >= 0)
		timerfd_settime(rl->timer_fd, 0, &off, NULL);
	rl->blocked = false;
}

static void timer_fired(void *ctx, uint32_t events)
{
	struct rate_limiter *rl = ctx;
	uint64_t expirations;

	if (read(rl->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_debug("%s: reading the timer: %s", rl->name, strerror(errno));
	if (!rl->blocked)
		return;
	rl->blocked = false;
	rl->resume(rl->ctx);
}

static int watch(struct rate_limiter *rl)
{
	int err;

	if (!rl->loop || rl->timer_fd < 0)
		return 0;
	err = event_loop_add(rl->loop, rl->timer_fd, EPOLLIN, timer_fired, rl);
	if (err == -EEXIST)
		return 0;
	if (err < 0)
		log_error("%s: cannot watch the timer: %s", rl->name, strerror(-err));
	return err;
}

int rate_limiter_attach(struct rate_limiter *rl, struct event_loop *loop, void (*resume)(void *),
			void *ctx)
{
	rl->loop = loop;
	rl->resume = resume;
	rl->ctx = ctx;
	return watch(rl);
}

void rate_limiter_detach(struct rate_limiter *rl)
{
	disarm(rl);
	if (rl->loop && rl->timer_fd >= 0)
		event_loop_del(rl->loop, rl->timer_fd);
	rl->loop = NULL;
}

int rate_limiter_update(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
			unsigned which)
{
	uint64_t now = rate_limiter_now();
	bool was_blocked = rl->blocked;
	int err;

	if (which & RATE_LIMITER_BANDWIDTH) {
		rl->cfg.bandwidth = cfg->bandwidth;
		token_bucket_init(&rl->bandwidth, &cfg->bandwidth, now);
	}
	if (which & RATE_LIMITER_OPS) {
		rl->cfg.ops = cfg->ops;
		token_bucket_init(&rl->ops, &cfg->ops, now);
	}
	if (rate_limiter_enabled(rl) && (err = watch(rl)))
		return err;
	disarm(rl);
	if (was_blocked && rl->resume)
		rl->resume(rl->ctx);
	return 0;
}

static bool wait_for(struct rate_limiter *rl, uint64_t wait_ns)
{
	struct itimerspec when = {0};

	if (!wait_ns)
		return true;
	if (rl->timer_fd < 0 || !rl->loop) {
		/* Cannot happen for an enabled limiter of an active device: refuse to wait
		 * forever, let it go. */
		return true;
	}
	when.it_value.tv_sec = (time_t)(wait_ns / 1000000000ULL);
	when.it_value.tv_nsec = (long)(wait_ns % 1000000000ULL);
	if (timerfd_settime(rl->timer_fd, 0, &when, NULL) < 0) {
		log_error("%s: arming the timer: %s", rl->name, strerror(errno));
		return true;
	}
	rl->blocked = true;
	__atomic_fetch_add(&rl->throttled, 1, __ATOMIC_RELAXED);
	return false;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

bool rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t ops)
{
	uint64_t now;

	if (rl->blocked)
		return false;
	if (!rate_limiter_enabled(rl))
		return true;
	now = rate_limiter_now();
	if (!wait_for(rl, max_u64(token_bucket_wait(&rl->bandwidth, bytes, now),
				  token_bucket_wait(&rl->ops, ops, now))))
		return false;
	token_bucket_take(&rl->bandwidth, bytes, now);
	token_bucket_take(&rl->ops, ops, now);
	return true;
}

bool rate_limiter_ready(struct rate_limiter *rl)
{
	uint64_t now;

	if (rl->blocked)
		return false;
	if (!rate_limiter_enabled(rl))
		return true;
	now = rate_limiter_now();
	return wait_for(rl, max_u64(token_bucket_wait(&rl->bandwidth, 1, now),
				    token_bucket_wait(&rl->ops, 1, now)));
}

void rate_limiter_charge(struct rate_limiter *rl, uint64_t bytes, uint64_t ops)
{
	uint64_t now;

	if (!rate_limiter_enabled(rl))
		return;
	now = rate_limiter_now();
	token_bucket_take(&rl->bandwidth, bytes, now);
	token_bucket_take(&rl->ops, ops, now);
}
