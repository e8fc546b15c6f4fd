#include "base/token_bucket.h"

#include <string.h>

/* Debt never grows beyond this (a guest cannot overflow the counter by asking for 2^64 bytes
 * again and again; it would wait for ages long before). */
#define MAX_DEBT ((__int128)1 << 120)

static __int128 capacity(const struct token_bucket *b)
{
	return (__int128)b->size * b->refill_ns;
}

static void refill(struct token_bucket *b, uint64_t now_ns)
{
	__int128 cap = capacity(b);

	if (now_ns <= b->last_ns)
		return;
	/* Once full, the time since does not matter: no product of a huge gap is formed. */
	if (b->credit < cap) {
		unsigned __int128 gap = now_ns - b->last_ns;
		__int128 room = cap - b->credit;

		if (gap >= (unsigned __int128)room / b->size + 1)
			b->credit = cap;
		else
			b->credit += (__int128)(gap * b->size);
	}
	b->last_ns = now_ns;
}

void token_bucket_init(struct token_bucket *b, const struct token_bucket_config *cfg,
		       uint64_t now_ns)
{
	memset(b, 0, sizeof(*b));
	if (!cfg->size || !cfg->refill_time_ms)
		return;
	b->size = cfg->size;
	b->burst = cfg->one_time_burst;
	b->refill_ns = cfg->refill_time_ms * 1000000ULL;
	b->credit = capacity(b);
	b->last_ns = now_ns;
}

uint64_t token_bucket_wait(struct token_bucket *b, uint64_t tokens, uint64_t now_ns)
{
	__int128 need, missing;

	if (!b->size || tokens <= b->burst)
		return 0;
	tokens -= b->burst;
	if (tokens > b->size)
		tokens = b->size; /* it only waits for a full bucket */
	refill(b, now_ns);
	need = (__int128)tokens * b->refill_ns;
	if (b->credit >= need)
		return 0;
	missing = need - b->credit;
	missing = (missing + b->size - 1) / b->size; /* ns, rounded up */
	return missing > (__int128)UINT64_MAX ? UINT64_MAX : (uint64_t)missing;
}

void token_bucket_take(struct token_bucket *b, uint64_t tokens, uint64_t now_ns)
{
	uint64_t from_burst;

	if (!b->size)
		return;
	from_burst = tokens < b->burst ? tokens : b->burst;
	b->burst -= from_burst;
	tokens -= from_burst;
	if (!tokens)
		return;
	refill(b, now_ns);
	b->credit -= (__int128)tokens * b->refill_ns;
	if (b->credit < -MAX_DEBT)
		b->credit = -MAX_DEBT;
}

uint64_t token_bucket_available(struct token_bucket *b, uint64_t now_ns)
{
	if (!b->size)
		return UINT64_MAX;
	refill(b, now_ns);
	return b->credit <= 0 ? 0 : (uint64_t)(b->credit / b->refill_ns);
}
