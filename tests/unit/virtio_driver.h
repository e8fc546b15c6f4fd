/* A test-side virtio driver for the device unit tests: guest RAM, split rings laid out in it and
 * activated as a transport would, chains put on the available ring, kicks, the device's ops
 * called on its worker thread (a real event loop), and bounded waits for used buffers. It is the
 * device's transport too: it counts used-buffer signals, configuration changes and failures.
 * Functions assert (cmocka) instead of returning errors, so they run only on the test's main
 * thread. */
#ifndef SKIFF_TESTS_VIRTIO_DRIVER_H
#define SKIFF_TESTS_VIRTIO_DRIVER_H

#include "virtio/device.h"
#include "base/guest_mem.h"

#include <stdbool.h>
#include <stdint.h>

#define VDRV_MAX_QUEUES 8
#define VDRV_WAIT_MS	5000 /* how long the waits for used buffers last, at least */

/* One buffer of a chain: device-writable when `write`. */
struct vdrv_seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* One split ring as the driver sees it. */
struct vdrv_ring {
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t size;
	uint16_t next_desc;  /* next free descriptor (chains take consecutive ones) */
	uint16_t avail_idx;  /* the driver's copy of avail->idx */
	uint16_t used_seen;  /* used entries consumed by vdrv_take_used() and friends */
	uint16_t kicked_idx; /* avail_idx at the last vdrv_kick() */
};

struct vdrv_config {
	const struct guest_region *layout; /* guest RAM */
	int nr_regions;
	uint64_t buf_base, buf_end; /* vdrv_alloc() hands out [buf_base, buf_end) */
	unsigned buf_align;	    /* a power of 2 */
	bool buf_wrap;		    /* at buf_end start again at buf_base, instead of failing */
	const char *loop_name;	    /* the worker thread's name */
	bool shared_mem;	    /* guest RAM as memfds (a vhost-user device's backend maps it) */
};

struct vdrv {
	struct guest_mem mem;
	struct event_loop *loop;
	struct virtio_device *dev; /* set by vdrv_attach() */
	struct virtq queues[VDRV_MAX_QUEUES];
	struct vdrv_ring ring[VDRV_MAX_QUEUES];
	int nr_queues;	/* rings laid out */
	bool activated; /* the device's activate() has run once */
	struct vdrv_config cfg;
	uint64_t next_buf;
	/* What the device told its transport (read with __atomic loads: the worker writes). */
	int signals[VDRV_MAX_QUEUES];
	int fails;
	char fail_reason[256];
	/* Configuration changes signalled, as a transport keeps them: ConfigGeneration is bumped
	 * and VIRTIO_MMIO_INT_CONFIG set in the interrupt status (cleared by the test). */
	int config_signals;
	uint32_t config_generation;
	uint32_t interrupt_status;
	/* The queues' kick eventfds, as the core would give a backend_queues device
	 * (dev->kick_fd); vdrv_notify() does not write them. */
	int kick_fds[VDRV_MAX_QUEUES];
};

/* Maps guest RAM (zeroed) and starts the worker loop. */
void vdrv_init(struct vdrv *d, const struct vdrv_config *cfg);
/* Resets the device if it was ever activated, destroys it, stops the loop, unmaps RAM. */
void vdrv_fini(struct vdrv *d);
/* Points the device at this driver's memory, queues, loop and transport callbacks. */
void vdrv_attach(struct vdrv *d, struct virtio_device *dev);

/* Host pointer for guest [gpa, gpa + len); asserts it is guest RAM. */
void *vdrv_ptr(struct vdrv *d, uint64_t gpa, uint64_t len);
/* The next `len` bytes of buffer space (not cleared). */
uint64_t vdrv_alloc(struct vdrv *d, uint32_t len);

/* Lays queue q's rings out at the given addresses and clears them. */
void vdrv_ring_layout(struct vdrv *d, int q, uint16_t size, uint64_t desc_gpa, uint64_t avail_gpa,
		      uint64_t used_gpa);
/* DRIVER_OK: negotiates `features`, activates every laid-out queue, then the device (on its
 * worker), which must return 0. */
void vdrv_start(struct vdrv *d, uint64_t features);
/* Resets the device on its worker, then forgets the rings as vdrv_forget_rings() does. */
void vdrv_reset(struct vdrv *d);
/* After a reset: the queues are unconfigured, the rings cleared, the driver starts again at 0. */
void vdrv_forget_rings(struct vdrv *d);

/* Writes a chain into consecutive descriptors and offers it; returns its head. Not kicked. */
uint16_t vdrv_add_chain(struct vdrv *d, int q, const struct vdrv_seg *segs, int n);
/* Offers chain `head` on queue q's available ring (again). */
void vdrv_offer(struct vdrv *d, int q, uint16_t head);
/* Calls the device's queue_notify(q) on its worker. */
void vdrv_notify(struct vdrv *d, int q);
/* Kicks queue q only if the device asked for kicks (used flags, or avail_event with EVENT_IDX),
 * as a real driver does: a device that forgets to ask loses the wakeup. Returns whether it
 * kicked. */
bool vdrv_kick(struct vdrv *d, int q);

struct virtq_used *vdrv_used(struct vdrv *d, int q);
uint16_t vdrv_used_idx(struct vdrv *d, int q);
struct virtq_used_elem vdrv_used_elem(struct vdrv *d, int q, uint16_t i);
/* avail_event (EVENT_IDX): the avail index at which the device wants the next kick. */
uint16_t vdrv_avail_event(struct vdrv *d, int q);
/* Waits (at most VDRV_WAIT_MS) until used->idx reaches `idx`; false on timeout. */
bool vdrv_wait_used_idx(struct vdrv *d, int q, uint16_t idx);
/* Waits (at most VDRV_WAIT_MS) until `count` used entries are there past the consumed ones. */
bool vdrv_wait_used(struct vdrv *d, int q, unsigned count);
/* Consumes the next used entry, which must be there. */
struct virtq_used_elem vdrv_take_used(struct vdrv *d, int q);

#endif
