/* The device harnesses' driver (tests/fuzz/fuzz_virtio_*.c): a virtio device attached to small
 * guest RAM, its worker thread, and its queues, as tests/unit/virtio_driver.h does for the unit
 * tests, but run by a program the fuzzer writes instead of by asserts. One input:
 *
 *   u32 feature mask   (offered & mask) | VERSION_1 is negotiated
 *   u8  per queue      log2 of its size (low 3 bits: 1..128; the rings of a queue beyond 16
 *                      overlap each other, which a device must survive too)
 *   u8  n, then n ops  8 bytes each: u8 code (kick queue a, config read or write of 1 << b
 *                      bytes at a, kick all), u8 a, u8 b, u32 value, u8 unused
 *   the rest           guest RAM from address 0 (then zeros): rings at queue q's 0x400 * q
 *                      (descriptors), + 0x100 (available), + 0x200 (used); buffers anywhere
 *
 * activate, queue_notify and reset run on the device's worker thread (event_loop_call), config
 * reads and writes on the calling thread (a vCPU's, for a real transport). After the ops the
 * device is reset, so every input starts from a device as created. */
#ifndef SKIFF_TESTS_FUZZ_VIRTIO_DEV_H
#define SKIFF_TESTS_FUZZ_VIRTIO_DEV_H

#include "fuzz/input.h"
#include "virtio/device.h"

#define FUZZ_DEV_MAX_QUEUES 4	    /* virtio-balloon: inflate, deflate, statistics, reporting */
#define FUZZ_DEV_RAM	    0x4000  /* low RAM: [0, 16 KiB) */
#define FUZZ_DEV_RAM2	    0x10000 /* a second region [64 KiB, 68 KiB): a hole below it */
#define FUZZ_DEV_RAM2_SIZE  0x1000

struct fuzz_dev {
	struct guest_mem mem;
	struct event_loop *loop;
	struct virtio_device *dev;
	struct virtq queues[FUZZ_DEV_MAX_QUEUES];
	unsigned fails, signals;
	/* Called (on the fuzzer's thread) before each kick of queue q, for device-specific input
	 * the harness took from the front of the input: a packet on the backend, console input. */
	void (*before_kick)(struct fuzz_dev *f, uint16_t q);
	void *ctx;
};

/* Maps RAM, starts the worker and attaches `dev`; aborts on failure (a broken harness). */
void fuzz_dev_init(struct fuzz_dev *f, struct virtio_device *dev, const char *loop_name);
/* Runs one input (see above). */
void fuzz_dev_run(struct fuzz_dev *f, struct fuzz_input *in);
/* Silences skiff's log (a rejected request logs a line; the fuzzer makes millions). */
void fuzz_quiet_log(void);

#endif
