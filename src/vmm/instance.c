#include "vmm/instance.h"
#include "base/kvm.h"
#include "base/log.h"
#include "base/seccomp.h"
#include "vmm/metrics.h"
#include "vmm/migration.h"
#include "vmm/snapshot.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void restore_signals(struct instance *in)
{
	if (in->signal_fd < 0)
		return;
	close(in->signal_fd);
	in->signal_fd = -1;
	pthread_sigmask(SIG_SETMASK, &in->old_sigmask, NULL);
}

int instance_init(struct instance *in, const char *id)
{
	memset(in, 0, sizeof(*in));
	pthread_mutex_init(&in->lock, NULL);
	snprintf(in->id, sizeof(in->id), "%s", id ? id : "anonymous-instance");
	vm_config_init_defaults(&in->cfg);
	in->state = INSTANCE_NOT_STARTED;
	in->signal_fd = -1;
	in->start_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (in->start_eventfd < 0) {
		int err = errno;

		log_error("eventfd: %s", strerror(err));
		pthread_mutex_destroy(&in->lock);
		return -err;
	}
	return 0;
}

void instance_destroy(struct instance *in)
{
	migration_free(in);
	if (in->metrics)
		metrics_destroy(in->metrics);
	in->metrics = NULL;
	if (in->start_eventfd >= 0)
		close(in->start_eventfd);
	in->start_eventfd = -1;
	restore_signals(in);
	pthread_mutex_destroy(&in->lock);
}

int instance_set_logger(struct instance *in, const struct logger_config *lc)
{
	if (in->has_logger)
		return log_set_error(-EINVAL, "the logger is already configured");
	if (lc->log_path[0]) {
		int ret = log_set_path(lc->log_path);

		if (ret)
			return ret;
	}
	if (lc->has_level)
		log_set_level((enum log_level)lc->level);
	log_set_show_level(lc->show_level);
	log_set_show_origin(lc->show_log_origin);
	in->has_logger = true;
	return 0;
}

int instance_set_metrics(struct instance *in, const char *path)
{
	struct metrics *m;
	int ret;

	if (in->metrics)
		return log_set_error(-EINVAL, "metrics are already configured");
	ret = metrics_create(&m, path);
	if (ret)
		return ret;
	in->metrics = m;
	return 0;
}

static void warn_if_software_kvm(const struct vm_config *cfg)
{
	char module[32];

	if ((!cfg->kernel_path && !cfg->firmware_path) ||
	    !kvm_host_is_software(module, sizeof(module)))
		return;
	log_warn("this host has no hardware virtualization (no vmx/svm in /proc/cpuinfo%s%s): "
		 "KVM emulates guest kernel code instruction by instruction, so the guest will run "
		 "thousands of times slower than native and may take minutes to boot",
		 module[0] ? "; KVM module " : "", module);
}

/* The VM is built: metrics follow it and the main thread runs it. */
static void started(struct instance *in)
{
	const char *test_period = getenv(METRICS_TEST_PERIOD_ENV);
	int asked = test_period ? atoi(test_period) : 0;
	unsigned period = asked > 0 ? (unsigned)asked : METRICS_DEFAULT_PERIOD_MS;

	if (in->metrics)
		metrics_attach(in->metrics, &in->vm, period);
	in->state = INSTANCE_RUNNING;
	if (eventfd_write(in->start_eventfd, 1) < 0)
		log_warn("cannot wake the main thread: %s", strerror(errno));
}

void instance_vm_started(struct instance *in)
{
	started(in);
}

/* instance_start(); *logged says whether its reason is already in the log (building the VM
 * logs its own; the checks before it do not). */
static int start(struct instance *in, bool *logged)
{
	int ret;

	*logged = false;
	if (in->state != INSTANCE_NOT_STARTED)
		return log_set_error(-EINVAL, "the microVM has already been started");
	if (migration_busy(in))
		return log_set_error(-EBUSY, "a migration is being received");
	if (!in->cfg.kernel_path && !in->cfg.raw_path && !in->cfg.raw_image &&
	    !in->cfg.firmware_path)
		return log_set_error(-EINVAL, "no boot source: PUT /boot-source first");
	ret = vm_check_config(&in->cfg, 0, host_memory_mib());
	if (ret)
		return ret;
	ret = vm_create(&in->vm, &in->cfg);
	if (ret) {
		char why[512];

		/* Building the VM logged its reason where it decided to fail. */
		*logged = log_last_error_logged();
		snprintf(why, sizeof(why), "%s",
			 log_last_error()[0] ? log_last_error() : strerror(-ret));
		return log_set_error(ret, "cannot start the microVM: %s", why);
	}
	/* After the build, so that a kernel that is not one is said first and alone. */
	warn_if_software_kvm(&in->cfg);
	started(in);
	return 0;
}

int instance_snapshot_create(struct instance *in, const struct snapshot_create_request *req)
{
	if (in->state != INSTANCE_RUNNING)
		return log_set_error(-EINVAL, "the microVM is not running: there is nothing to "
					      "snapshot");
	if (!vm_is_paused(&in->vm))
		return log_set_error(-EINVAL, "the microVM must be paused (PATCH /vm "
					      "{\"state\": \"Paused\"}) to take a snapshot");
	if (migration_busy(in))
		return log_set_error(-EBUSY, "a migration is under way: no snapshot meanwhile");
	return snapshot_create(&in->vm, req->snapshot_path, req->mem_path, req->diff);
}

/* Whether anything of the VM was described yet (a snapshot load must come first). */
static bool described(const struct instance *in)
{
	struct vm_config fresh;

	vm_config_init_defaults(&fresh);
	return memcmp(&fresh, &in->cfg, sizeof(fresh)) != 0;
}

int instance_snapshot_load(struct instance *in, const struct snapshot_load_request *req)
{
	struct vm_config *cfg;
	struct snapshot s;
	int ret;

	if (in->state != INSTANCE_NOT_STARTED)
		return log_set_error(-EINVAL, "a snapshot loads only into a microVM not yet "
					      "started");
	if (migration_busy(in))
		return log_set_error(-EBUSY, "a migration is being received");
	if (described(in))
		return log_set_error(-EINVAL, "a snapshot loads only before the microVM is "
					      "described (only the logger and metrics may come "
					      "first)");
	cfg = malloc(sizeof(*cfg));
	if (!cfg)
		return log_set_error(-ENOMEM, "out of memory");
	ret = snapshot_open(&s, req->snapshot_path, cfg);
	if (ret) {
		free(cfg);
		return ret;
	}
	cfg->track_dirty_pages = req->track_dirty_pages;
	ret = config_apply_net_overrides(cfg, req->overrides, req->nr_overrides, "the snapshot");
	if (!ret)
		ret = vm_check_config(cfg, 0, host_memory_mib());
	if (!ret) {
		vm_config_copy(&in->cfg, cfg);
		ret = req->uffd ? snapshot_restore_uffd(&in->vm, &s, &in->cfg, req->mem_path,
							req->clock_realtime)
				: snapshot_restore(&in->vm, &s, &in->cfg, req->mem_path,
						   req->clock_realtime);
		if (ret)
			vm_config_init_defaults(&in->cfg);
	}
	snapshot_close(&s);
	free(cfg);
	if (ret)
		return ret;
	/* Paused unless asked to resume: its vCPUs park before their first KVM_RUN. */
	if (!req->resume && vm_pause(&in->vm))
		log_warn("the restored microVM could not be paused: %s", log_last_error());
	log_info("snapshot: restored from %s%s", req->snapshot_path,
		 req->resume ? ", running" : ", paused");
	started(in);
	return 0;
}

int instance_migration_send(struct instance *in, const char *url, uint32_t downtime_ms)
{
	return migration_start_send(in, url, downtime_ms);
}

int instance_migration_receive(struct instance *in, const struct migration_request *req)
{
	if (in->state == INSTANCE_NOT_STARTED && described(in))
		return log_set_error(-EINVAL, "a migration is received only before the microVM is "
					      "described (only the logger and metrics may come "
					      "first)");
	return migration_start_receive(in, req->url, req->overrides, req->nr_overrides);
}

int instance_start(struct instance *in)
{
	bool logged;

	return start(in, &logged);
}

/* Before InstanceStart: sleeps until it comes or a termination signal does. Returns 0 when
 * started, else the signal number. */
static int wait_for_start(struct instance *in, int sfd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN};
	int signo = 0;

	if (ep < 0) {
		log_error("epoll: %s", strerror(errno));
		return SIGTERM;
	}
	ev.data.fd = in->start_eventfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, in->start_eventfd, &ev);
	ev.data.fd = sfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	for (;;) {
		struct epoll_event got;
		int n = epoll_wait(ep, &got, 1, -1);

		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait: %s", strerror(errno));
			signo = SIGTERM;
			break;
		}
		if (n <= 0)
			continue;
		if (got.data.fd == sfd) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				signo = (int)si.ssi_signo;
				break;
			}
			continue;
		}
		pthread_mutex_lock(&in->lock);
		n = in->state == INSTANCE_RUNNING;
		pthread_mutex_unlock(&in->lock);
		if (n)
			break;
	}
	close(ep);
	return signo;
}

int instance_block_signals(struct instance *in)
{
	sigset_t stop_set;
	int err;

	sigemptyset(&stop_set);
	for (unsigned i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
		sigaddset(&stop_set, stop_signals[i]);
	pthread_sigmask(SIG_BLOCK, &stop_set, &in->old_sigmask);
	in->signal_fd = signalfd(-1, &stop_set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (in->signal_fd < 0) {
		err = errno;
		log_error("signalfd: %s", strerror(err));
		pthread_sigmask(SIG_SETMASK, &in->old_sigmask, NULL);
		return -err;
	}
	return 0;
}

int instance_run(struct instance *in, bool start_now, const struct instance_hooks *hooks)
{
	int signo, status;

	if (in->signal_fd < 0) {
		log_error("instance_run: the termination signals were not blocked first");
		return 1;
	}
	if (start_now) {
		bool logged;

		if (in->migrate_from) {
			/* Receiving takes the lock itself, only to build the VM. */
			logged = true; /* the migration logs its failure */
			status = migration_receive(in, in->migrate_from, in->migrate_overrides,
						   in->nr_migrate_overrides)
					 ? 1
					 : 0;
		} else {
			pthread_mutex_lock(&in->lock);
			if (in->restore) {
				/* Its reason is only recorded (log_set_error): it is said below. */
				logged = false;
				status = instance_snapshot_load(in, in->restore) ? 1 : 0;
			} else
				status = start(in, &logged) ? 1 : 0;
			pthread_mutex_unlock(&in->lock);
		}
		/* Here the failure ends skiff: its reason is logged, unless that was done already.
		 */
		if (status && !logged)
			log_error("%s", log_last_error());
		if (status)
			goto out;
	}
	/* The main thread's own filter, once the VM is described (and built, when started now),
	 * before any vCPU runs: the vCPU threads it starts inherit it under their own. */
	if (seccomp_install(THREAD_MAIN, "skiff")) {
		status = 1;
		if (in->state == INSTANCE_RUNNING)
			goto ended;
		goto out;
	}
	signo = wait_for_start(in, in->signal_fd);
	if (signo) {
		log_info("stopped by signal %s before the microVM started", strsignal(signo));
		status = 128 + signo;
		migration_finish(in);
		goto out;
	}

	status = vm_run(&in->vm);
ended:

	/* The VM has ended: no request may reach it any more. A request being handled finishes
	 * first (it holds the lock). */
	pthread_mutex_lock(&in->lock);
	in->state = INSTANCE_STOPPED;
	pthread_mutex_unlock(&in->lock);
	if (hooks && hooks->vm_ended)
		hooks->vm_ended(hooks->ctx);
	/* A migration thread still at work gives up before the VM goes. */
	migration_finish(in);
	if (in->metrics)
		metrics_detach(in->metrics);
	vm_destroy(&in->vm);
out:
	restore_signals(in);
	in->exit_status = status;
	return status;
}
