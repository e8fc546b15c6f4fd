#include "vmm/migration.h"
#include "base/log.h"
#include "base/state.h"
#include "base/thread.h"
#include "config/vm_config.h"
#include "version.h"
#include "vmm/dirty_log.h"
#include "vmm/instance.h"
#include "vmm/migration_stream.h"
#include "vmm/snapshot.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE MIGRATION_PAGE_SIZE

const char *migration_state_name(enum migration_state s)
{
	switch (s) {
	case MIGRATION_NONE:
		return "None";
	case MIGRATION_LISTENING:
		return "Listening";
	case MIGRATION_ACTIVE:
		return "Active";
	case MIGRATION_COMPLETED:
		return "Completed";
	case MIGRATION_FAILED:
		return "Failed";
	}
	return "unknown";
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double ms_since(uint64_t t0)
{
	return (double)(now_ns() - t0) / 1e6;
}

static struct migration *get(struct instance *in)
{
	if (!in->migration) {
		in->migration = calloc(1, sizeof(*in->migration));
		if (!in->migration)
			return NULL;
		pthread_mutex_init(&in->migration->lock, NULL);
		in->migration->listen_fd = -1;
	}
	return in->migration;
}

bool migration_busy(struct instance *in)
{
	struct migration *m = in->migration;
	bool busy;

	if (!m)
		return false;
	pthread_mutex_lock(&m->lock);
	busy = m->status.state == MIGRATION_LISTENING || m->status.state == MIGRATION_ACTIVE;
	pthread_mutex_unlock(&m->lock);
	return busy;
}

struct migration_status migration_get_status(struct instance *in)
{
	struct migration_status st = {.state = MIGRATION_NONE};
	struct migration *m = in->migration;

	if (m) {
		pthread_mutex_lock(&m->lock);
		st = m->status;
		if (st.state == MIGRATION_ACTIVE || st.state == MIGRATION_LISTENING)
			st.total_ms = ms_since(m->started_ns);
		pthread_mutex_unlock(&m->lock);
	}
	return st;
}

/* Ends the migration: Completed, or Failed with the thread's last error, said once in the
 * log. */
static void finish(struct migration *m, int ret, const struct migration_stream *s)
{
	pthread_mutex_lock(&m->lock);
	if (s)
		m->status.bytes = m->status.receiving ? s->bytes_received : s->bytes_sent;
	m->status.total_ms = ms_since(m->started_ns);
	if (ret) {
		m->status.state = MIGRATION_FAILED;
		snprintf(m->status.error, sizeof(m->status.error), "%s",
			 log_last_error()[0] ? log_last_error() : strerror(-ret));
		log_error("migration %s %s failed: %s", m->status.receiving ? "from" : "to",
			  m->status.url, m->status.error);
	} else {
		m->status.state = MIGRATION_COMPLETED;
		log_info("migration %s %s: completed in %.1f ms, downtime %.1f ms, %u iterations, "
			 "%llu pages, %llu bytes",
			 m->status.receiving ? "from" : "to", m->status.url, m->status.total_ms,
			 m->status.downtime_ms, m->status.iterations,
			 (unsigned long long)m->status.pages, (unsigned long long)m->status.bytes);
	}
	pthread_mutex_unlock(&m->lock);
}

/* ---- the source ---- */

struct sender {
	struct instance *in;
	struct migration *m;
	struct migration_stream s;
	/* A PAGES frame being filled: its count and offsets, then the pages where they are (a run
	 * of pages one after the other in memory is one part). */
	uint8_t head[8 + 8 * MIGRATION_MAX_PAGES];
	struct iovec parts[MIGRATION_MAX_PARTS];
	int nr_parts;
	uint32_t nr;
	uint64_t pages_sent;
	bool logging; /* dirty_log_start() was called */
	/* With SKIFF_MIGRATION_VERIFY in the environment (tests): every page as it was last sent,
	 * which the memory must equal once the last pages are out (verify_sent). */
	uint8_t *sent;
	uint8_t *sent_in; /* and the pass that sent it last: 1 + pass, 255 for the handoff's */
	uint8_t pass;
};

static int flush_batch(struct sender *t)
{
	int ret;

	if (!t->nr)
		return 0;
	migration_put_le(t->head, t->nr, 4);
	migration_put_le(t->head + 4, 0, 4);
	t->parts[0] = (struct iovec){t->head, 8 + (size_t)t->nr * 8};
	ret = migration_send(&t->s, MIGRATION_PAGES, t->parts, t->nr_parts);
	t->pages_sent += t->nr;
	t->nr = 0;
	t->nr_parts = 1;
	pthread_mutex_lock(&t->m->lock);
	t->m->status.pages = t->pages_sent;
	t->m->status.bytes = t->s.bytes_sent;
	pthread_mutex_unlock(&t->m->lock);
	return ret;
}

/* Adds a page to the frame: sent from guest memory itself, no copy. The guest may write it
 * while the kernel copies it into the socket, and the destination gets a torn page; that write
 * came after the dirty log was last taken (before this pass), so the page is dirty and goes
 * again in a later pass or in the handoff, where the VM is paused and nothing changes under the
 * copy. With SKIFF_MIGRATION_VERIFY the page is copied into `sent` and sent from there: the
 * copy is exactly what went out. */
static int add_page(struct sender *t, uint64_t offset, const uint8_t *hva)
{
	struct iovec *last = &t->parts[t->nr_parts - 1];

	migration_put_le(t->head + 8 + (size_t)t->nr * 8, offset, 8);
	if (t->sent) {
		memcpy(t->sent + offset, hva, PAGE);
		t->sent_in[offset / PAGE] = t->pass;
		hva = t->sent + offset;
	}
	if (t->nr && (const uint8_t *)last->iov_base + last->iov_len == hva)
		last->iov_len += PAGE;
	else
		t->parts[t->nr_parts++] = (struct iovec){(void *)hva, PAGE};
	if (++t->nr == MIGRATION_MAX_PAGES)
		return flush_batch(t);
	return 0;
}

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[PAGE];

	return memcmp(p, zero, PAGE) == 0;
}

/* Sends the pages set in maps, or (maps NULL, the first pass) every page the guest ever
 * touched that is not zero: the destination's memory starts as zeros. */
static int send_pages(struct sender *t, uint64_t *const *maps)
{
	struct vm *vm = &t->in->vm;
	uint64_t base = 0;
	int ret = 0;

	for (int i = 0; !ret && i < vm->mem.nr_regions; i++) {
		const struct guest_region *r = &vm->mem.regions[i];
		uint64_t pages = r->size / PAGE;
		unsigned char *resident = NULL;

		if (!maps) {
			resident = malloc(pages + 1);
			if (resident && mincore(r->hva, r->size, resident) < 0) {
				free(resident);
				resident = NULL;
			}
		}
		for (uint64_t pg = 0; !ret && pg < pages; pg++) {
			const uint8_t *hva = r->hva + pg * PAGE;

			if (maps && !dirty_log_test(maps, i, pg))
				continue;
			if (!maps && ((resident && !(resident[pg] & 1)) || page_is_zero(hva)))
				continue;
			ret = add_page(t, base + pg * PAGE, hva);
			if (!ret && (pg & 1023) == 0 && __atomic_load_n(&t->m->cancel, __ATOMIC_ACQUIRE))
				ret = log_set_error(-ECANCELED, "migration: cancelled");
		}
		free(resident);
		base += r->size;
	}
	if (!ret)
		ret = flush_batch(t);
	return ret;
}

static uint64_t count_pages(struct vm *vm, uint64_t *const *maps)
{
	uint64_t n = 0;

	for (int i = 0; i < vm->mem.nr_regions; i++)
		for (uint64_t w = 0; w < (vm->mem.regions[i].size / PAGE + 63) / 64; w++)
			n += (uint64_t)__builtin_popcountll(maps[i][w]);
	return n;
}

static int bytes_differ(const uint8_t *a, const uint8_t *b)
{
	int n = 0;

	for (int i = 0; i < PAGE; i++)
		n += a[i] != b[i];
	return n;
}

/* With the VM paused and the last pages sent, the memory must be what the destination got:
 * a page that differs was written without a mark in the dirty log (the guest's writes that KVM
 * missed, or a device's that guest_mem was not told of). Said in the log, for tests, with what
 * tells the causes apart: who has written the page since the last take ("the guest": KVM
 * logged it, so a vCPU ran; "skiff": a device marked it, so it worked on while paused;
 * "nobody": no log saw the write) and the pass that last sent it. The logs are read after the
 * comparison, so that a write made while it ran is named too (a device marks a page after its
 * write). What this takes is given back: the pages stay dirty for whatever comes next. */
struct differing {
	int region;
	uint64_t pg;
	uint64_t off; /* in t->sent and t->sent_in's numbering */
};

static void verify_sent(struct sender *t)
{
	static const char *const writer[] = {"nobody", "the guest", "skiff"};
	struct vm *vm = &t->in->vm;
	struct differing *d = NULL;
	uint64_t **guest, **own;
	uint64_t base = 0, total = 0, differ = 0, room = 0, by[3] = {0};

	for (int i = 0; i < vm->mem.nr_regions; i++) {
		const struct guest_region *r = &vm->mem.regions[i];

		for (uint64_t pg = 0; pg < r->size / PAGE; pg++) {
			if (!memcmp(r->hva + pg * PAGE, t->sent + base + pg * PAGE, PAGE))
				continue;
			total++;
			if (differ == room) {
				struct differing *more = realloc(d, (room * 2 + 16) * sizeof(*d));

				if (!more)
					continue; /* counted, not named */
				d = more;
				room = room * 2 + 16;
			}
			d[differ++] = (struct differing){i, pg, base + pg * PAGE};
		}
		base += r->size;
	}
	guest = dirty_log_take_by(vm, DIRTY_BY_GUEST);
	own = dirty_log_take_by(vm, DIRTY_BY_VMM);
	for (uint64_t k = 0; k < differ; k++) {
		const struct guest_region *r = &vm->mem.regions[d[k].region];
		uint64_t at = d[k].pg * PAGE, off = d[k].off;
		unsigned pass;
		char when[40];
		int w;

		w = guest && dirty_log_test(guest, d[k].region, d[k].pg) ? 1
		    : own && dirty_log_test(own, d[k].region, d[k].pg) ? 2
								       : 0;
		by[w]++;
		if (k >= 8)
			continue;
		pass = t->sent_in[off / PAGE];
		if (pass == 0)
			snprintf(when, sizeof(when), "never sent (zeros there)");
		else if (pass == 255)
			snprintf(when, sizeof(when), "sent at the handoff");
		else
			snprintf(when, sizeof(when), "sent in pass %u", pass);
		log_warn("migration: verify: guest page 0x%llx, %s, differs from it in %d bytes; "
			 "written since by %s",
			 (unsigned long long)(r->gpa + at), when,
			 bytes_differ(r->hva + at, t->sent + off), writer[w]);
	}
	free(d);
	dirty_log_free(vm, guest, true);
	dirty_log_free(vm, own, true);
	log_info("migration: verify: %llu pages differ from what was sent (written since by the "
		 "guest %llu, by skiff %llu, by nobody that a log saw %llu)",
		 (unsigned long long)total, (unsigned long long)by[1], (unsigned long long)by[2],
		 (unsigned long long)by[0]);
}

/* The destination may refuse at any time: an ERROR waiting on the socket ends the migration. */
static int check_peer(struct sender *t)
{
	struct pollfd p = {.fd = t->s.fd, .events = POLLIN};
	struct migration_frame f;
	int ret;

	if (poll(&p, 1, 0) <= 0)
		return 0;
	ret = migration_recv(&t->s, &f);
	if (!ret) {
		ret = log_set_error(-EPROTO, "migration: the destination sent %s unasked",
				    migration_frame_name(f.type));
		migration_frame_free(&f);
	}
	return ret;
}

static int expect(struct migration_stream *s, uint32_t type, struct migration_frame *f,
		  const char *who)
{
	int ret = migration_recv(s, f);

	if (!ret && f->type != type) {
		ret = log_set_error(-EPROTO, "migration: the %s sent %s where %s was due", who,
				    migration_frame_name(f->type), migration_frame_name(type));
		migration_frame_free(f);
	}
	return ret;
}

static int send_hello_and_config(struct sender *t)
{
	uint8_t hello[MIGRATION_HELLO_LEN] = {0};
	struct state_writer w;
	struct migration_frame f;
	struct iovec part;
	int ret;

	migration_put_le(hello, PAGE, 4);
	strncpy((char *)hello + 4, SKIFF_VERSION, 31);
	part = (struct iovec){hello, sizeof(hello)};
	ret = migration_send(&t->s, MIGRATION_HELLO, &part, 1);
	if (ret)
		return ret;
	state_writer_init(&w);
	pthread_mutex_lock(&t->in->lock);
	ret = t->in->state == INSTANCE_RUNNING ? snapshot_save_description(&t->in->vm, &w)
					       : log_set_error(-ESHUTDOWN, "the microVM stopped");
	pthread_mutex_unlock(&t->in->lock);
	if (!ret && state_writer_status(&w))
		ret = log_set_error(-ENOMEM, "out of memory for the VM's description");
	if (!ret) {
		part = (struct iovec){w.buf, w.len};
		ret = migration_send(&t->s, MIGRATION_CONFIG, &part, 1);
	}
	state_writer_free(&w);
	if (!ret)
		ret = expect(&t->s, MIGRATION_ACCEPT, &f, "destination");
	if (!ret)
		migration_frame_free(&f);
	return ret;
}

/* The disks' locks: let go before the destination opens the images (same host, shared paths),
 * taken back when the migration fails after that. A lock the destination still holds for a
 * moment (it is letting go) is tried again for up to a second. */
static int set_disk_locks(struct vm *vm, bool held)
{
	struct vm_device_update up = {.disk_lock = held ? 1 : -1};
	struct vm_device *dev;
	int ret = 0;

	vm_devices_for_each(&vm->devices, dev)
	{
		int err = -EBUSY;

		if (dev->kind != VM_DEVICE_VIRTIO_BLK)
			continue;
		for (int i = 0; i < 20 && err == -EBUSY; i++) {
			err = vm_device_update(dev, &up);
			if (err == -EBUSY && held)
				usleep(50000);
			else
				break;
		}
		if (err && !ret)
			ret = err;
	}
	return ret;
}

/* The end: paused, the last pages and the state out, READY in, GO out. Under the instance's
 * lock (no request changes the VM meanwhile). On failure the VM runs on as it was. */
static int handoff(struct sender *t, uint64_t **pending)
{
	struct instance *in = t->in;
	struct vm *vm = &in->vm;
	struct migration_frame f;
	uint8_t *image = NULL, resume;
	size_t image_len = 0;
	uint64_t **last = NULL;
	uint64_t paused_at;
	bool was_paused, locks_released = false;
	struct iovec part;
	int ret;

	pthread_mutex_lock(&in->lock);
	if (in->state != INSTANCE_RUNNING || vm_stop_reason(vm) != VM_STOP_NONE) {
		pthread_mutex_unlock(&in->lock);
		return log_set_error(-ESHUTDOWN, "migration: the microVM stopped meanwhile");
	}
	was_paused = vm_is_paused(vm);
	paused_at = now_ns();
	if (!was_paused && (ret = vm_pause(vm))) {
		pthread_mutex_unlock(&in->lock);
		return ret;
	}
	/* Saving finishes the devices' requests first; what they write then is in the log. Held
	 * from before until the end (base/device.h): a device that went on would write memory the
	 * destination does not get, used entries its saved indices do not know. The source ends
	 * with them held; a failed handoff lets them go. */
	if ((ret = vm_devices_hold(&vm->devices, true))) {
		if (!was_paused)
			vm_resume(vm);
		pthread_mutex_unlock(&in->lock);
		return ret;
	}
	ret = snapshot_state_image(vm, &image, &image_len);
	if (!ret && !(last = dirty_log_take(vm)))
		ret = -EIO;
	if (!ret) {
		for (int i = 0; i < vm->mem.nr_regions; i++)
			for (uint64_t w = 0; w < (vm->mem.regions[i].size / PAGE + 63) / 64; w++)
				last[i][w] |= pending[i][w];
		t->pass = 255;
		ret = send_pages(t, last);
	}
	if (!ret && t->sent) {
		uint64_t verify_at = now_ns();

		verify_sent(t);
		/* A check for tests, not part of the handoff: its time is not downtime. */
		paused_at += now_ns() - verify_at;
	}
	if (!ret && !(ret = set_disk_locks(vm, false)))
		locks_released = true;
	if (!ret) {
		part = (struct iovec){image, image_len};
		ret = migration_send(&t->s, MIGRATION_STATE, &part, 1);
	}
	if (!ret && !(ret = expect(&t->s, MIGRATION_READY, &f, "destination")))
		migration_frame_free(&f);
	if (!ret) {
		resume = !was_paused;
		part = (struct iovec){&resume, 1};
		ret = migration_send(&t->s, MIGRATION_GO, &part, 1);
	}
	free(image);
	if (ret) {
		char why[400];

		snprintf(why, sizeof(why), "%s", log_last_error());
		if (locks_released && set_disk_locks(vm, true))
			log_error("migration: the disks' locks cannot be taken back (%s); the microVM "
				  "goes on without them",
				  log_last_error());
		/* Its pages stay dirty (a Diff snapshot's count must not lose them). */
		dirty_log_free(vm, last, true);
		if (vm_devices_hold(&vm->devices, false))
			log_error("migration: the devices could not be let go: %s", log_last_error());
		if (!was_paused && vm_resume(vm))
			log_error("migration: the microVM could not be resumed: %s",
				  log_last_error());
		log_set_error(ret, "%s", why);
		pthread_mutex_unlock(&in->lock);
		return ret;
	}
	dirty_log_free(vm, last, false);
	pthread_mutex_lock(&t->m->lock);
	t->m->status.downtime_ms = ms_since(paused_at);
	pthread_mutex_unlock(&t->m->lock);
	/* The destination runs the VM now: this one ends, with status 0. */
	{
		char why[200];

		snprintf(why, sizeof(why), "migrated to %s", t->m->status.url);
		vm_request_stop(vm, VM_STOP_MIGRATED, why);
	}
	pthread_mutex_unlock(&in->lock);
	return 0;
}

static int precopy(struct sender *t)
{
	struct vm *vm = &t->in->vm;
	uint64_t **dirty = NULL, pass_start, bytes_before;
	double bytes_per_ms = 0;
	int ret;

	t->logging = true;
	ret = dirty_log_start(vm);
	if (ret)
		return ret;
	/* What was dirty before is in the full pass: the count starts here. */
	dirty = dirty_log_take(vm);
	if (!dirty)
		return -EIO;
	dirty_log_free(vm, dirty, false);
	dirty = NULL;
	for (uint32_t pass = 0;; pass++) {
		uint64_t pages;

		pass_start = now_ns();
		bytes_before = t->s.bytes_sent;
		t->pass = (uint8_t)(pass < 254 ? pass + 1 : 254);
		ret = pass == 0 ? send_pages(t, NULL) : send_pages(t, dirty);
		dirty_log_free(vm, dirty, ret != 0);
		dirty = NULL;
		if (!ret)
			ret = check_peer(t);
		if (!ret && vm_stop_reason(vm) != VM_STOP_NONE)
			ret = log_set_error(-ESHUTDOWN, "migration: the microVM stopped meanwhile");
		if (ret)
			return ret;
		{
			double ms = ms_since(pass_start);

			if (t->s.bytes_sent - bytes_before >= 64 * PAGE || bytes_per_ms == 0)
				bytes_per_ms = (double)(t->s.bytes_sent - bytes_before) /
					       (ms < 0.01 ? 0.01 : ms);
		}
		dirty = dirty_log_take(vm);
		if (!dirty)
			return -EIO;
		pages = count_pages(vm, dirty);
		pthread_mutex_lock(&t->m->lock);
		t->m->status.iterations = pass;
		t->m->status.remaining_pages = pages;
		t->m->status.throughput_mib_s = bytes_per_ms * 1000.0 / (1 << 20);
		pthread_mutex_unlock(&t->m->lock);
		log_debug("migration: pass %u: %llu pages dirty, %.1f MiB/s", pass,
			  (unsigned long long)pages, bytes_per_ms * 1000.0 / (1 << 20));
		if ((double)(pages * PAGE) / bytes_per_ms <= (double)t->m->status.downtime_limit_ms ||
		    pass + 1 >= MIGRATION_MAX_ITERATIONS)
			break;
	}
	ret = handoff(t, dirty);
	/* The pages of a failed handoff are given back there; these went into it. */
	dirty_log_free(vm, dirty, false);
	return ret;
}

/* Starts the side's thread (send_thread or receive_thread); if it cannot start, the migration
 * has failed: its status says so and -errno comes back with the reason as the last error. */
static int start_thread(struct instance *in, void *(*fn)(void *))
{
	struct migration *m = in->migration;
	int ret = thread_start(THREAD_MIGRATION, "skiff-migrate", fn, in, &m->thread);

	if (ret) {
		pthread_mutex_lock(&m->lock);
		m->status.state = MIGRATION_FAILED;
		snprintf(m->status.error, sizeof(m->status.error), "cannot start its thread");
		pthread_mutex_unlock(&m->lock);
		return log_set_error(ret, "cannot start the migration thread: %s", strerror(-ret));
	}
	m->thread_started = true;
	return 0;
}

static void *send_thread(void *arg)
{
	struct instance *in = arg;
	struct migration *m = in->migration;
	struct sender t = {.in = in, .m = m, .s = {.fd = -1, .timeout_ms = MIGRATION_TIMEOUT_MS}};
	struct migration_url url;
	int ret;

	t.s.cancel = &m->cancel;
	log_clear_last_error();
	ret = migration_url_parse(m->status.url, &url);
	if (!ret)
		ret = t.s.fd = migration_connect(&url, MIGRATION_TIMEOUT_MS, &m->cancel);
	t.nr_parts = 1; /* parts[0] is the head */
	if (ret >= 0 && getenv("SKIFF_MIGRATION_VERIFY") &&
	    (!(t.sent = calloc(1, guest_mem_size(&in->vm.mem))) ||
	     !(t.sent_in = calloc(1, guest_mem_size(&in->vm.mem) / PAGE))))
		ret = log_set_error(-ENOMEM, "out of memory for SKIFF_MIGRATION_VERIFY's copy");
	if (ret >= 0)
		ret = send_hello_and_config(&t);
	if (!ret)
		ret = precopy(&t);
	if (ret < 0) {
		char why[400];

		/* The reason, kept across what follows. */
		snprintf(why, sizeof(why), "%s",
			 log_last_error()[0] ? log_last_error() : strerror(-ret));
		if (t.s.fd >= 0 && ret != -EPIPE && ret != -ECONNREFUSED)
			migration_send_error(&t.s, "the source gave up");
		/* A failed migration took the log's pages: a Diff snapshot after it must not miss
		 * them. Without Diff snapshots the log goes off again. */
		if (t.logging && in->cfg.track_dirty_pages)
			dirty_log_mark_all(&in->vm);
		else if (t.logging && dirty_log_stop(&in->vm))
			log_warn("migration: %s", log_last_error());
		log_set_error(ret, "%s", why);
	}
	if (t.s.fd >= 0)
		close(t.s.fd);
	free(t.sent);
	free(t.sent_in);
	finish(m, ret < 0 ? ret : 0, &t.s);
	return NULL;
}

int migration_start_send(struct instance *in, const char *url, uint32_t downtime_ms)
{
	struct migration_url parsed;
	struct migration *m;
	int ret;

	if (in->state != INSTANCE_RUNNING)
		return log_set_error(-EINVAL, "the microVM is not running: there is nothing to "
					      "migrate");
	if (migration_busy(in))
		return log_set_error(-EBUSY, "a migration is already under way");
	/* The kernel's vhost-net writes guest memory behind KVM's dirty log. */
	for (int i = 0; in->vm.cfg && i < in->vm.cfg->nr_nets; i++)
		if (in->vm.cfg->nets[i].vhost)
			return log_set_error(-EINVAL,
					     "network interface %s uses vhost=on: a VM whose guest "
					     "memory the kernel's vhost-net writes cannot be "
					     "live-migrated",
					     in->vm.cfg->nets[i].id);
	/* Refused now rather than after the memory went over: the device state would be. */
	for (int i = 0; in->vm.cfg && i < in->vm.cfg->nr_nets; i++)
		if (in->vm.cfg->nets[i].num_queues > 1)
			return log_set_error(-EINVAL,
					     "network interface %s has several queue pairs "
					     "(queues=N): skiff cannot snapshot or migrate a "
					     "multiqueue interface; use queues=1",
					     in->vm.cfg->nets[i].id);
	ret = migration_url_parse(url, &parsed);
	if (ret)
		return ret;
	m = get(in);
	if (!m)
		return log_set_error(-ENOMEM, "out of memory");
	if (m->thread_started) { /* an earlier one, ended */
		pthread_join(m->thread, NULL);
		m->thread_started = false;
	}
	pthread_mutex_lock(&m->lock);
	memset(&m->status, 0, sizeof(m->status));
	m->status.state = MIGRATION_ACTIVE;
	snprintf(m->status.url, sizeof(m->status.url), "%s", url);
	m->status.downtime_limit_ms = downtime_ms;
	m->started_ns = now_ns();
	m->cancel = false;
	pthread_mutex_unlock(&m->lock);
	ret = start_thread(in, send_thread);
	if (ret)
		return ret;
	log_info("migration to %s: started (downtime limit %u ms)", url, downtime_ms);
	return 0;
}

/* ---- the destination ---- */

static int check_hello(const struct migration_frame *f)
{
	char version[33];

	if (f->length != MIGRATION_HELLO_LEN)
		return log_set_error(-EBADMSG, "migration: a HELLO of %u bytes", f->length);
	if (migration_get_le(f->payload, 4) != PAGE)
		return log_set_error(-EPROTO, "migration: the source's pages are %llu bytes; this "
					      "skiff's are %d",
				     (unsigned long long)migration_get_le(f->payload, 4), PAGE);
	memcpy(version, f->payload + 4, 32);
	version[32] = '\0';
	for (char *c = version; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	log_info("migration: the source is skiff %s", version);
	return 0;
}

/* Receives into the memfd until the STATE frame, which it returns. */
static int receive_memory(struct migration *m, struct migration_stream *s, int memfd,
			  uint64_t mem_bytes, struct migration_frame *state)
{
	uint8_t *scratch = malloc((size_t)MIGRATION_MAX_PAGES * PAGE);
	int ret;

	if (!scratch)
		return log_set_error(-ENOMEM, "out of memory for the pages to receive");
	for (;;) {
		struct migration_frame f;
		uint32_t count;

		ret = migration_recv_into(s, &f, memfd, mem_bytes, scratch, &count);
		if (ret)
			break;
		if (f.type == MIGRATION_STATE) {
			*state = f;
			break;
		}
		if (f.type != MIGRATION_PAGES) {
			ret = log_set_error(-EPROTO, "migration: the source sent %s where pages or "
						     "the state were due",
					    migration_frame_name(f.type));
			migration_frame_free(&f);
			break;
		}
		pthread_mutex_lock(&m->lock);
		m->status.pages += count;
		m->status.bytes = s->bytes_received;
		pthread_mutex_unlock(&m->lock);
	}
	free(scratch);
	return ret;
}

/* Builds the VM from the CONFIG's description before the memory arrives, so that only the
 * state goes in after STATE (the downtime). On the memfd, mapped private as for a snapshot load
 * (vm_create_restored): the pages are pwrite()n into the memfd afterwards, and a private
 * mapping shows the file's pages until the process writes one (copy-on-write). Nothing writes
 * guest memory before the state is in: a restoring VM loads no kernel, firmware tables, device
 * tree or boot state, and no vCPU runs before GO; a page merely read meanwhile maps the memfd's
 * own page, which pwrite() then fills in place. Mapped shared instead, guest memory would be
 * shmem for good (no KSM, no THP, the balloon's pages no longer freed by MADV_DONTNEED): not
 * worth it for a window in which nothing touches the memory. The disks open unlocked: the
 * source holds their locks until just before STATE. A VM that cannot be built refuses the
 * migration now, before any memory moves. */
static int prebuild(struct instance *in, const struct vm_config *cfg, int memfd, bool *built)
{
	uint64_t t0 = now_ns();
	int ret;

	/* virtio-fs cannot be saved, so such a VM never reaches STATE: no virtiofsd for it. */
	if (cfg->nr_fs)
		return 0;
	pthread_mutex_lock(&in->lock);
	if (in->state != INSTANCE_NOT_STARTED)
		ret = log_set_error(-EINVAL, "migration: the microVM was started meanwhile");
	else if ((ret = vm_create_incoming(&in->vm, cfg, memfd))) {
		char why[512];

		snprintf(why, sizeof(why), "%s",
			 log_last_error()[0] ? log_last_error() : strerror(-ret));
		log_set_error(ret, "migration: cannot build the microVM: %s", why);
	}
	*built = !ret;
	pthread_mutex_unlock(&in->lock);
	if (!ret)
		log_info(
		    "migration: the microVM is built from the source's description in %.1f ms, "
		    "before its memory arrives",
		    ms_since(t0));
	return ret;
}

/* The pre-built VM goes, unrun (its disks' locks, if taken, with it). */
static void destroy_prebuilt(struct instance *in, bool *prebuilt)
{
	if (!*prebuilt)
		return;
	pthread_mutex_lock(&in->lock);
	vm_destroy(&in->vm);
	*prebuilt = false;
	pthread_mutex_unlock(&in->lock);
}

/* Puts the state into the VM, says READY, and runs it on GO; else destroys it unrun. The VM
 * is the pre-built one (*prebuilt, built from `built_from`, the CONFIG's description) when the
 * state's description is that one byte for byte; else it is built from the state's, as a
 * snapshot load does (the source's API changed a drive or a rate limiter during the copy).
 * *prebuilt is false on return: the VM runs or is gone. */
static int build_and_run(struct instance *in, struct migration_stream *s, struct vm_config *cfg,
			 struct snapshot *snap, int memfd, uint64_t state_at, bool *prebuilt,
			 const struct migration_frame *built_from)
{
	struct migration_frame f;
	bool resume = true;
	int ret;

	pthread_mutex_lock(&in->lock);
	if (*prebuilt && snapshot_description_is(snap, built_from->payload, built_from->length)) {
		/* The pre-built VM kept the instance from starting (migration_busy): in->vm is
		 * still it. */
		*prebuilt = false;
		log_info("migration: the state's description is the one the microVM was built "
			 "from: only the state goes in");
		ret = set_disk_locks(&in->vm, true);
		if (ret) {
			char why[400];

			snprintf(why, sizeof(why), "%s", log_last_error());
			vm_destroy(&in->vm);
			log_set_error(ret, "migration: cannot take the disks' locks: %s", why);
		} else {
			/* The guest's clock goes on by the time the move took, as on the source's
			 * host. */
			ret = snapshot_restore_state(&in->vm, snap, true);
		}
		if (!ret) {
			/* The same description as the one the VM points to, which the caller
			 * frees: from here the instance's, as for a VM built below. Nothing of the
			 * VM keeps a pointer into it (devices copy what they need). */
			vm_config_copy(&in->cfg, cfg);
			in->vm.cfg = &in->cfg;
		}
		if (ret) {
			pthread_mutex_unlock(&in->lock);
			return ret;
		}
	} else {
		if (*prebuilt) {
			log_info("migration: the source's description changed during the copy: the "
				 "microVM is built again from the state's");
			vm_destroy(&in->vm);
			*prebuilt = false;
		}
		if (in->state != INSTANCE_NOT_STARTED) {
			pthread_mutex_unlock(&in->lock);
			return log_set_error(-EINVAL,
					     "migration: the microVM was started meanwhile");
		}
		vm_config_copy(&in->cfg, cfg);
		ret = snapshot_restore_fd(&in->vm, snap, &in->cfg, memfd, true);
		if (ret) {
			vm_config_init_defaults(&in->cfg);
			pthread_mutex_unlock(&in->lock);
			return ret;
		}
	}
	ret = migration_send(s, MIGRATION_READY, NULL, 0);
	if (!ret && !(ret = expect(s, MIGRATION_GO, &f, "source"))) {
		if (f.length != 1 || f.payload[0] > 1)
			ret = log_set_error(-EBADMSG, "migration: a GO of %u bytes", f.length);
		else
			resume = f.payload[0] == 1;
		migration_frame_free(&f);
	}
	if (ret) {
		/* Never run: the source keeps the VM. */
		vm_destroy(&in->vm);
		vm_config_init_defaults(&in->cfg);
		pthread_mutex_unlock(&in->lock);
		return ret;
	}
	if (!resume && vm_pause(&in->vm))
		log_warn("the migrated microVM could not be paused: %s", log_last_error());
	pthread_mutex_lock(&in->migration->lock);
	in->migration->status.downtime_ms = ms_since(state_at);
	pthread_mutex_unlock(&in->migration->lock);
	instance_vm_started(in);
	pthread_mutex_unlock(&in->lock);
	return 0;
}

static int receive_vm(struct instance *in, struct migration_stream *s)
{
	struct migration *m = in->migration;
	/* The CONFIG frame is kept: the state's description is compared with it. */
	struct migration_frame f = {0}, config = {0}, state = {0};
	struct vm_config *cfg = malloc(sizeof(*cfg)), *final = malloc(sizeof(*cfg));
	struct snapshot snap;
	uint64_t mem_bytes = 0, state_at;
	int memfd = -1, ret;
	bool prebuilt = false; /* in->vm is built from cfg, unrun */

	if (!cfg || !final) {
		ret = log_set_error(-ENOMEM, "out of memory");
		goto out;
	}
	ret = expect(s, MIGRATION_HELLO, &f, "source");
	if (!ret) {
		ret = check_hello(&f);
		migration_frame_free(&f);
	}
	if (!ret && !(ret = expect(s, MIGRATION_CONFIG, &config, "source")))
		ret = snapshot_read_description(config.payload, config.length, "migration", cfg);
	/* Before any memory moves: an interface the VM does not have refuses it at once. */
	if (!ret)
		ret = config_apply_net_overrides(cfg, m->overrides, m->nr_overrides,
						 "the migrated VM");
	if (!ret)
		ret = vm_check_config(cfg, 0, host_memory_mib());
	if (!ret) {
		mem_bytes = cfg->memory_mib << 20;
		memfd = memfd_create("skiff-migration", MFD_CLOEXEC);
		if (memfd < 0 || ftruncate(memfd, (off_t)mem_bytes) < 0)
			ret = log_set_error(-errno, "migration: cannot hold %llu MiB of guest "
						    "memory: %s",
					    (unsigned long long)cfg->memory_mib, strerror(errno));
	}
	if (!ret)
		ret = prebuild(in, cfg, memfd, &prebuilt);
	if (!ret)
		ret = migration_send(s, MIGRATION_ACCEPT, NULL, 0);
	if (!ret)
		ret = receive_memory(m, s, memfd, mem_bytes, &state);
	if (ret)
		goto out;
	state_at = now_ns();
	/* The snapshot owns the payload from here. */
	ret = snapshot_parse(&snap, state.payload, state.length, "migration", final);
	state.payload = NULL;
	if (ret)
		goto out;
	if (final->memory_mib != cfg->memory_mib)
		ret = log_set_error(-EINVAL, "migration: the state describes %llu MiB of memory, "
					     "the stream carried %llu",
				    (unsigned long long)final->memory_mib,
				    (unsigned long long)cfg->memory_mib);
	/* The state's own description is the one built: it is checked as the first one was. */
	if (!ret)
		ret = config_apply_net_overrides(final, m->overrides, m->nr_overrides,
						 "the migrated VM");
	if (!ret)
		ret = vm_check_config(final, 0, host_memory_mib());
	if (!ret)
		ret = build_and_run(in, s, final, &snap, memfd, state_at, &prebuilt, &config);
	snapshot_close(&snap);
out:
	/* Before the source hears of the failure: it takes its disks' locks back at once. */
	if (prebuilt) {
		char why[400];

		snprintf(why, sizeof(why), "%s", log_last_error());
		destroy_prebuilt(in, &prebuilt);
		if (ret)
			log_set_error(ret, "%s", why);
	}
	if (ret && ret != -EPIPE && ret != -ECONNREFUSED && ret != -ECANCELED)
		migration_send_error(s, log_last_error()[0] ? log_last_error() : strerror(-ret));
	migration_frame_free(&config);
	migration_frame_free(&state);
	if (memfd >= 0)
		close(memfd); /* the VM's mappings keep it */
	free(cfg);
	free(final);
	return ret;
}

/* Accepts the source and receives; the listener is closed (and its path removed) first. */
static int receive_on(struct instance *in, int listen_fd, const struct migration_url *url)
{
	struct migration *m = in->migration;
	struct migration_stream s = {.fd = -1, .timeout_ms = MIGRATION_TIMEOUT_MS};
	int ret;

	s.cancel = &m->cancel;
	log_clear_last_error();
	ret = migration_accept(listen_fd, INT_MAX, &m->cancel);
	close(listen_fd);
	if (!url->tcp)
		unlink(url->path);
	if (ret >= 0) {
		s.fd = ret;
		pthread_mutex_lock(&m->lock);
		m->status.state = MIGRATION_ACTIVE;
		m->started_ns = now_ns(); /* the time taken counts from the source's arrival */
		pthread_mutex_unlock(&m->lock);
		ret = receive_vm(in, &s);
		close(s.fd);
	}
	finish(m, ret < 0 ? ret : 0, &s);
	return ret < 0 ? ret : 0;
}

static void *receive_thread(void *arg)
{
	struct instance *in = arg;
	struct migration_url url;

	migration_url_parse(in->migration->status.url, &url);
	receive_on(in, in->migration->listen_fd, &url);
	in->migration->listen_fd = -1;
	return NULL;
}

/* Listens and sets the status (Listening). */
static int prepare_receive(struct instance *in, const char *url, struct migration_url *parsed)
{
	struct migration *m;
	int fd, ret;

	if (in->state != INSTANCE_NOT_STARTED)
		return log_set_error(-EINVAL, "a migration is received only by a microVM not yet "
					      "started");
	if (migration_busy(in))
		return log_set_error(-EBUSY, "a migration is already under way");
	ret = migration_url_parse(url, parsed);
	if (ret)
		return ret;
	m = get(in);
	if (!m)
		return log_set_error(-ENOMEM, "out of memory");
	if (m->thread_started) {
		pthread_join(m->thread, NULL);
		m->thread_started = false;
	}
	fd = migration_listen(parsed);
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&m->lock);
	memset(&m->status, 0, sizeof(m->status));
	m->status.state = MIGRATION_LISTENING;
	m->status.receiving = true;
	snprintf(m->status.url, sizeof(m->status.url), "%s", url);
	m->started_ns = now_ns();
	m->cancel = false;
	m->listen_fd = fd;
	m->nr_overrides = 0;
	pthread_mutex_unlock(&m->lock);
	log_info("migration: waiting for the source at %s", url);
	return 0;
}

int migration_start_receive(struct instance *in, const char *url,
			    const struct snapshot_net_override *overrides, int nr_overrides)
{
	struct migration_url parsed;
	struct migration *m;
	int ret = prepare_receive(in, url, &parsed);

	if (ret)
		return ret;
	m = in->migration;
	/* Read by the migration thread, which starts below. */
	m->nr_overrides = nr_overrides;
	for (int i = 0; i < nr_overrides; i++)
		m->overrides[i] = overrides[i];
	ret = start_thread(in, receive_thread);
	if (ret) {
		close(m->listen_fd);
		m->listen_fd = -1;
		if (!parsed.tcp)
			unlink(parsed.path);
	}
	return ret;
}

int migration_receive(struct instance *in, const char *url,
		      const struct snapshot_net_override *overrides, int nr_overrides)
{
	struct migration_url parsed;
	int fd, ret;

	pthread_mutex_lock(&in->lock);
	ret = prepare_receive(in, url, &parsed);
	if (!ret) {
		in->migration->nr_overrides = nr_overrides;
		for (int i = 0; i < nr_overrides; i++)
			in->migration->overrides[i] = overrides[i];
	}
	pthread_mutex_unlock(&in->lock);
	if (ret) {
		/* Said here, as a failure after it is (finish()). */
		log_error("%s", log_last_error());
		return ret;
	}
	fd = in->migration->listen_fd;
	in->migration->listen_fd = -1;
	ret = receive_on(in, fd, &parsed);
	if (ret) {
		char why[400];

		snprintf(why, sizeof(why), "%s", in->migration->status.error);
		return log_set_error(ret, "%s", why);
	}
	return 0;
}

void migration_finish(struct instance *in)
{
	struct migration *m = in->migration;

	if (!m || !m->thread_started)
		return;
	__atomic_store_n(&m->cancel, true, __ATOMIC_RELEASE);
	pthread_join(m->thread, NULL);
	m->thread_started = false;
}

void migration_free(struct instance *in)
{
	migration_finish(in);
	if (!in->migration)
		return;
	pthread_mutex_destroy(&in->migration->lock);
	free(in->migration);
	in->migration = NULL;
}
