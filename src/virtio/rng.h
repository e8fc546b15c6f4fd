/* virtio-rng (virtio 1.x 5.4): the guest's /dev/hwrng, filled from the host's getrandom(). */
#ifndef SKIFF_VIRTIO_RNG_H
#define SKIFF_VIRTIO_RNG_H

#include "virtio/device.h"
#include "base/token_bucket.h"

/* `limit` (NULL: none) limits the bytes handed out and the requests (docs/rate-limiters.md):
 * a request waits on the limiter's timer, the ring untouched, until it may go. */
int virtio_rng_create(const struct rate_limiter_config *limit, struct virtio_device **out);

#endif
