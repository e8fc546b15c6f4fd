/* virtio-rng (virtio 1.x 5.4): the guest's /dev/hwrng, filled from the host's getrandom(). */
#ifndef SKIFF_VIRTIO_RNG_H
#define SKIFF_VIRTIO_RNG_H

#include "virtio/device.h"

int virtio_rng_create(struct virtio_device **out);

#endif
