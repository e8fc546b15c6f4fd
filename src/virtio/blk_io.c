#include "virtio/blk_io.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* What the ring is asked for first: one submitting thread (the worker) and completions that do
 * not interrupt it while it runs in user space (it is woken when it sleeps). The ring starts
 * disabled, so that the thread that enables it at attach, not the one that created it, is its
 * submitter. Kernels before 6.0 refuse SINGLE_ISSUER (before 5.19 COOP_TASKRUN): then fewer. */
#define URING_TUNED                                                                                \
	(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_R_DISABLED)
/* Completions reaped per io_uring_peek_batch_cqe() call. */
#define REAP_BATCH 32

struct blk_io {
	int fd;
	unsigned depth;
	char name[48];
	const struct blk_io_ops *ops;
	void *ctx;
	unsigned in_flight;

	bool async;
	struct io_uring ring;
	int efd;	  /* io_uring's completion eventfd, watched on the worker loop */
	bool attached;	  /* efd is on the loop */
	unsigned flags;	  /* IORING_SETUP_* the ring was made with */
	bool enabled;	  /* R_DISABLED ring: enabled (by `owner`) */
	pid_t owner;	  /* the thread that submits: the one that enabled the ring */
	bool fixed_file;  /* fd is registered as file 0: SQEs use IOSQE_FIXED_FILE */
	bool need_submit; /* SQEs prepared that the kernel has not taken yet */
	bool quiet;	  /* destroying: completions are not reported */
	/* Writes are pwritev() calls on the worker, not io_uring entries (buffered_writes()). */
	bool sync_writes;
};

static bool uring_disabled_by_env(void)
{
	const char *v = getenv("SKIFF_BLK_NO_URING");

	return v && *v && strcmp(v, "0") != 0;
}

static pid_t this_thread(void)
{
	static __thread pid_t tid;

	if (!tid)
		tid = (pid_t)syscall(SYS_gettid);
	return tid;
}

/* SINGLE_ISSUER: only the thread that enabled the ring may hand it entries (the kernel would
 * answer -EEXIST). */
static bool may_submit(const struct blk_io *io)
{
	if (!(io->flags & IORING_SETUP_SINGLE_ISSUER))
		return true;
	return io->enabled && io->owner == this_thread();
}

/* Whether writes to `fd` go through the page cache of a regular file: skiff opens images
 * without O_DIRECT, so for an image file they do. io_uring cannot carry out such a write inline
 * on most file systems: Linux 6.1 hands every buffered write to a regular file to one of its
 * kernel workers (io-wq) unless the file system declares async buffered writes, and serializes
 * those per file; 6.18 still does for ext4. Each write then costs a thread hop and a wakeup,
 * where the write itself is a copy into the page cache. So the worker writes them itself
 * (pwritev). In the nested harness (L1's tmpfs, Linux 6.1) a 1M write then took 1.2 KVM exits
 * and 0.15 interrupts instead of 3.1 and 0.94, and 22% less of the VMM's CPU
 * (docs/benchmarks.md). What it gives up: a write the kernel makes wait (dirty-page throttling)
 * holds the worker, and the disk's reads with it, until the kernel lets it go. Block devices keep
 * io_uring, which writes to them without a worker where the device allows. */
static bool buffered_writes(int fd)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && fl >= 0 && !(fl & O_DIRECT);
}

/* Makes the ring with the most of URING_TUNED the kernel accepts; -errno when it refuses even
 * a plain one. */
static int uring_init(struct blk_io *io)
{
	static const unsigned tries[] = {
	    URING_TUNED,
	    IORING_SETUP_COOP_TASKRUN,
	    0,
	};
	int ret = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p = {.flags = tries[i]};

		ret = io_uring_queue_init_params(io->depth, &io->ring, &p);
		if (ret == 0) {
			io->flags = tries[i];
			if (i > 0)
				log_debug("%s: the kernel refused io_uring's SINGLE_ISSUER%s: "
					  "the ring goes without",
					  io->name, i > 1 ? " and COOP_TASKRUN" : "");
			return 0;
		}
		if (ret != -EINVAL)
			return ret;
	}
	return ret;
}

/* Registers the image as fixed file 0 (saves the kernel a file table look-up and a reference
 * per request); without it SQEs name the fd. Done while the device is live, on its worker (the
 * ring's submitter: SINGLE_ISSUER rings take registrations from it only). */
static void uring_register_file(struct blk_io *io)
{
	int ret = io_uring_register_files(&io->ring, &io->fd, 1);

	io->fixed_file = ret == 0;
	if (ret < 0)
		log_debug("%s: io_uring cannot register the image file (%s): plain fd", io->name,
			  strerror(-ret));
}

/* The ring lets go of the image at once (unregistering waits for the ring's users and drops its
 * reference before returning), so that closing our fd releases the file and its OFD lock. A
 * file update would release the old file later, from a kernel worker. */
static void uring_release_file(struct blk_io *io)
{
	int ret;

	if (!io->fixed_file)
		return;
	io->fixed_file = false;
	ret = io_uring_unregister_files(&io->ring);
	if (ret < 0)
		log_warn("%s: io_uring cannot let go of the image file: %s", io->name,
			 strerror(-ret));
}

static int uring_setup(struct blk_io *io)
{
	int ret = uring_init(io);

	if (ret < 0)
		return ret;
	io->enabled = !(io->flags & IORING_SETUP_R_DISABLED);
	io->owner = 0;
	io->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io->efd < 0) {
		ret = -errno;
		io_uring_queue_exit(&io->ring);
		return ret;
	}
	ret = io_uring_register_eventfd(&io->ring, io->efd);
	if (ret < 0) {
		close(io->efd);
		io->efd = -1;
		io_uring_queue_exit(&io->ring);
		return ret;
	}
	return 0;
}

/* The file was let go at detach (a reset, on the worker). Were it still registered, closing the
 * ring drops it too, later (the kernel tears rings down asynchronously): unregistering here
 * would be a call the destroying thread's seccomp filter may not allow. */
static void uring_teardown(struct blk_io *io)
{
	io->fixed_file = false;
	io_uring_queue_exit(&io->ring);
	close(io->efd);
	io->efd = -1;
}

struct blk_io *blk_io_create(int fd, unsigned depth, const char *name, const struct blk_io_ops *ops,
			     void *ctx)
{
	struct blk_io *io = calloc(1, sizeof(*io));
	int ret;

	if (!io) {
		log_error("%s: out of memory", name);
		return NULL;
	}
	io->fd = fd;
	io->depth = depth;
	io->efd = -1;
	io->ops = ops;
	io->ctx = ctx;
	snprintf(io->name, sizeof(io->name), "%s", name);

	if (uring_disabled_by_env()) {
		log_info("%s: synchronous I/O (SKIFF_BLK_NO_URING is set)", name);
		return io;
	}
	ret = uring_setup(io);
	if (ret < 0) {
		log_info("%s: io_uring unavailable (%s): synchronous I/O on the worker thread",
			 name, strerror(-ret));
		return io;
	}
	io->async = true;
	io->sync_writes = buffered_writes(fd);
	log_info("%s: asynchronous I/O through io_uring (depth %u%s%s)%s", name, depth,
		 io->flags & IORING_SETUP_SINGLE_ISSUER ? ", single issuer" : "",
		 io->flags & IORING_SETUP_COOP_TASKRUN ? ", cooperative task run" : "",
		 io->sync_writes ? "; writes on the worker thread (a regular file: io_uring would "
				   "hand each to a kernel worker)"
				 : "");
	return io;
}

bool blk_io_is_async(const struct blk_io *io)
{
	return io->async;
}

unsigned blk_io_in_flight(const struct blk_io *io)
{
	return io->in_flight;
}

void blk_io_set_fd(struct blk_io *io, int fd)
{
	bool registered = io->fixed_file;

	io->fd = fd;
	if (io->async)
		io->sync_writes = buffered_writes(fd);
	if (!registered)
		return;
	uring_release_file(io);
	uring_register_file(io);
}

/* Drops the first `n` bytes from the iovec array (in place). */
static void iov_advance(struct iovec **iov, int *cnt, size_t n)
{
	while (*cnt > 0 && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

/* Accounts `n` transferred bytes; returns true when the request is complete. */
static bool transfer_progress(struct blk_io_req *req, size_t n)
{
	req->done += n;
	if (req->done >= req->len) {
		req->result = 0;
		return true;
	}
	iov_advance(&req->iov, &req->iovcnt, n);
	return false;
}

static void sync_run(struct blk_io *io, struct blk_io_req *req)
{
	ssize_t n;

	if (req->op == BLK_IO_FLUSH) {
		while (fdatasync(io->fd) < 0) {
			if (errno != EINTR) {
				req->result = -errno;
				return;
			}
		}
		req->result = 0;
		return;
	}
	if (req->len == 0) {
		req->result = 0;
		return;
	}
	for (;;) {
		off_t off = req->offset + (off_t)req->done;

		if (req->op == BLK_IO_READ)
			n = preadv(io->fd, req->iov, req->iovcnt, off);
		else
			n = pwritev(io->fd, req->iov, req->iovcnt, off);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			req->result = -errno;
			return;
		}
		if (n == 0) {
			req->result = -EIO; /* end of file: the image shrank under us */
			return;
		}
		if (transfer_progress(req, (size_t)n))
			return;
	}
}

/* Prepares an SQE for `req` from its current position; false when the SQ ring is full even after
 * handing the queued entries to the kernel. */
static bool uring_prep(struct blk_io *io, struct blk_io_req *req)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);

	if (!sqe) {
		if (may_submit(io))
			io_uring_submit(&io->ring);
		sqe = io_uring_get_sqe(&io->ring);
		if (!sqe)
			return false;
	}
	int fd = io->fixed_file ? 0 : io->fd;

	switch (req->op) {
	case BLK_IO_READ:
		io_uring_prep_readv(sqe, fd, req->iov, req->iovcnt, req->offset + (off_t)req->done);
		break;
	case BLK_IO_WRITE:
		io_uring_prep_writev(sqe, fd, req->iov, req->iovcnt,
				     req->offset + (off_t)req->done);
		break;
	case BLK_IO_FLUSH:
		/* Drain: the flush starts once every earlier request has completed, so what the
		 * guest saw completed before it asked for the flush is on stable storage. */
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		sqe->flags |= IOSQE_IO_DRAIN;
		break;
	}
	if (io->fixed_file)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, req);
	io->need_submit = true;
	return true;
}

void blk_io_submit(struct blk_io *io, struct blk_io_req *req)
{
	req->done = 0;
	req->result = 0;
	if (!io->async || (req->op != BLK_IO_FLUSH && req->len == 0) ||
	    (req->op == BLK_IO_WRITE && io->sync_writes)) {
		sync_run(io, req);
		io->ops->done(io->ctx, req);
		return;
	}
	if (!uring_prep(io, req)) {
		/* Cannot happen while the caller keeps fewer than `depth` requests in flight;
		 * finish the request the slow way rather than lose it. */
		sync_run(io, req);
		io->ops->done(io->ctx, req);
		return;
	}
	io->in_flight++;
}

void blk_io_kick(struct blk_io *io)
{
	int ret;

	if (!io->async || !io->need_submit)
		return;
	if (!may_submit(io)) {
		log_error("%s: io_uring entries queued off the ring's thread: not submitted",
			  io->name);
		return;
	}
	do {
		ret = io_uring_submit(&io->ring);
	} while (ret == -EINTR);
	if (ret >= 0) {
		io->need_submit = false;
		return;
	}
	/* -EAGAIN/-EBUSY: the kernel is short of resources; the entries stay in the SQ ring and
	 * are handed over again at the next kick or completion. */
	log_debug("%s: io_uring submit: %s (will retry)", io->name, strerror(-ret));
}

/* Handles one completion; returns true when its request is finished (false: resubmitted). */
static bool uring_complete(struct blk_io *io, struct blk_io_req *req, int res)
{
	if (req->op == BLK_IO_FLUSH) {
		req->result = res < 0 ? res : 0;
		return true;
	}
	if (res == -EINTR || res == -EAGAIN) {
		if (uring_prep(io, req))
			return false;
		req->result = -EIO;
		return true;
	}
	if (res < 0) {
		req->result = res;
		return true;
	}
	if (res == 0) {
		req->result = -EIO;
		return true;
	}
	if (transfer_progress(req, (size_t)res))
		return true;
	if (!uring_prep(io, req)) {
		req->result = -EIO;
		return true;
	}
	return false;
}

/* Reaps the completions available now, REAP_BATCH at a time. Returns how many requests
 * finished. */
static unsigned uring_reap(struct blk_io *io)
{
	struct io_uring_cqe *cqes[REAP_BATCH];
	struct {
		struct blk_io_req *req;
		int res;
	} got[REAP_BATCH];
	unsigned finished = 0, n;

	while ((n = io_uring_peek_batch_cqe(&io->ring, cqes, REAP_BATCH)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			got[i].req = io_uring_cqe_get_data(cqes[i]);
			got[i].res = cqes[i]->res;
		}
		io_uring_cq_advance(&io->ring, n);
		for (unsigned i = 0; i < n; i++) {
			struct blk_io_req *req = got[i].req;

			if (!req || !uring_complete(io, req, got[i].res))
				continue;
			io->in_flight--;
			finished++;
			if (!io->quiet)
				io->ops->done(io->ctx, req);
		}
	}
	blk_io_kick(io); /* continuations of short transfers */
	return finished;
}

static void on_completion(void *ctx, uint32_t events)
{
	struct blk_io *io = ctx;
	uint64_t count;

	if (read(io->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_debug("%s: eventfd read: %s", io->name, strerror(errno));
	if (uring_reap(io))
		io->ops->batch_done(io->ctx);
}

void blk_io_drain(struct blk_io *io)
{
	struct io_uring_cqe *cqe;
	unsigned finished = 0;
	bool submitter;
	int ret;

	if (!io->async)
		return;
	submitter = may_submit(io);
	while (io->in_flight > 0) {
		if (submitter) {
			/* Hands over what is still queued, waits for at least one completion. */
			ret = io_uring_submit_and_wait(&io->ring, 1);
			if (ret >= 0)
				io->need_submit = false;
		} else if (io_uring_sq_ready(&io->ring) < io->in_flight) {
			/* Off the ring's thread (a VM being destroyed): wait, submit nothing. */
			ret = io_uring_wait_cqe(&io->ring, &cqe);
		} else {
			log_error("%s: %u requests never reached the kernel (queued off the "
				  "ring's thread): dropped",
				  io->name, io->in_flight);
			io->in_flight = 0;
			break;
		}
		if (ret < 0 && ret != -EINTR)
			usleep(1000); /* the kernel is short of resources: try again shortly */
		finished += uring_reap(io);
	}
	if (finished && !io->quiet)
		io->ops->batch_done(io->ctx);
}

/* Binds a SINGLE_ISSUER ring to the calling thread, the one that serves the device from now on.
 * A ring bound to another thread (the device moved to a new worker) is made again for this one:
 * attach follows creation or a reset, so nothing is in flight. */
static int uring_bind(struct blk_io *io)
{
	pid_t me = this_thread();
	int ret;

	if (!(io->flags & IORING_SETUP_SINGLE_ISSUER) || (io->enabled && io->owner == me))
		return 0;
	if (io->enabled) {
		if (io->in_flight)
			return -EBUSY;
		log_debug("%s: io_uring made again for thread %d", io->name, (int)me);
		uring_teardown(io);
		ret = uring_setup(io);
		if (ret < 0) {
			log_warn("%s: io_uring unavailable (%s): synchronous I/O on the worker "
				 "thread",
				 io->name, strerror(-ret));
			io->async = false;
			return 0;
		}
		if (!(io->flags & IORING_SETUP_SINGLE_ISSUER))
			return 0;
	}
	/* Debian's liburing 2.3 declares io_uring_enable_rings() but its shared library does not
	 * export it: the register call itself. */
	ret = (int)syscall(__NR_io_uring_register, io->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS,
			   NULL, 0);
	if (ret < 0)
		ret = -errno;
	if (ret < 0) {
		log_error("%s: cannot enable the io_uring: %s", io->name, strerror(-ret));
		return ret;
	}
	io->enabled = true;
	io->owner = me;
	return 0;
}

int blk_io_attach(struct blk_io *io, struct event_loop *loop)
{
	int ret;

	if (!io->async || io->attached)
		return 0;
	ret = uring_bind(io);
	if (ret < 0 || !io->async)
		return ret;
	ret = event_loop_add(loop, io->efd, EPOLLIN, on_completion, io);
	if (ret < 0) {
		log_error("%s: cannot watch io_uring completions: %s", io->name, strerror(-ret));
		return ret;
	}
	io->attached = true;
	uring_register_file(io);
	return 0;
}

void blk_io_detach(struct blk_io *io, struct event_loop *loop)
{
	uint64_t count;

	if (!io->attached)
		return;
	uring_release_file(io);
	event_loop_del(loop, io->efd);
	io->attached = false;
	if (read(io->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_debug("%s: eventfd read: %s", io->name, strerror(errno));
}

void blk_io_destroy(struct blk_io *io)
{
	if (!io)
		return;
	if (io->async) {
		io->quiet = true;
		blk_io_drain(io);
		uring_teardown(io);
	}
	free(io);
}

static int fallocate_retry(int fd, int mode, off_t offset, off_t len)
{
	while (fallocate(fd, mode, offset, len) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int blk_io_discard(struct blk_io *io, off_t offset, off_t len)
{
	int ret;

	if (len == 0)
		return 0;
	ret = fallocate_retry(io->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len);
	if (ret == -EOPNOTSUPP)
		return 0; /* discarding is a hint: the data may stay */
	return ret;
}

static int write_zeroes_by_hand(int fd, off_t offset, off_t len)
{
	static const char zeroes[64 * 1024];

	while (len > 0) {
		size_t chunk = len < (off_t)sizeof(zeroes) ? (size_t)len : sizeof(zeroes);
		ssize_t n = pwrite(fd, zeroes, chunk, offset);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		offset += n;
		len -= n;
	}
	return 0;
}

int blk_io_write_zeroes(struct blk_io *io, off_t offset, off_t len, bool unmap)
{
	int ret;

	if (len == 0)
		return 0;
	if (unmap &&
	    fallocate_retry(io->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len) == 0)
		return 0;
	ret = fallocate_retry(io->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, len);
	if (ret == -EOPNOTSUPP || ret == -EINVAL) /* e.g. tmpfs, or an old file system */
		ret = write_zeroes_by_hand(io->fd, offset, len);
	return ret;
}
