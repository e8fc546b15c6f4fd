/* The token bucket on a clock the test drives: it starts full, refills evenly and never beyond
 * its size, spends the one-time burst first, lets a request bigger than the bucket go once the
 * bucket is full and makes the next ones wait off the debt, and a size of 0 is no limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/token_bucket.h"

#define MS 1000000ULL /* ns */

static void bucket(struct token_bucket *b, uint64_t size, uint64_t burst, uint64_t refill_ms,
		   uint64_t now)
{
	struct token_bucket_config c = {
	    .size = size, .one_time_burst = burst, .refill_time_ms = refill_ms};

	token_bucket_init(b, &c, now);
}

static void test_starts_full_and_refills_evenly(void **state)
{
	struct token_bucket b;

	bucket(&b, 1000, 0, 1000, 0); /* 1 token a ms */
	assert_int_equal(token_bucket_available(&b, 0), 1000);
	assert_int_equal(token_bucket_wait(&b, 1000, 0), 0);
	token_bucket_take(&b, 1000, 0);
	assert_int_equal(token_bucket_available(&b, 0), 0);
	/* 100 tokens need 100 ms */
	assert_int_equal(token_bucket_wait(&b, 100, 0), 100 * MS);
	assert_int_equal(token_bucket_wait(&b, 100, 40 * MS), 60 * MS);
	assert_int_equal(token_bucket_available(&b, 250 * MS), 250);
	/* Fractions are not lost: 0.5 ms twice is one token. */
	bucket(&b, 1000, 0, 1000, 0);
	token_bucket_take(&b, 1000, 0);
	assert_int_equal(token_bucket_available(&b, MS / 2), 0);
	assert_int_equal(token_bucket_available(&b, MS), 1);
	/* Never beyond the size, however long it waited. */
	assert_int_equal(token_bucket_available(&b, 3600000 * MS), 1000);
	assert_int_equal(token_bucket_wait(&b, 1000, 3600000 * MS), 0);
}

static void test_rate_over_many_requests(void **state)
{
	struct token_bucket b;
	uint64_t now = 0, taken = 0;

	/* 1 MiB a second in 4 KiB requests: 10 s of requests take 10 MiB (plus the full bucket
	 * at the start), whatever the steps. */
	bucket(&b, 1 << 20, 0, 1000, 0);
	while (now < 10000 * MS) {
		uint64_t w = token_bucket_wait(&b, 4096, now);

		if (w) {
			now += w;
			continue;
		}
		token_bucket_take(&b, 4096, now);
		taken += 4096;
	}
	assert_true(taken >= (11ULL << 20) - 4096);
	assert_true(taken <= (11ULL << 20) + 4096);
}

static void test_one_time_burst_first(void **state)
{
	struct token_bucket b;

	bucket(&b, 100, 1000, 1000, 0);
	/* The burst covers 1000, then the bucket's 100. */
	assert_int_equal(token_bucket_wait(&b, 1000, 0), 0);
	token_bucket_take(&b, 1000, 0);
	assert_int_equal(token_bucket_available(&b, 0), 100);
	/* Partly from the burst: 50 left in it, 50 more from the bucket. */
	bucket(&b, 100, 50, 1000, 0);
	assert_int_equal(token_bucket_wait(&b, 100, 0), 0);
	token_bucket_take(&b, 100, 0);
	assert_int_equal(token_bucket_available(&b, 0), 50);
	/* The burst is never refilled. */
	token_bucket_take(&b, 50, 0);
	assert_int_equal(token_bucket_wait(&b, 100, 1000 * MS), 0);
	token_bucket_take(&b, 100, 1000 * MS);
	assert_int_equal(token_bucket_available(&b, 1000 * MS), 0);
}

static void test_oversize_request_progresses(void **state)
{
	struct token_bucket b;

	bucket(&b, 100, 0, 100, 0); /* 1 token a ms, 100 at most */
	token_bucket_take(&b, 60, 0);
	/* 250 can never fit: it waits for a full bucket (60 ms), not forever. */
	assert_int_equal(token_bucket_wait(&b, 250, 0), 60 * MS);
	assert_int_equal(token_bucket_wait(&b, 250, 60 * MS), 0);
	token_bucket_take(&b, 250, 60 * MS);
	/* It owes 150: the next token comes 151 ms later. */
	assert_int_equal(token_bucket_available(&b, 60 * MS), 0);
	assert_int_equal(token_bucket_wait(&b, 1, 60 * MS), 151 * MS);
	assert_int_equal(token_bucket_wait(&b, 1, 211 * MS), 0);
	/* A huge request cannot overflow anything. */
	token_bucket_take(&b, UINT64_MAX, 211 * MS);
	token_bucket_take(&b, UINT64_MAX, 211 * MS);
	assert_true(token_bucket_wait(&b, 1, 211 * MS) > 3600000 * MS);
}

static void test_zero_size_is_no_limit(void **state)
{
	struct token_bucket b;

	bucket(&b, 0, 0, 0, 0);
	assert_false(token_bucket_enabled(&b));
	token_bucket_take(&b, UINT64_MAX, 0);
	assert_int_equal(token_bucket_wait(&b, UINT64_MAX, 0), 0);
}

static void test_reconfigure_starts_full(void **state)
{
	struct token_bucket b;

	bucket(&b, 100, 0, 1000, 0);
	token_bucket_take(&b, 500, 0);
	assert_true(token_bucket_wait(&b, 1, 0) > 0);
	bucket(&b, 10000, 0, 1000, 5 * MS);
	assert_int_equal(token_bucket_available(&b, 5 * MS), 10000);
	assert_int_equal(token_bucket_wait(&b, 10000, 5 * MS), 0);
	/* Extremes: the largest size and refill time the configuration takes. */
	bucket(&b, UINT64_MAX, 0, TOKEN_BUCKET_MAX_REFILL_MS, 0);
	token_bucket_take(&b, UINT64_MAX, 0);
	assert_int_equal(token_bucket_available(&b, UINT64_MAX), UINT64_MAX);
	/* Time going backwards changes nothing. */
	bucket(&b, 100, 0, 100, 50 * MS);
	token_bucket_take(&b, 100, 50 * MS);
	assert_int_equal(token_bucket_available(&b, 10 * MS), 0);
	assert_int_equal(token_bucket_available(&b, 60 * MS), 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_starts_full_and_refills_evenly),
	    cmocka_unit_test(test_rate_over_many_requests),
	    cmocka_unit_test(test_one_time_burst_first),
	    cmocka_unit_test(test_oversize_request_progresses),
	    cmocka_unit_test(test_zero_size_is_no_limit),
	    cmocka_unit_test(test_reconfigure_starts_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
