/* virtio-blk (virtio 1.x 5.2) over a raw image file: read, write, flush (fdatasync), discard and
 * write-zeroes (hole punching), GET_ID; read-only disks refuse writes with VIRTIO_BLK_S_IOERR.
 * I/O is asynchronous through io_uring (liburing), with a synchronous fallback on the worker
 * thread when io_uring is unavailable. The image is locked (OFD lock: write lock when writable,
 * read lock when read-only) so that two VMs cannot open it for writing. */
#ifndef SKIFF_VIRTIO_BLK_H
#define SKIFF_VIRTIO_BLK_H

#include "config/vm_config.h"
#include "virtio/device.h"

#include <stdint.h>

/* 5.2.3 Feature bits */
#define VIRTIO_BLK_F_SIZE_MAX	  1
#define VIRTIO_BLK_F_SEG_MAX	  2
#define VIRTIO_BLK_F_RO		  5
#define VIRTIO_BLK_F_BLK_SIZE	  6
#define VIRTIO_BLK_F_FLUSH	  9
#define VIRTIO_BLK_F_MQ		  12
#define VIRTIO_BLK_F_DISCARD	  13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* 5.2.6 Request types and status values */
#define VIRTIO_BLK_T_IN		  0
#define VIRTIO_BLK_T_OUT	  1
#define VIRTIO_BLK_T_FLUSH	  4
#define VIRTIO_BLK_T_GET_ID	  8
#define VIRTIO_BLK_T_DISCARD	  11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK		  0
#define VIRTIO_BLK_S_IOERR	  1
#define VIRTIO_BLK_S_UNSUPP	  2
#define VIRTIO_BLK_ID_BYTES	  20 /* GET_ID: the serial, NUL-padded, not NUL-terminated */
#define VIRTIO_BLK_SECTOR_SIZE	  512

#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1

/* The request header (device-readable, first) and one discard/write-zeroes segment (the data of
 * those requests); little-endian. */
struct virtio_blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* 5.2.4 Device configuration layout (what config_read serves), little-endian. */
struct virtio_blk_config {
	uint64_t capacity; /* in 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp;
		uint8_t alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} topology;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

/* Opens and locks the image. Returns 0 with *out set, or -errno after one logged line that
 * names the file and the reason. */
int virtio_blk_create(const struct disk_config *cfg, struct virtio_device **out);
/* The same without the lock, for a live migration's destination that builds its VM while the
 * source still holds the image: virtio_blk_set_lock(dev, true) takes it at the handover. */
int virtio_blk_create_unlocked(const struct disk_config *cfg, struct virtio_device **out);

/* Replaces the backing file of a disk while the guest runs (PATCH /drives/{id}): requests in
 * flight complete on the old file, which is then flushed, unlocked and closed; the new file is
 * opened and locked with the disk's read-only setting, the capacity follows its size, and the
 * guest is told by a configuration-change interrupt. On failure the old file stays in use.
 * Returns 0, or -errno with a one-line reason as the calling thread's last error
 * (log_set_error). Safe from any thread. The same file again keeps its lock and only takes its
 * new size (a resized image); an image smaller than one sector is refused (-EINVAL). A refusal
 * is also logged once as a warning. */
int virtio_blk_replace_backing(struct virtio_device *dev, const char *path);
/* Lets go of the image's lock (held false), or takes it again, on the device's worker: live
 * migration hands the disk to another skiff on the same host (vmm/migration.h). 0, or -errno with
 * the reason as the thread's last error (-EBUSY: another process holds it). */
int virtio_blk_set_lock(struct virtio_device *dev, bool held);

/* Replaces the buckets of the disk's rate limiter named in `which` (RATE_LIMITER_BANDWIDTH,
 * RATE_LIMITER_OPS of virtio/rate_limiter.h) by cfg's, on the device's worker (PATCH
 * /drives/{id}); the others keep their state. A queue waiting on the old limiter is looked at
 * again at once. Returns 0, or -errno with the reason as the calling thread's last error. Safe
 * from any thread. */
int virtio_blk_set_rate_limiter(struct virtio_device *dev, const struct rate_limiter_config *cfg,
				unsigned which);

/* Cumulative figures since the device was created (not cleared by a guest reset), for metrics.
 * Bytes count data of completed requests; `errors` are requests answered VIRTIO_BLK_S_IOERR and
 * `unsupported` those answered VIRTIO_BLK_S_UNSUPP. */
struct virtio_blk_stats {
	uint64_t read_requests, read_bytes;
	uint64_t write_requests, write_bytes;
	uint64_t flushes;
	uint64_t discards, write_zeroes;
	uint64_t errors, unsupported;
};

/* Safe from any thread (each counter is read atomically; together they are a near snapshot). */
void virtio_blk_get_stats(const struct virtio_device *dev, struct virtio_blk_stats *out);

#endif
