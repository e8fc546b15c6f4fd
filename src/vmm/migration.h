/* Live migration between two skiff processes (pre-copy), over the stream of
 * vmm/migration_stream.h:
 *
 * - the destination, a fresh skiff (PUT /migration/receive, or skiff run --migrate-from),
 *   listens, takes one source, holds the memory it sends in a memfd, and builds the VM from the
 *   final state exactly as a snapshot load does; it runs it only once the source says GO, and
 *   a stream that fails anywhere before leaves it as it was (nothing half-built ever runs);
 * - the source (PUT /migration/send) turns on the dirty log, sends all of memory while the VM
 *   runs, then what was dirtied meanwhile, again and again, until the measured throughput says
 *   the rest fits in downtime_ms or MIGRATION_MAX_ITERATIONS passes were made; then it pauses
 *   the VM (its devices finish what they took from their rings), sends the last pages and the
 *   state, and on the destination's READY says GO and ends skiff with status 0. Any failure
 *   (destination gone or refusing, a timeout) resumes the VM where it was; the reason is in
 *   GET /migration and the log.
 *
 * Threads: one migration thread per instance at a time (THREAD_MIGRATION, started by the API
 * thread), or the main thread for --migrate-from. The status has its own lock: reading it never
 * waits for the migration. The thread takes the instance's lock only to read the description,
 * for the final pause-save-handoff, and to build the arriving VM. */
#ifndef SKIFF_MIGRATION_H
#define SKIFF_MIGRATION_H

#include "config/snapshot.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct instance;

#define MIGRATION_MAX_ITERATIONS   30
#define MIGRATION_TIMEOUT_MS	   10000 /* without progress on the socket */

enum migration_state {
	MIGRATION_NONE,	     /* no migration was asked for */
	MIGRATION_LISTENING, /* the destination waits for its source */
	MIGRATION_ACTIVE,    /* memory and state on their way */
	MIGRATION_COMPLETED,
	MIGRATION_FAILED,
};

struct migration_status {
	enum migration_state state;
	bool receiving; /* this skiff is the destination */
	char url[128];
	uint32_t downtime_limit_ms;
	uint32_t iterations;	  /* pre-copy passes after the first full one */
	uint64_t bytes;		  /* sent (source) or received (destination), framing included */
	uint64_t pages;		  /* pages sent or received */
	uint64_t remaining_pages; /* dirty pages at the last look (source) */
	double throughput_mib_s;  /* measured on the last pass */
	double downtime_ms;	  /* paused at the source until GO was sent (source); STATE
				     received until GO (destination) */
	double total_ms;	  /* from the request to the handoff */
	char error[384];
};

struct migration {
	pthread_mutex_t lock; /* status */
	struct migration_status status;
	pthread_t thread;
	bool thread_started;
	bool cancel; /* set by migration_finish(): the thread gives up within ~100 ms */
	int listen_fd;
	uint64_t started_ns;
	/* A destination's taps renamed (PUT /migration/receive's network_overrides). */
	int nr_overrides;
	struct snapshot_net_override overrides[VM_CONFIG_MAX_NETS];
};

const char *migration_state_name(enum migration_state s);

/* Call with the instance's lock held. send: the VM must be running (or paused) and no
 * migration under way; starts the migration thread. receive: the instance must be fresh
 * (nothing but the logger and metrics configured: the caller checks); listens at once (a bad
 * URL or a path in use fails here) and waits for the source on the migration thread; the
 * arriving VM's taps are renamed by `overrides` (an iface_id it does not have refuses the
 * source, with that reason, before any memory moves). 0, or -errno with a one-line reason as
 * the thread's last error. */
int migration_start_send(struct instance *in, const char *url, uint32_t downtime_ms);
int migration_start_receive(struct instance *in, const char *url,
			    const struct snapshot_net_override *overrides, int nr_overrides);
/* --migrate-from: the same on the calling thread, without the instance's lock held, to the
 * end: 0 once the VM is built and handed to the instance (running), or -errno with the reason
 * as the thread's last error. */
int migration_receive(struct instance *in, const char *url,
		      const struct snapshot_net_override *overrides, int nr_overrides);

/* Whether a migration is listening or under way (the description must not change meanwhile;
 * no snapshot may take the dirty log). */
bool migration_busy(struct instance *in);
struct migration_status migration_get_status(struct instance *in);

/* Stops a migration thread (cancel) and waits for it; call without the instance's lock, before
 * the VM is destroyed. Safe when there is none. */
void migration_finish(struct instance *in);
void migration_free(struct instance *in);

#endif
