/* virtio-blk (virtio 1.x 5.2) over a raw image file: read, write, flush (fdatasync), discard and
 * write-zeroes (hole punching), GET_ID; read-only disks refuse writes with VIRTIO_BLK_S_IOERR.
 * I/O is asynchronous through io_uring (liburing), with a synchronous fallback on the worker
 * thread when io_uring is unavailable. The image is locked (OFD lock: write lock when writable,
 * read lock when read-only) so that two VMs cannot open it for writing. */
#ifndef SKIFF_VIRTIO_BLK_H
#define SKIFF_VIRTIO_BLK_H

#include "config/vm_config.h"
#include "virtio/device.h"

/* Opens and locks the image. Returns 0 with *out set, or -errno after one logged line that
 * names the file and the reason. */
int virtio_blk_create(const struct disk_config *cfg, struct virtio_device **out);

#endif
