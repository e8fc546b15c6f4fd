/* The metrics line, built with jansson and written with one write() so that a reader of a FIFO
 * sees whole lines. Key order is fixed (jansson keeps insertion order):
 *
 *   {"utc_timestamp_ms":N,"uptime_ms":N,
 *    "vcpu":{"exits":{"io_in":N,...,"other":N},"per_vcpu":[{"io_in":N,...},...]},
 *    "block":{"<disk id>":{"read_requests":N,...,"unsupported":N},...},
 *    "net":{"<iface id>":{"rx_packets":N,...,"tx_errors":N},...},
 *    "api":{"requests":N,"errors":N},
 *    "boot_time_us":N|null,
 *    "vmm":{"rss_bytes":N,"guest_resident_bytes":N,"metrics_write_failures":N}}
 *
 * Without an attached VM only utc_timestamp_ms, uptime_ms, api, boot_time_us (null) and vmm
 * (without guest_resident_bytes) are there. */
#include "vmm/metrics.h"
#include "base/device.h"
#include "base/log.h"
#include "base/output_file.h"
#include "base/thread.h"
#include "base/uptime.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct metrics {
	int fd;
	/* /proc/self/statm, opened once: the threads that write lines (the flusher, the main
	 * thread's last line) have no open() in their seccomp filters (base/seccomp.h). */
	int statm_fd;
	char path[256]; /* for the one log line about failed writes */

	/* Serializes lines, and guards everything below. */
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the flush thread's timer (CLOCK_MONOTONIC) and stop signal */
	struct vm *vm;
	unsigned period_ms;
	bool has_thread, stop;
	pthread_t thread;
	uint64_t write_failures;

	/* Counted by the API server's thread without the lock. */
	uint64_t api_requests, api_errors;
};

static const char *const exit_names[VCPU_EXIT_NR] = {
	[VCPU_EXIT_IO_IN] = "io_in",
	[VCPU_EXIT_IO_OUT] = "io_out",
	[VCPU_EXIT_MMIO_READ] = "mmio_read",
	[VCPU_EXIT_MMIO_WRITE] = "mmio_write",
	[VCPU_EXIT_HLT] = "hlt",
	[VCPU_EXIT_INTR] = "intr",
	[VCPU_EXIT_SYSTEM_EVENT] = "system_event",
	[VCPU_EXIT_SHUTDOWN] = "shutdown",
	[VCPU_EXIT_INTERNAL_ERROR] = "internal_error",
	[VCPU_EXIT_FAIL_ENTRY] = "fail_entry",
	[VCPU_EXIT_OTHER] = "other",
};

/* A line a FIFO cannot take fails at once and is counted (vmm/output_file.h). */
int metrics_create(struct metrics **out, const char *path)
{
	struct metrics *m;
	pthread_condattr_t ca;
	int fd = output_file_open(path, "the metrics file ");

	if (fd < 0)
		return fd;
	m = calloc(1, sizeof(*m));
	if (!m) {
		close(fd);
		return log_set_error(-ENOMEM, "out of memory");
	}
	m->fd = fd;
	m->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	snprintf(m->path, sizeof(m->path), "%s", path);
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->wake, &ca);
	pthread_condattr_destroy(&ca);
	*out = m;
	return 0;
}

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void set_u64(json_t *obj, const char *key, uint64_t v)
{
	json_object_set_new(obj, key, json_integer((json_int_t)v));
}

static json_t *exits_json(const uint64_t *exits)
{
	json_t *o = json_object();

	for (int k = 0; k < VCPU_EXIT_NR; k++)
		set_u64(o, exit_names[k], exits[k]);
	return o;
}

static json_t *vcpu_json(struct vm *vm)
{
	uint64_t total[VCPU_EXIT_NR] = {0}, one[VCPU_EXIT_NR];
	json_t *o = json_object(), *per = json_array();

	for (int i = 0; vm->vcpus && i < vm->nr_vcpus; i++) {
		for (int k = 0; k < VCPU_EXIT_NR; k++) {
			one[k] = load(&vm->vcpus[i].exits[k]);
			total[k] += one[k];
		}
		json_array_append_new(per, exits_json(one));
	}
	json_object_set_new(o, "exits", exits_json(total));
	json_object_set_new(o, "per_vcpu", per);
	return o;
}

/* The metrics objects that devices' stats go into (struct vm_device_ops.stats_group), in the
 * line's order: disks and interfaces by their config id ("disk0", "net0" unless given). */
static const char *const device_groups[] = {"block", "net"};

static void devices_json(struct vm *vm, json_t *line)
{
	for (size_t g = 0; g < sizeof(device_groups) / sizeof(device_groups[0]); g++) {
		json_t *group = json_object();
		struct vm_device *dev;

		vm_devices_for_each(&vm->devices, dev) {
			const char *name = dev->ops->stats_group;
			json_t *stats;

			if (!name || strcmp(name, device_groups[g]) != 0)
				continue;
			stats = vm_device_stats(dev);
			if (stats)
				json_object_set_new(group, vm_device_label(dev), stats);
		}
		json_object_set_new(line, device_groups[g], group);
	}
}

/* The boot timer's stats: {"boot_time_us": N} once the guest said it is up. */
static json_t *boot_time_json(struct vm *vm)
{
	struct vm_device *bt = vm ? vm_device_find(&vm->devices, VM_DEVICE_BOOT_TIMER, NULL) : NULL;
	json_t *stats = bt ? vm_device_stats(bt) : NULL;
	json_t *us = stats ? json_object_get(stats, "boot_time_us") : NULL;

	us = us ? json_incref(us) : json_null();
	json_decref(stats);
	return us;
}

static uint64_t rss_bytes(const struct metrics *m)
{
	unsigned long size, resident;
	char buf[128];
	ssize_t n = m->statm_fd >= 0 ? pread(m->statm_fd, buf, sizeof(buf) - 1, 0) : -1;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
		return 0;
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static json_t *build_line(struct metrics *m)
{
	json_t *line = json_object(), *api = json_object(), *vmm = json_object();
	struct vm *vm = m->vm;
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	set_u64(line, "utc_timestamp_ms",
		(uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000);
	set_u64(line, "uptime_ms", uptime_us() / 1000);
	if (vm) {
		json_object_set_new(line, "vcpu", vcpu_json(vm));
		devices_json(vm, line);
	}
	set_u64(api, "requests", load(&m->api_requests));
	set_u64(api, "errors", load(&m->api_errors));
	json_object_set_new(line, "api", api);
	json_object_set_new(line, "boot_time_us", boot_time_json(vm));
	set_u64(vmm, "rss_bytes", rss_bytes(m));
	if (vm)
		set_u64(vmm, "guest_resident_bytes", vm_guest_resident_bytes(vm));
	set_u64(vmm, "metrics_write_failures", m->write_failures);
	json_object_set_new(line, "vmm", vmm);
	return line;
}

/* With m->lock held. */
static int flush_locked(struct metrics *m)
{
	json_t *line = build_line(m);
	char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t len;
	ssize_t n;
	int ret = 0;

	json_decref(line);
	if (!text)
		return -ENOMEM;
	len = strlen(text);
	text[len] = '\n'; /* json_dumps' terminating NUL becomes the newline; not a string now */
	n = write(m->fd, text, len + 1);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != len + 1)
		ret = -EAGAIN; /* the FIFO took part of the line: its reader sees it cut */
	free(text);
	if (ret && m->write_failures++ == 0)
		log_warn("metrics: cannot write to %s: %s; metrics go on, and further failures "
			 "are only counted (vmm.metrics_write_failures)",
			 m->path, strerror(-ret));
	return ret;
}

int metrics_flush(struct metrics *m)
{
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = flush_locked(m);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static void add_ms(struct timespec *t, unsigned ms)
{
	t->tv_sec += ms / 1000;
	t->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static bool before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void *flush_thread(void *arg)
{
	struct metrics *m = arg;
	struct timespec next, now;

	pthread_mutex_lock(&m->lock);
	clock_gettime(CLOCK_MONOTONIC, &next);
	add_ms(&next, m->period_ms);
	while (!m->stop) {
		int r = pthread_cond_timedwait(&m->wake, &m->lock, &next);

		if (m->stop || r != ETIMEDOUT)
			continue;
		flush_locked(m);
		add_ms(&next, m->period_ms);
		/* After a long stall (a suspended host), one line, not a burst of them. */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (before(&next, &now)) {
			next = now;
			add_ms(&next, m->period_ms);
		}
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

int metrics_attach(struct metrics *m, struct vm *vm, unsigned period_ms)
{
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	if (m->vm) {
		pthread_mutex_unlock(&m->lock);
		return -EBUSY;
	}
	m->vm = vm;
	m->period_ms = period_ms;
	m->stop = false;
	if (period_ms) {
		/* The thread takes no signals (base/thread.h): skiff's run loop reads them from a
		 * signalfd. */
		ret = thread_start(THREAD_METRICS, "skiff-metrics", flush_thread, m, &m->thread);
		m->has_thread = ret == 0;
		if (ret) {
			log_error("metrics: cannot start the flush thread: %s", strerror(-ret));
			m->vm = NULL;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

void metrics_detach(struct metrics *m)
{
	pthread_mutex_lock(&m->lock);
	if (!m->vm) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	m->stop = true;
	pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
	if (m->has_thread)
		pthread_join(m->thread, NULL);
	pthread_mutex_lock(&m->lock);
	m->has_thread = false;
	flush_locked(m);
	m->vm = NULL;
	pthread_mutex_unlock(&m->lock);
}

void metrics_count_api_request(struct metrics *m, int status)
{
	if (!m)
		return;
	__atomic_fetch_add(&m->api_requests, 1, __ATOMIC_RELAXED);
	if (status < 200 || status > 299)
		__atomic_fetch_add(&m->api_errors, 1, __ATOMIC_RELAXED);
}

void metrics_destroy(struct metrics *m)
{
	if (!m)
		return;
	metrics_detach(m);
	close(m->fd);
	if (m->statm_fd >= 0)
		close(m->statm_fd);
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
