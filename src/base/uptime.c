#include "base/uptime.h"

#include <time.h>

static uint64_t start_ns;

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Runs as the program is loaded: any user of uptime_us() pulls this object into the binary. */
__attribute__((constructor)) static void record_start(void)
{
	start_ns = monotonic_ns();
}

uint64_t uptime_us(void)
{
	return (monotonic_ns() - start_ns) / 1000;
}
