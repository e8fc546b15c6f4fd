/* skiff's own clock: time since the process started (taken when the program is loaded, before
 * main), for metrics' uptime and the guest's boot time. */
#ifndef SKIFF_UPTIME_H
#define SKIFF_UPTIME_H

#include <stdint.h>

/* Microseconds since the process started (CLOCK_MONOTONIC). */
uint64_t uptime_us(void);

#endif
