/* Metrics: one JSON object per line, appended to a file (or a FIFO) given by --metrics-path or
 * PUT /metrics, on a timer and on demand (the FlushMetrics action). Each line holds
 * skiff's cumulative counters at that moment: VM exits by reason (summed over vCPUs), per-device
 * requests, bytes and errors, the API's requests and errors, the boot time (process start to the
 * guest's first userspace write to the boot-timer device), and the VMM's RSS. */
#ifndef SKIFF_METRICS_H
#define SKIFF_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct metrics;

#define METRICS_DEFAULT_PERIOD_MS 60000 /* as Firecracker */

/* Test-only: the period in ms for the skiff program's metrics (instance.c), so that a test sees
 * the metrics thread write its periodic lines without waiting a minute per line. */
#define METRICS_TEST_PERIOD_ENV "SKIFF_TEST_METRICS_PERIOD_MS"

/* Opens `path` for appending (a FIFO without blocking). Returns 0 with *out set, or -errno with a
 * one-line reason in `err`. */
int metrics_create(struct metrics **out, const char *path);

/* From now on lines include `vm`'s figures, and one is written every `period_ms` by a thread of
 * the metrics' own. metrics_detach() writes a last line and stops the timer; call it before the
 * VM is destroyed. */
int metrics_attach(struct metrics *m, struct vm *vm, unsigned period_ms);
void metrics_detach(struct metrics *m);

/* Writes one line now; 0 or -errno. Safe from any thread. */
int metrics_flush(struct metrics *m);

/* The API server's counters: one call per request answered, `ok` for 2xx. */
void metrics_count_api_request(struct metrics *m, int status);

void metrics_destroy(struct metrics *m);

#endif
