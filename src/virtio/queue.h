/* The split virtqueue (virtio 1.x, 2.7), device side. The guest driver owns the descriptor table
 * and the available ring and may write anything there at any time: everything read from them is
 * untrusted. Every guest address and length goes through guest_mem_ptr(); chains are bounded (no
 * loop, no chain longer than the queue size or VIRTQ_MAX_SEGS, no overflowing total length); a
 * rule broken by the driver makes virtq_pop() fail with a reason, and the caller marks its device
 * DEVICE_NEEDS_RESET (virtio_dev_fail()).
 *
 * Supports VIRTIO_F_INDIRECT_DESC and VIRTIO_F_EVENT_IDX (suppression both ways). A queue is used
 * from one thread at a time: its device's worker thread, once the driver set DRIVER_OK. */
#ifndef SKIFF_VIRTIO_QUEUE_H
#define SKIFF_VIRTIO_QUEUE_H

#include "base/guest_mem.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define VIRTQ_MAX_SIZE 1024 /* the largest queue size a device may offer */
#define VIRTQ_MAX_SEGS 256  /* the most buffers one chain (direct or indirect) may have */

/* 2.7.5 The virtqueue descriptor table; all fields little-endian (x86_64 and arm64 hosts). */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY	   1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* [size], then used_event */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* [size], then avail_event */
};

struct virtq {
	/* Written by the transport as the driver configures the queue. */
	uint16_t size; /* QueueNum: a power of 2, 1..max_size */
	uint16_t max_size;
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;

	/* Set by virtq_activate(). */
	const struct guest_mem *mem;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	bool event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;	/* VIRTIO_F_INDIRECT_DESC negotiated */
	uint16_t last_avail_idx; /* next available-ring entry the device will take */
	uint16_t used_idx;	 /* the device's copy of used->idx */
	uint16_t signalled_used; /* used_idx when the driver was last notified */
	bool signalled_used_valid;
	char error[128];	 /* why the last virtq_pop()/virtq_activate() failed */
};

/* One descriptor chain taken from the available ring, translated to host memory: `out` buffers
 * (device-readable, driver -> device) first, then `in` buffers (device-writable). */
struct virtq_elem {
	uint16_t head; /* descriptor index to give back in the used ring */
	uint16_t nr_out, nr_in;
	uint32_t out_len, in_len; /* total bytes of each kind (fits: checked) */
	struct iovec iov[VIRTQ_MAX_SEGS]; /* iov[0 .. nr_out) out, iov[nr_out .. nr_out + nr_in) in */
};

/* Sets up a queue whose size and ring addresses the driver has written: checks size (power of 2,
 * <= max_size) and that each ring lies wholly in guest RAM with its required alignment. Returns 0,
 * or -EINVAL with q->error set. `features` are the negotiated feature bits. */
int virtq_activate(struct virtq *q, const struct guest_mem *mem, uint64_t features);

/* Forgets everything the driver set up (device reset); keeps max_size. */
void virtq_reset(struct virtq *q);

/* Takes the next available chain. Returns 1 with `e` filled, 0 when the ring is empty, or
 * -EINVAL when the driver broke a rule (q->error says which; the queue must not be used again
 * until reset). */
int virtq_pop(struct virtq *q, struct virtq_elem *e);

/* virtq_pop(), and on an empty ring: asks for the next kick (virtq_set_notification) and looks
 * once more for a chain the driver added before it saw that, so that a device which then waits
 * for its kick misses nothing. Returns as virtq_pop(). For a device that handles every chain as
 * it comes; one that stops early (no room downstream) arms the queue itself when it stops. */
int virtq_pop_armed(struct virtq *q, struct virtq_elem *e);

/* Undoes the last successful virtq_pop() (the device could not use the buffers yet, e.g. RX with
 * no packet): the same chain is returned by the next pop. */
void virtq_unpop(struct virtq *q);

/* Returns chain `head` to the driver with `written` bytes written into its in buffers. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t written);

/* After one or more pushes: true when the driver wants an interrupt now (honours
 * VIRTQ_AVAIL_F_NO_INTERRUPT or, with EVENT_IDX, used_event). */
bool virtq_should_notify(struct virtq *q);

/* Asks the driver to kick (true) or not to (false) when it adds buffers: VIRTQ_USED_F_NO_NOTIFY
 * or, with EVENT_IDX, avail_event. After enabling, a device must check the ring again
 * (virtq_has_avail) before sleeping, to close the race with a driver that added buffers before it
 * saw the change. */
void virtq_set_notification(struct virtq *q, bool enable);

/* True when the available ring holds chains the device has not taken. */
bool virtq_has_avail(struct virtq *q);

/* Copy helpers over an element's buffers: copy out of the out buffers starting `offset` bytes
 * in, or into the in buffers; return bytes copied (short when the buffers are shorter). */
size_t virtq_elem_read(const struct virtq_elem *e, size_t offset, void *dst, size_t len);
size_t virtq_elem_write(const struct virtq_elem *e, size_t offset, const void *src, size_t len);

#endif
