/* virtio-balloon (virtio 1.2, 5.5): the guest gives pages back to the host. The host sets a
 * target (num_pages, in 4 KiB pages); the guest's driver inflates towards it, sending the page
 * frame numbers it took on the inflate queue, and the device returns those pages to the host with
 * madvise(MADV_DONTNEED) after checking each against guest RAM; deflating needs nothing (the pages
 * fault back in, zeroed). With the statistics queue the device asks the driver for its memory
 * statistics at a polling interval; with free page reporting the driver reports free ranges,
 * which go back to the host the same way.
 *
 * A driver that sends a page frame number outside guest RAM, or buffers of the wrong direction,
 * gets the device marked DEVICE_NEEDS_RESET (one log line); statistics entries with unknown tags
 * and a trailing partial entry are ignored.
 *
 * Threads: queue work, the statistics timer and the changes below run on the device's worker;
 * virtio_balloon_set_target() and virtio_balloon_set_stats_interval() may be called from any
 * thread (they run their part on the worker and wait), virtio_balloon_stats() from any thread. */
#ifndef SKIFF_VIRTIO_BALLOON_H
#define SKIFF_VIRTIO_BALLOON_H

#include "virtio/device.h"

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_ID_BALLOON 5

/* Feature bits (5.5.3). */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST	 0
#define VIRTIO_BALLOON_F_STATS_VQ	 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM	 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT	 3
#define VIRTIO_BALLOON_F_PAGE_POISON	 4
#define VIRTIO_BALLOON_F_PAGE_REPORTING 5

#define VIRTIO_BALLOON_PFN_SHIFT 12 /* the device's page: 4 KiB, whatever the guest's */

/* The statistics' tags (5.5.6.3); Linux 6.12 added the last six. */
enum {
	VIRTIO_BALLOON_S_SWAP_IN,
	VIRTIO_BALLOON_S_SWAP_OUT,
	VIRTIO_BALLOON_S_MAJFLT,
	VIRTIO_BALLOON_S_MINFLT,
	VIRTIO_BALLOON_S_MEMFREE,
	VIRTIO_BALLOON_S_MEMTOT,
	VIRTIO_BALLOON_S_AVAIL,
	VIRTIO_BALLOON_S_CACHES,
	VIRTIO_BALLOON_S_HTLB_PGALLOC,
	VIRTIO_BALLOON_S_HTLB_PGFAIL,
	VIRTIO_BALLOON_S_OOM_KILL,
	VIRTIO_BALLOON_S_ALLOC_STALL,
	VIRTIO_BALLOON_S_ASYNC_SCAN,
	VIRTIO_BALLOON_S_DIRECT_SCAN,
	VIRTIO_BALLOON_S_ASYNC_RECLAIM,
	VIRTIO_BALLOON_S_DIRECT_RECLAIM,
	VIRTIO_BALLOON_S_NR
};

struct virtio_balloon_params {
	uint32_t amount_mib;		   /* the initial target */
	bool deflate_on_oom;
	uint16_t stats_polling_interval_s; /* 0: no statistics queue */
	bool free_page_reporting;
};

/* What the device knows now, for GET /balloon/statistics. */
struct virtio_balloon_stats {
	uint32_t target_pages, actual_pages; /* 4 KiB pages: num_pages, and the driver's actual */
	bool has[VIRTIO_BALLOON_S_NR];	     /* the driver sent this statistic */
	uint64_t value[VIRTIO_BALLOON_S_NR];
	uint64_t stats_updates;	   /* statistics buffers received */
	uint64_t inflated_pages;   /* PFNs given back to the host */
	uint64_t deflated_pages;   /* PFNs the driver took back */
	uint64_t reported_bytes;   /* free page reporting's ranges given back */
};

/* The statistics' names as Firecracker's BalloonStats has them ("swap_in", ...). */
extern const char *const virtio_balloon_stat_names[VIRTIO_BALLOON_S_NR];

/* Returns 0 and the device, or -errno after a logged line. */
int virtio_balloon_create(const struct virtio_balloon_params *p, struct virtio_device **out);

/* A new target: the config space's num_pages, and a configuration-change interrupt once the
 * driver has the device running. 0, or -errno with the reason as the thread's last error. */
int virtio_balloon_set_target(struct virtio_device *dev, uint32_t amount_mib);
/* A new statistics polling interval (not 0), the first request at once; -EINVAL (reason set)
 * when the device has no statistics queue. */
int virtio_balloon_set_stats_interval(struct virtio_device *dev, uint16_t seconds);
/* Whether it offers statistics (it was created with an interval). */
bool virtio_balloon_has_stats(struct virtio_device *dev);
void virtio_balloon_get_stats(struct virtio_device *dev, struct virtio_balloon_stats *out);

#endif
