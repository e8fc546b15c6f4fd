/* The disk backend of virtio-blk: reads, writes and flushes of one image file, asynchronous
 * through io_uring (liburing) when the kernel allows it, else synchronous on the caller's thread
 * (preadv/pwritev/fdatasync). SKIFF_BLK_NO_URING=1 in the environment forces the synchronous
 * backend. Discard and write-zeroes are synchronous fallocate() calls in both backends.
 *
 * Requests are submitted and completed on the device's worker thread: blk_io_submit() queues a
 * request, blk_io_kick() hands the queued ones to the kernel, and each completion calls ops->done
 * on the worker thread, followed by one ops->batch_done after each batch of completions. The
 * synchronous backend completes a request inside blk_io_submit() (ops->done, no batch_done), and
 * so does the asynchronous one a write to an image that is a regular file (pwritev on the worker:
 * io_uring would hand each such write to a kernel worker; see blk_io.c).
 * Short transfers are continued until the whole request is done or the file ends (-EIO). */
#ifndef SKIFF_VIRTIO_BLK_IO_H
#define SKIFF_VIRTIO_BLK_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct event_loop;

enum blk_io_op { BLK_IO_READ, BLK_IO_WRITE, BLK_IO_FLUSH };

struct blk_io_req {
	enum blk_io_op op;
	struct iovec *iov; /* consumed (advanced in place) as short transfers continue */
	int iovcnt;
	off_t offset;
	size_t len;  /* bytes the request transfers */
	size_t done; /* bytes transferred so far */
	int result;  /* on completion: 0, or -errno */
};

struct blk_io_ops {
	void (*done)(void *ctx, struct blk_io_req *req);
	void (*batch_done)(void *ctx);
};

struct blk_io;

/* `depth`: the most requests in flight at once. `name` prefixes log lines. Returns NULL after a
 * logged line when memory runs out; a refused io_uring is not an error (synchronous backend). */
struct blk_io *blk_io_create(int fd, unsigned depth, const char *name, const struct blk_io_ops *ops,
			     void *ctx);
/* Frees the backend; waits for requests still in flight first (their `done` is not called). */
void blk_io_destroy(struct blk_io *io);

bool blk_io_is_async(const struct blk_io *io);

/* Watch for completions on `loop` (async backend; a no-op for the synchronous one). */
int blk_io_attach(struct blk_io *io, struct event_loop *loop);
void blk_io_detach(struct blk_io *io, struct event_loop *loop);

/* The caller guarantees fewer than `depth` requests are in flight. A flush starts after every
 * earlier request has completed. */
void blk_io_submit(struct blk_io *io, struct blk_io_req *req);
void blk_io_kick(struct blk_io *io);
/* Points the backend at another image file (a disk's backing file was swapped). Nothing may be
 * in flight: drain first. The caller owns both fds. */
void blk_io_set_fd(struct blk_io *io, int fd);
/* Requests submitted and not completed yet. */
unsigned blk_io_in_flight(const struct blk_io *io);
/* Blocks until nothing is in flight, calling `done` for each request that completes (and
 * batch_done at the end). On the worker thread, or after it stopped watching (detach). */
void blk_io_drain(struct blk_io *io);

/* Synchronous: deallocate [offset, offset + len) (reads return zeroes afterwards; a file system
 * that cannot punch holes leaves the data, which discard allows), or zero it (`unmap`: may
 * deallocate). Return 0 or -errno. */
int blk_io_discard(struct blk_io *io, off_t offset, off_t len);
int blk_io_write_zeroes(struct blk_io *io, off_t offset, off_t len, bool unmap);

#endif
