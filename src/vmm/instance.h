/* An instance: what Firecracker's API calls a microVM. Before it starts it is a VM description
 * that API requests (or a --config-file document, or the command line) fill in; InstanceStart
 * builds the VM from it; then it runs until the guest ends or skiff is told to stop, and can be
 * paused, resumed and sent Ctrl-Alt-Del meanwhile. Its lock serializes every change, whoever
 * asks; the main thread owns the VM's run loop and its teardown.
 *
 * Threads: instance_run() on the main thread; API requests on the API server's thread, each one
 * under the instance's lock. */
#ifndef SKIFF_INSTANCE_H
#define SKIFF_INSTANCE_H

#include "config/config_json.h"
#include "config/migration.h"
#include "config/snapshot.h"
#include "config/vm_config.h"
#include "vmm/vm.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

enum instance_state {
	INSTANCE_NOT_STARTED,
	INSTANCE_RUNNING, /* also while paused: see vm_is_paused() */
	INSTANCE_STOPPED, /* the VM has ended; skiff is on its way out */
};

struct metrics;
struct migration;

struct instance {
	pthread_mutex_t lock;
	char id[65];
	enum instance_state state;
	struct vm_config cfg;
	struct vm vm; /* valid while state is RUNNING */

	bool has_logger; /* the logger was configured once (Firecracker refuses a second time) */
	struct metrics *metrics;

	int start_eventfd; /* written by instance_start() to wake instance_run() */
	int signal_fd;	   /* the termination signals (instance_block_signals) */
	sigset_t old_sigmask;
	int exit_status;   /* set by instance_run() when the VM has ended */
	/* The command line's --restore: instance_run() loads this snapshot instead of starting. */
	const struct snapshot_load_request *restore;
	/* The command line's --migrate-from: instance_run() receives a migrated VM from this URL
	 * instead of starting. */
	const char *migrate_from;
	/* --net-override: the taps the arriving VM's interfaces use here */
	const struct snapshot_net_override *migrate_overrides;
	int nr_migrate_overrides;
	/* Live migration (vmm/migration.h), NULL until one is asked for. */
	struct migration *migration;
};

/* `id` is Firecracker's --id (NULL: "anonymous-instance"). Returns 0 or -errno. */
int instance_init(struct instance *in, const char *id);
void instance_destroy(struct instance *in);

/* Applies a logger or metrics configuration (--log-path, PUT /logger; --metrics-path,
 * PUT /metrics). Call with the lock held. 0, or -errno with a one-line reason as the thread's
 * last error (log_set_error). */
int instance_set_logger(struct instance *in, const struct logger_config *lc);
int instance_set_metrics(struct instance *in, const char *path);

/* Validates the description, builds the VM and hands it to instance_run(). Call with the lock
 * held. 0, or -errno with a one-line reason as the thread's last error: what the checks
 * refused, or "cannot start the microVM: " and the line that building the VM logged. */
int instance_start(struct instance *in);

/* Firecracker's PUT /snapshot/create: only while the VM is paused; Full snapshots only (Diff is
 * refused). PUT /snapshot/load: only into an instance nothing but its logger and metrics were
 * configured for; builds the VM the snapshot describes (taps renamed by network_overrides) with
 * its state and memory, paused unless req->resume, and hands it to instance_run(). Call with the
 * lock held. 0, or -errno with a one-line reason as the thread's last error; a load that fails
 * leaves the instance as it was. */
int instance_snapshot_create(struct instance *in, const struct snapshot_create_request *req);
int instance_snapshot_load(struct instance *in, const struct snapshot_load_request *req);

/* PUT /migration/send and /migration/receive (vmm/migration.h): call with the lock held. A
 * receive needs an instance nothing but its logger and metrics were configured for; its
 * network_overrides rename the arriving VM's taps. 0, or -errno with a one-line reason as the
 * thread's last error. */
int instance_migration_send(struct instance *in, const char *url, uint32_t downtime_ms);
int instance_migration_receive(struct instance *in, const struct migration_request *req);

/* For vmm/migration.c, with the lock held: in->vm was built (and in->cfg describes it); the
 * instance is running from here and the main thread runs the VM. */
void instance_vm_started(struct instance *in);

/* Blocks the termination signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT) on the calling thread and
 * opens a signalfd for them. Call on the main thread before any other thread exists (API server,
 * metrics, device workers, vCPUs), so that every thread inherits the mask and those signals
 * arrive only through instance_run(). 0, or -errno after one logged line. */
int instance_block_signals(struct instance *in);

/* Who else serves the instance (the API server, wired by main.c): told on the main thread once
 * the VM has ended and before it is torn down, so that no request reaches a VM being destroyed. */
struct instance_hooks {
	void (*vm_ended)(void *ctx);
	void *ctx;
};

/* The main thread's part, after instance_block_signals(): starts the instance at once when
 * `start_now` (a config file or the command line described it), else waits for InstanceStart or
 * a termination signal; runs the VM to its end, calls hooks->vm_ended (hooks may be NULL), then
 * tears everything down in order and restores the signal mask. Returns skiff's exit status. */
int instance_run(struct instance *in, bool start_now, const struct instance_hooks *hooks);

#endif
