/* The hostile guest's cases. The test (tests/kvm/test_hostile.c) boots this guest with a
 * virtio-blk disk and a virtio-rng (and for "con" cases a virtio console) and writes one case name
 * on skiff's stdin, which reaches COM1 (or the virtio console when there is one); the guest
 * answers "hostile: CASE: ok" or "hostile: CASE: FAIL: why" on COM1 and powers the VM off.
 *
 *   "blk NAME" / "rng NAME" / "con NAME"
 *                            a ring case (ring_cases[]) against that device (the console's
 *                            transmit queue): the driver breaks a virtqueue rule; the device must
 *                            show DEVICE_NEEDS_RESET, the other devices must still serve a
 *                            request, and the broken one must work again after a reset.
 *   "req NAME"               a virtio-blk request case (blk_request_cases[]): a sound ring
 *                            carrying a request that breaks virtio-blk's rules (marked
 *                            DEVICE_NEEDS_RESET) or asks for what cannot be done (an error
 *                            status).
 *   NAME [N]                 a case of its own (other_cases[]), with an optional count:
 *                            floods and scans, fw_cfg's DMA misused; afterwards both devices
 *                            must (after a reset) serve requests.
 *
 * Guest memory (the test gives 64 MiB): the image from 0x1000, page tables at 0x80000, the stack
 * below 2 MiB, request headers at 0x3f0000, queue areas and scratch from 4 MiB, sector buffers at
 * 5 MiB, console input at 0x5f0000, large buffers from 16 MiB. */
#include "io.h"
#include "virtio.h"

#define BLK_AREA      0x400000ULL
#define RNG_AREA      0x410000ULL
#define SCRATCH	      0x420000ULL /* indirect tables */
#define BUF	      0x500000ULL
#define BIG_BUF	      0x1000000ULL
#define BIG_BUF_LEN   (32u << 20)
#define CON_RX_AREA   0x430000ULL
#define CON_TX_AREA   0x440000ULL
#define CON_IN	      0x5f0000ULL /* console input */
#define FW_CFG_REQ    0x450000ULL /* fw_cfg DMA requests */
#define BLK_QUEUE_LEN 256
#define CON_QUEUE_LEN 64
#define RNG_QUEUE_LEN 64
#define DISK_MAGIC    "HOSTILE-DISK" /* the test writes it at the start of the disk */

struct env {
	struct vdev blk, rng, con;
	struct vq blkq, rngq, conrx, contx;
	bool has_con; /* skiff was given --console virtio */
};

static const char *why;

static bool fail(const char *reason)
{
	why = reason;
	return false;
}

static bool start(struct env *e, bool blk)
{
	if (blk)
		return vdev_start(&e->blk, &e->blkq, BLK_QUEUE_LEN, BLK_AREA);
	return vdev_start(&e->rng, &e->rngq, RNG_QUEUE_LEN, RNG_AREA);
}

/* A request the device must serve: the disk's first sector, or 16 random bytes. */
static bool serves(struct env *e, bool blk)
{
	uint8_t *buf = (uint8_t *)BUF;

	memset(buf, 0, 512);
	if (blk) {
		if (!blk_read(&e->blkq, 0, buf))
			return false;
		for (int i = 0; DISK_MAGIC[i]; i++)
			if (buf[i] != (uint8_t)DISK_MAGIC[i])
				return false;
		return true;
	}
	if (!rng_read(&e->rngq, buf, 16))
		return false;
	for (int i = 0; i < 16; i++)
		if (buf[i])
			return true;
	return false;
}

/* virtio-console (--console virtio): its receive queue (0) carries skiff's stdin, so the case
 * name; its transmit queue (1) is the one hostile rings go to. */
static bool con_start(struct env *e)
{
	if (!vdev_negotiate(&e->con))
		return false;
	vq_setup(&e->con, &e->conrx, 0, CON_QUEUE_LEN, CON_RX_AREA);
	vq_setup(&e->con, &e->contx, 1, CON_QUEUE_LEN, CON_TX_AREA);
	vdev_driver_ok(&e->con);
	return !(vdev_read(&e->con, REG_STATUS) & STATUS_DEVICE_NEEDS_RESET);
}

/* A line out through the transmit queue (skiff writes it to its stdout). */
static bool con_serves(struct env *e)
{
	static const char msg[] = "hostile: the virtio console transmits\n";
	uint32_t len;

	memcpy((void *)BUF, msg, sizeof(msg) - 1);
	vq_set_desc(&e->contx, 0, BUF, sizeof(msg) - 1, 0, 0);
	vq_publish(&e->contx, 0);
	vq_kick(&e->contx);
	return vq_wait_used(&e->contx, 2000, &len);
}

static bool con_read_line(struct env *e, char *line, size_t size)
{
	const char *in = (const char *)CON_IN;
	size_t n = 0;

	for (;;) {
		uint32_t len;

		vq_set_desc(&e->conrx, 0, CON_IN, 64, DESC_F_WRITE, 0);
		vq_publish(&e->conrx, 0);
		vq_kick(&e->conrx);
		if (!vq_wait_used(&e->conrx, 20000, &len) || len > 64)
			return false;
		for (uint32_t i = 0; i < len; i++) {
			if (in[i] == '\n') {
				line[n] = '\0';
				return true;
			}
			if (n + 1 >= size)
				return false;
			line[n++] = in[i];
		}
	}
}

/* ---- ring cases: each breaks one rule in queue q of a started device ---- */

static void publish_kick(struct vq *q, uint16_t head)
{
	vq_publish(q, head);
	vq_kick(q);
}

static void desc_loop(struct vdev *d, struct vq *q)
{
	vq_set_desc(q, 0, BUF, 512, DESC_F_WRITE | DESC_F_NEXT, 1);
	vq_set_desc(q, 1, BUF, 512, DESC_F_WRITE | DESC_F_NEXT, 2);
	vq_set_desc(q, 2, BUF, 512, DESC_F_WRITE | DESC_F_NEXT, 0);
	publish_kick(q, 0);
}

static void desc_self(struct vdev *d, struct vq *q)
{
	vq_set_desc(q, 0, BUF, 512, DESC_F_WRITE | DESC_F_NEXT, 0);
	publish_kick(q, 0);
}

static void next_out_of_table(struct vdev *d, struct vq *q)
{
	vq_set_desc(q, 0, BUF, 512, DESC_F_WRITE | DESC_F_NEXT, 0xffff);
	publish_kick(q, 0);
}

static void addr_beyond_ram(struct vdev *d, struct vq *q)
{
	vq_set_desc(q, 0, 64ULL << 30, 512, DESC_F_WRITE, 0);
	publish_kick(q, 0);
}

/* The buffer is the device's own registers. */
static void addr_in_mmio(struct vdev *d, struct vq *q)
{
	vq_set_desc(q, 0, d->base, 512, DESC_F_WRITE, 0);
	publish_kick(q, 0);
}

static void addr_wraps(struct vdev *d, struct vq *q)
{
	vq_set_desc(q, 0, ~0ULL - 0xfff, 0x2000, DESC_F_WRITE, 0);
	publish_kick(q, 0);
}

static void len_4g(struct vdev *d, struct vq *q)
{
	vq_set_desc(q, 0, BUF, 0xffffffffu, DESC_F_WRITE, 0);
	publish_kick(q, 0);
}

static void len_zero(struct vdev *d, struct vq *q)
{
	vq_set_desc(q, 0, BUF, 0, DESC_F_WRITE, 0);
	publish_kick(q, 0);
}

/* 130 buffers of 32 MiB (all the same RAM): more than 4 GiB in one chain, in an indirect table
 * because a queue of 64 could not hold the chain. */
static void sum_over_4g(struct vdev *d, struct vq *q)
{
	struct vq t = {.desc = (volatile struct vring_desc *)SCRATCH};
	const uint16_t n = 130;

	for (uint16_t i = 0; i < n; i++)
		vq_set_desc(&t, i, BIG_BUF, BIG_BUF_LEN,
			    DESC_F_WRITE | (i + 1 < n ? DESC_F_NEXT : 0), i + 1);
	vq_set_desc(q, 0, SCRATCH, n * 16, DESC_F_INDIRECT, 0);
	publish_kick(q, 0);
}

static void indirect_self(struct vdev *d, struct vq *q)
{
	struct vq t = {.desc = (volatile struct vring_desc *)SCRATCH};

	vq_set_desc(&t, 0, SCRATCH, 16, DESC_F_INDIRECT, 0);
	vq_set_desc(q, 0, SCRATCH, 16, DESC_F_INDIRECT, 0);
	publish_kick(q, 0);
}

static void indirect_loop(struct vdev *d, struct vq *q)
{
	struct vq t = {.desc = (volatile struct vring_desc *)SCRATCH};

	for (uint16_t i = 0; i < 4; i++)
		vq_set_desc(&t, i, BUF, 512, DESC_F_WRITE | DESC_F_NEXT, (i + 1) % 4);
	vq_set_desc(q, 0, SCRATCH, 4 * 16, DESC_F_INDIRECT, 0);
	publish_kick(q, 0);
}

static void indirect_in_mmio(struct vdev *d, struct vq *q)
{
	vq_set_desc(q, 0, d->base, 256, DESC_F_INDIRECT, 0);
	publish_kick(q, 0);
}

static void indirect_len_4g(struct vdev *d, struct vq *q)
{
	vq_set_desc(q, 0, SCRATCH, 0xfffffff0u, DESC_F_INDIRECT, 0);
	publish_kick(q, 0);
}

static void avail_jump(struct vdev *d, struct vq *q)
{
	vq_set_desc(q, 0, BUF, 512, DESC_F_WRITE, 0);
	q->avail->ring[q->next_avail % q->size] = 0;
	barrier();
	q->next_avail += 1000;
	q->avail->idx = q->next_avail;
	barrier();
	vq_kick(q);
}

static void head_out_of_table(struct vdev *d, struct vq *q)
{
	publish_kick(q, 0xffff);
}

/* Queue set-up cases: the queue is configured wrongly, then DRIVER_OK. */
static void setup_with(struct vdev *d, struct vq *q, uint32_t size, uint64_t desc)
{
	vdev_negotiate(d);
	vq_setup(d, q, 0, q->size, q->area);
	vdev_write(d, REG_QUEUE_READY, 0);
	vdev_write(d, REG_QUEUE_NUM, size);
	if (desc) {
		vdev_write(d, REG_QUEUE_DESC, (uint32_t)desc);
		vdev_write(d, REG_QUEUE_DESC + 4, (uint32_t)(desc >> 32));
	}
	vdev_write(d, REG_QUEUE_READY, 1);
	vdev_driver_ok(d);
}

static void queue_size_0(struct vdev *d, struct vq *q)
{
	vdev_negotiate(d);
	vdev_write(d, REG_QUEUE_SEL, 0);
	vdev_write(d, REG_QUEUE_NUM, 0);
	vdev_write(d, REG_QUEUE_READY, 1);
	vdev_driver_ok(d);
}

static void queue_size_3(struct vdev *d, struct vq *q)
{
	vdev_negotiate(d);
	vdev_write(d, REG_QUEUE_SEL, 0);
	vdev_write(d, REG_QUEUE_NUM, 3);
	vdev_write(d, REG_QUEUE_READY, 1);
	vdev_driver_ok(d);
}

/* The descriptor table in the device's own registers, beyond RAM, or not 16-byte aligned. */
static void ring_in_mmio(struct vdev *d, struct vq *q)
{
	setup_with(d, q, q->size, d->base);
}

static void ring_beyond_ram(struct vdev *d, struct vq *q)
{
	setup_with(d, q, q->size, 64ULL << 30);
}

static void ring_misaligned(struct vdev *d, struct vq *q)
{
	setup_with(d, q, q->size, q->area + 8);
}

static const struct {
	const char *name;
	void (*run)(struct vdev *d, struct vq *q);
} ring_cases[] = {
    {"desc-loop", desc_loop},
    {"desc-self", desc_self},
    {"next-out-of-table", next_out_of_table},
    {"addr-beyond-ram", addr_beyond_ram},
    {"addr-in-mmio", addr_in_mmio},
    {"addr-wraps", addr_wraps},
    {"len-4g", len_4g},
    {"len-zero", len_zero},
    {"sum-over-4g", sum_over_4g},
    {"indirect-self", indirect_self},
    {"indirect-loop", indirect_loop},
    {"indirect-in-mmio", indirect_in_mmio},
    {"indirect-len-4g", indirect_len_4g},
    {"avail-jump", avail_jump},
    {"head-out-of-table", head_out_of_table},
    {"queue-size-0", queue_size_0},
    {"queue-size-3", queue_size_3},
    {"ring-in-mmio", ring_in_mmio},
    {"ring-beyond-ram", ring_beyond_ram},
    {"ring-misaligned", ring_misaligned},
};

/* `target` 'b' virtio-blk, 'r' virtio-rng, 'c' virtio-console (its transmit queue). */
static bool run_ring_case(struct env *e, char target, const char *name)
{
	bool blk = target == 'b';
	struct vdev *d = target == 'c' ? &e->con : blk ? &e->blk : &e->rng;
	struct vq *q = target == 'c' ? &e->contx : blk ? &e->blkq : &e->rngq;

	for (unsigned i = 0; i < sizeof(ring_cases) / sizeof(ring_cases[0]); i++) {
		if (strcmp(name, ring_cases[i].name))
			continue;
		ring_cases[i].run(d, q);
		if (!vdev_wait_needs_reset(d, 2000))
			return fail("the device did not set DEVICE_NEEDS_RESET");
		if (target == 'c') {
			if (!serves(e, true) || !serves(e, false))
				return fail("another device stopped serving requests");
			if (!con_start(e) || !con_serves(e))
				return fail("the device did not work again after a reset");
			return true;
		}
		if (!serves(e, !blk))
			return fail("the other device stopped serving requests");
		if (!start(e, blk) || !serves(e, blk))
			return fail("the device did not work again after a reset");
		return true;
	}
	return fail("no such ring case");
}

/* ---- virtio-blk requests: a sound ring, a request that breaks virtio-blk's own rules ---- */

#define BLK_S_OK     0
#define BLK_S_IOERR  1
#define BLK_S_UNSUPP 2
#define NEEDS_RESET  0xff /* expected: the device is marked, no status written */

/* Builds a request whose header (type, sector) is at SCRATCH and whose status byte is at
 * SCRATCH + 16, in descriptors from `first`; returns the next free descriptor. */
static uint16_t blk_header(struct vq *q, uint16_t first, uint32_t type, uint64_t sector,
			   uint32_t hdr_len)
{
	*(volatile uint32_t *)SCRATCH = type;
	*(volatile uint32_t *)(SCRATCH + 4) = 0;
	*(volatile uint64_t *)(SCRATCH + 8) = sector;
	*(volatile uint8_t *)(SCRATCH + 16) = 0xee;
	vq_set_desc(q, first, SCRATCH, hdr_len, DESC_F_NEXT, first + 1);
	return first + 1;
}

static void blk_status(struct vq *q, uint16_t d)
{
	vq_set_desc(q, d, SCRATCH + 16, 1, DESC_F_WRITE, 0);
}

/* Returns the status the device must write, or NEEDS_RESET. */
static uint8_t blk_no_status(struct vq *q)
{
	blk_header(q, 0, 0, 0, 16);
	vq_set_desc(q, 0, SCRATCH, 16, 0, 0); /* the header alone, nothing writable */
	return NEEDS_RESET;
}

static uint8_t blk_short_header(struct vq *q)
{
	blk_status(q, blk_header(q, 0, 0, 0, 8));
	return NEEDS_RESET;
}

static uint8_t blk_wrong_direction(struct vq *q)
{
	uint16_t d = blk_header(q, 0, 0 /* IN */, 0, 16);

	vq_set_desc(q, d, BUF, 512, DESC_F_NEXT, d + 1); /* readable data for a read */
	blk_status(q, d + 1);
	return NEEDS_RESET;
}

static uint8_t blk_beyond_disk(struct vq *q)
{
	uint16_t d = blk_header(q, 0, 0, 0xffffffffffffULL, 16);

	vq_set_desc(q, d, BUF, 512, DESC_F_WRITE | DESC_F_NEXT, d + 1);
	blk_status(q, d + 1);
	return BLK_S_IOERR;
}

static uint8_t blk_sector_wraps(struct vq *q)
{
	uint16_t d = blk_header(q, 0, 1 /* OUT */, ~0ULL, 16);

	vq_set_desc(q, d, BUF, 4096, DESC_F_NEXT, d + 1);
	blk_status(q, d + 1);
	return BLK_S_IOERR;
}

static uint8_t blk_unaligned_length(struct vq *q)
{
	uint16_t d = blk_header(q, 0, 0, 0, 16);

	vq_set_desc(q, d, BUF, 100, DESC_F_WRITE | DESC_F_NEXT, d + 1);
	blk_status(q, d + 1);
	return BLK_S_IOERR;
}

static uint8_t blk_unknown_type(struct vq *q)
{
	blk_status(q, blk_header(q, 0, 0x7777, 0, 16));
	return BLK_S_UNSUPP;
}

/* 16 segments of 2^32 - 1 sectors from sector 0: beyond the disk, refused as a whole. */
static uint8_t blk_huge_discard(struct vq *q)
{
	volatile uint32_t *seg = (volatile uint32_t *)BUF;
	uint16_t d = blk_header(q, 0, 11 /* DISCARD */, 0, 16);

	for (int i = 0; i < 16; i++) {
		seg[4 * i] = 0; /* sector */
		seg[4 * i + 1] = 0;
		seg[4 * i + 2] = 0xffffffffu; /* sectors */
		seg[4 * i + 3] = 0;	      /* flags */
	}
	vq_set_desc(q, d, BUF, 16 * 16, DESC_F_NEXT, d + 1);
	blk_status(q, d + 1);
	return BLK_S_IOERR;
}

/* A sound read whose header comes in 16 one-byte buffers and whose data in 8 of 64 bytes. */
static uint8_t blk_scattered(struct vq *q)
{
	uint16_t d;

	blk_header(q, 0, 0, 0, 16);
	for (d = 0; d < 16; d++)
		vq_set_desc(q, d, SCRATCH + d, 1, DESC_F_NEXT, d + 1);
	for (int i = 0; i < 8; i++, d++)
		vq_set_desc(q, d, BUF + 0x1000 + i * 64, 64, DESC_F_WRITE | DESC_F_NEXT, d + 1);
	blk_status(q, d);
	return BLK_S_OK;
}

static const struct {
	const char *name;
	uint8_t (*build)(struct vq *q);
} blk_request_cases[] = {
    {"no-status", blk_no_status},
    {"short-header", blk_short_header},
    {"wrong-direction", blk_wrong_direction},
    {"beyond-disk", blk_beyond_disk},
    {"sector-wraps", blk_sector_wraps},
    {"unaligned-length", blk_unaligned_length},
    {"unknown-type", blk_unknown_type},
    {"huge-discard", blk_huge_discard},
    {"scattered", blk_scattered},
};

/* "req NAME": the request is built in the started virtio-blk queue and published. Either the
 * device is marked DEVICE_NEEDS_RESET, or it answers with the expected status; either way
 * virtio-rng still serves and virtio-blk serves again (after a reset when it was marked). */
static bool run_blk_request_case(struct env *e, const char *name)
{
	for (unsigned i = 0; i < sizeof(blk_request_cases) / sizeof(blk_request_cases[0]); i++) {
		uint8_t want;
		uint32_t len;

		if (strcmp(name, blk_request_cases[i].name))
			continue;
		want = blk_request_cases[i].build(&e->blkq);
		vq_publish(&e->blkq, 0);
		vq_kick(&e->blkq);
		if (want == NEEDS_RESET) {
			if (!vdev_wait_needs_reset(&e->blk, 2000))
				return fail("the device did not set DEVICE_NEEDS_RESET");
		} else {
			if (!vq_wait_used(&e->blkq, 2000, &len))
				return fail("no answer");
			if (*(volatile uint8_t *)(SCRATCH + 16) != want)
				return fail("a wrong status byte");
			if (vdev_read(&e->blk, REG_STATUS) & STATUS_DEVICE_NEEDS_RESET)
				return fail("a request error marked the device DEVICE_NEEDS_RESET");
			if (want == BLK_S_OK)
				for (int k = 0; DISK_MAGIC[k]; k++)
					if (*(volatile uint8_t *)(BUF + 0x1000 + k) !=
					    DISK_MAGIC[k])
						return fail("the data read is wrong");
		}
		if (!serves(e, false))
			return fail("virtio-rng stopped serving requests");
		if (!start(e, true) || !serves(e, true))
			return fail("virtio-blk did not serve requests afterwards");
		return true;
	}
	return fail("no such blk request case");
}

/* ---- cases of their own ---- */

/* `count` kicks (the issue asks for a million) of queues with nothing in them (KVM's ioeventfd
 * takes them), then kicks of queues that do not exist (each one a trip to skiff). */
static bool notify_storm(struct env *e, uint32_t count)
{
	for (uint32_t i = 0; i < count / 2; i++) {
		vq_kick(&e->blkq);
		vq_kick(&e->rngq);
	}
	for (uint32_t i = 0; i < 20000; i++)
		vdev_write(&e->blk, REG_QUEUE_NOTIFY, 7 + i);
	return true;
}

/* A read in flight while the driver writes the (read-only) config space, rewrites Status and
 * queue registers, then resets the device with requests in the ring. */
static bool config_mid_request(struct env *e, uint32_t arg)
{
	uint32_t len;

	for (uint16_t i = 0; i < 32; i++) {
		vq_set_desc(&e->rngq, i, BUF + i * 4096, 4096, DESC_F_WRITE, 0);
		vq_publish(&e->rngq, i);
	}
	vq_kick(&e->rngq);
	for (uint32_t off = 0; off < 0x100; off++)
		mmio_write8(e->blk.base + REG_CONFIG + off, 0xff);
	for (uint32_t off = 0; off < 0x100; off += 4)
		mmio_write32(e->blk.base + REG_CONFIG + off, 0xffffffff);
	vdev_write(&e->rng, REG_QUEUE_NUM, 2);
	vdev_write(&e->rng, REG_QUEUE_DESC, 0xd0000000);
	vdev_driver_ok(&e->rng);
	vdev_write(&e->rng, REG_STATUS, 0xbf); /* every driver bit, and FAILED */
	vq_wait_used(&e->rngq, 200, &len);
	vdev_reset(&e->rng);
	/* Blk: reset with a read published and kicked. */
	vq_set_desc(&e->blkq, 0, SCRATCH, 16, DESC_F_NEXT, 1);
	vq_set_desc(&e->blkq, 1, BUF, 512, DESC_F_WRITE | DESC_F_NEXT, 2);
	vq_set_desc(&e->blkq, 2, SCRATCH + 16, 1, DESC_F_WRITE, 0);
	memset((void *)SCRATCH, 0, 16);
	publish_kick(&e->blkq, 0);
	vdev_reset(&e->blk);
	return true;
}

/* Buffers the device writes over its own rings: random bytes over the rng's available ring,
 * disk data over virtio-blk's descriptor table (what the device reads next is garbage: it may
 * fail the device or not, but must stay bounded). */
static bool buffer_over_ring(struct env *e, uint32_t arg)
{
	uint32_t len;

	for (uint16_t i = 0; i < 8; i++) {
		vq_set_desc(&e->rngq, i, (uint64_t)e->rngq.avail, 0x1000, DESC_F_WRITE, 0);
		vq_publish(&e->rngq, i);
	}
	vq_kick(&e->rngq);
	vq_wait_used(&e->rngq, 200, &len);
	*(volatile uint32_t *)SCRATCH = 0; /* VIRTIO_BLK_T_IN of sector 0 */
	*(volatile uint32_t *)(SCRATCH + 4) = 0;
	*(volatile uint64_t *)(SCRATCH + 8) = 0;
	for (uint16_t i = 0; i < 8; i++) {
		uint16_t d = (uint16_t)(3 * i);

		vq_set_desc(&e->blkq, d, SCRATCH, 16, DESC_F_NEXT, d + 1);
		vq_set_desc(&e->blkq, d + 1, vq_desc_gpa(&e->blkq), 512, DESC_F_WRITE | DESC_F_NEXT,
			    d + 2);
		vq_set_desc(&e->blkq, d + 2, SCRATCH + 16, 1, DESC_F_WRITE, 0);
		vq_publish(&e->blkq, d);
	}
	vq_kick(&e->blkq);
	vq_wait_used(&e->blkq, 200, &len);
	vq_kick(&e->blkq);
	return true;
}

/* The descriptor table, available ring and used ring at one address: the device's used-ring
 * writes land in what it reads next. */
static bool rings_overlap(struct env *e, uint32_t arg)
{
	struct vdev *devs[2] = {&e->blk, &e->rng};
	struct vq *qs[2] = {&e->blkq, &e->rngq};
	uint32_t len;

	for (int k = 0; k < 2; k++) {
		struct vq *q = qs[k];

		vdev_negotiate(devs[k]);
		vq_setup(devs[k], q, 0, q->size, q->area);
		vdev_write(devs[k], REG_QUEUE_READY, 0);
		vdev_write(devs[k], REG_QUEUE_DRIVER, (uint32_t)q->area);
		vdev_write(devs[k], REG_QUEUE_DEVICE, (uint32_t)q->area);
		vdev_write(devs[k], REG_QUEUE_READY, 1);
		vdev_driver_ok(devs[k]);
		for (uint16_t i = 0; i < 4; i++)
			vq_set_desc(q, i, BUF + i * 512, 512, DESC_F_WRITE, 0);
		q->avail = (volatile struct vring_avail *)q->area;
		q->used = (volatile struct vring_used *)q->area;
		for (uint16_t i = 0; i < 4; i++)
			vq_publish(q, i);
		vq_kick(q);
		vq_wait_used(q, 100, &len);
	}
	return true;
}

/* `count` rounds (default 500) of: set both devices up, queue requests, kick, and reset them
 * while the requests are in flight. */
static bool reset_storm(struct env *e, uint32_t count)
{
	for (uint32_t n = 0; n < (count ? count : 500); n++) {
		start(e, true);
		start(e, false);
		*(volatile uint32_t *)SCRATCH = 0;
		*(volatile uint64_t *)(SCRATCH + 8) = n % 2048;
		for (uint16_t i = 0; i < 16; i++) {
			uint16_t d = (uint16_t)(3 * i);

			vq_set_desc(&e->blkq, d, SCRATCH, 16, DESC_F_NEXT, d + 1);
			vq_set_desc(&e->blkq, d + 1, BUF + i * 512, 512, DESC_F_WRITE | DESC_F_NEXT,
				    d + 2);
			vq_set_desc(&e->blkq, d + 2, SCRATCH + 16 + i, 1, DESC_F_WRITE, 0);
			vq_publish(&e->blkq, d);
			vq_set_desc(&e->rngq, i, BUF + 0x10000 + i * 4096, 4096, DESC_F_WRITE, 0);
			vq_publish(&e->rngq, i);
		}
		vq_kick(&e->blkq);
		vq_kick(&e->rngq);
		vdev_reset(&e->blk);
		vdev_reset(&e->rng);
	}
	return true;
}

/* The first 4 KiB of port space, where ISA devices live, read at 1, 2 and 4 bytes, and written
 * with 0 and all ones where that cannot power the VM off, reset it, or reprogram COM1 (which
 * carries this guest's report). The whole port space is tests/kvm/guests/port_scan.S's, from real
 * mode: this KVM faults CPL3 port accesses from 0x8000 up. */
static bool port_scan(struct env *e, uint32_t arg)
{
	for (uint32_t port = 0; port < 0x1000; port++) {
		bool harmless = (port + 3 < 0x3f8 || port > 0x3ff) &&
				(port + 3 < 0x60 || port > 0x64) &&
				(port + 3 < 0x600 || port > 0x603);

		inb((uint16_t)port);
		inw((uint16_t)port);
		inl((uint16_t)port);
		if (harmless) {
			outb((uint16_t)port, 0);
			outw((uint16_t)port, 0xffff);
			outl((uint16_t)port, 0xffffffff);
		}
	}
	return true;
}

/* The MMIO hole from 3 GiB to 4 GiB, read and written with all ones: in the two devices' pages
 * every register and config offset (then written with zero too), and 1, 2 and 8-byte accesses
 * at unaligned offsets; every page from the boot timer to the end of the virtio window; one page
 * in 16 elsewhere (`every_page` 1: all, ~45 s here). */
static bool mmio_scan(struct env *e, uint32_t every_page)
{
	for (uint64_t page = 0xc0000000ULL; page < 0x100000000ULL; page += 0x1000) {
		bool device = page == e->blk.base || page == e->rng.base;
		bool window = page >= 0xcfff0000ULL &&
			      page < VIRTIO_MMIO_FIRST + VIRTIO_MMIO_SLOTS * VIRTIO_MMIO_STRIDE;

		if (device) {
			for (uint64_t off = 0; off < 0x1000; off += 4) {
				mmio_read32(page + off);
				mmio_write32(page + off, 0xffffffff);
				mmio_write32(page + off, 0);
			}
			/* Other widths, unaligned, and across the end of the page. */
			for (uint64_t off = 1; off < 0x1000; off += 7) {
				mmio_read8(page + off);
				mmio_read16(page + off);
				mmio_read64(page + off);
				mmio_write8(page + off, 0xff);
				mmio_write16(page + off, 0xffff);
				mmio_write64(page + off, ~0ULL);
			}
		} else if (window || every_page || (page & 0xffff) == 0) {
			mmio_read32(page + 0x10);
			mmio_write32(page + 0x10, 0xffffffff);
		}
	}
	return true;
}

/* fw_cfg's DMA interface (devices/fw_cfg.h) as no firmware would drive it. Each request is
 * big-endian in memory at FW_CFG_REQ; its address goes to ports 0x514 (high) and 0x518 (low,
 * which starts it). Returns the control word the device left. */
static uint32_t fw_cfg_dma_at(uint64_t req, uint32_t control, uint32_t len, uint64_t addr)
{
	volatile uint32_t *r = (volatile uint32_t *)req;

	r[0] = __builtin_bswap32(control);
	r[1] = __builtin_bswap32(len);
	r[2] = __builtin_bswap32((uint32_t)(addr >> 32));
	r[3] = __builtin_bswap32((uint32_t)addr);
	outl(0x514, __builtin_bswap32((uint32_t)(req >> 32)));
	outl(0x518, __builtin_bswap32((uint32_t)req));
	return __builtin_bswap32(r[0]);
}

#define FW_CFG_DMA_ERROR  0x01
#define FW_CFG_DMA_READ	  0x02
#define FW_CFG_DMA_SELECT 0x08
#define FW_CFG_DMA_WRITE  0x10
#define FW_CFG_FILE_DIR	  0x19

/* Buffers beyond RAM, in a device's registers, across RAM's end, wrapping around, 4 GiB long,
 * and a write: each gets the error bit and leaves memory alone; requests that are themselves
 * nowhere in RAM are dropped. Then a sane request and the data port still work. */
static bool fw_cfg_dma(struct env *e, uint32_t arg)
{
	static const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
	    {0x1000000000ULL, 16},	 {0xd0000000ULL, 16},	       {0x3fffff8ULL, 16},
	    {0xfffffffffffffff0ULL, 32}, {BUF, 0xffffffffu},
	};
	uint32_t sel = (uint32_t)FW_CFG_FILE_DIR << 16 | FW_CFG_DMA_SELECT;
	volatile uint8_t *buf = (volatile uint8_t *)BUF;
	uint32_t count;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf[0] = 0x5a;
		if (fw_cfg_dma_at(FW_CFG_REQ, sel | FW_CFG_DMA_READ, bad[i].len, bad[i].addr) !=
		    FW_CFG_DMA_ERROR)
			return fail("a DMA read to a bad buffer did not end with the error bit");
		if (buf[0] != 0x5a)
			return fail("a refused DMA read wrote to guest memory");
	}
	if (fw_cfg_dma_at(FW_CFG_REQ, sel | FW_CFG_DMA_WRITE, 4, BUF) != FW_CFG_DMA_ERROR)
		return fail("a DMA write was not refused");
	outl(0x514, 0xffffffff);
	outl(0x518, 0xffffffff);
	outl(0x514, 0);
	outl(0x518, __builtin_bswap32(0xd0000000u));
	for (int i = 0; i < 4; i++)
		buf[i] = 0xff;
	if (fw_cfg_dma_at(FW_CFG_REQ, sel | FW_CFG_DMA_READ, 4, BUF) != 0)
		return fail("a sane DMA read failed after the bad ones");
	count = __builtin_bswap32(*(volatile uint32_t *)BUF);
	if (count == 0 || count > 64)
		return fail("the file directory's count is not plausible");
	outw(0x510, 0);
	if (inb(0x511) != 'Q' || inb(0x511) != 'E')
		return fail("the signature does not read through the data port");
	return true;
}

static const struct {
	const char *name;
	bool (*run)(struct env *e, uint32_t arg);
} other_cases[] = {
    {"sane", NULL},
    {"notify-storm", notify_storm},
    {"config-mid-request", config_mid_request},
    {"buffer-over-ring", buffer_over_ring},
    {"rings-overlap", rings_overlap},
    {"reset-storm", reset_storm},
    {"port-scan", port_scan},
    {"mmio-scan", mmio_scan},
    {"fw-cfg-dma", fw_cfg_dma},
};

/* The target of a ring case line ("blk NAME", "rng NAME", "con NAME"), or 0. */
static char ring_target(const char *line)
{
	static const char *const prefixes[] = {"blk ", "rng ", "con "};

	for (int i = 0; i < 3; i++)
		if (line[0] == prefixes[i][0] && line[1] == prefixes[i][1] &&
		    line[2] == prefixes[i][2] && line[3] == ' ')
			return line[0];
	return 0;
}

static bool run_case(struct env *e, const char *line)
{
	if (!vdev_find(&e->blk, VIRTIO_ID_BLOCK) || !vdev_find(&e->rng, VIRTIO_ID_RNG))
		return fail("virtio-blk or virtio-rng not found");
	if (ring_target(line) == 'c' && !e->has_con)
		return fail("no virtio-console (--console virtio)");
	if (!start(e, true) || !serves(e, true))
		return fail("virtio-blk does not serve a read before the case");
	if (!start(e, false) || !serves(e, false))
		return fail("virtio-rng does not serve a read before the case");
	if (e->has_con && !con_serves(e))
		return fail("virtio-console does not transmit before the case");
	if (ring_target(line))
		return run_ring_case(e, ring_target(line), line + 4);
	if (line[0] == 'r' && line[1] == 'e' && line[2] == 'q' && line[3] == ' ')
		return run_blk_request_case(e, line + 4);
	for (unsigned i = 0; i < sizeof(other_cases) / sizeof(other_cases[0]); i++) {
		const char *name = other_cases[i].name, *p = line;
		uint32_t arg = 0;

		while (*name && *name == *p)
			name++, p++;
		if (*name || (*p && *p != ' '))
			continue;
		while (*p == ' ')
			p++;
		while (*p >= '0' && *p <= '9')
			arg = arg * 10 + (uint32_t)(*p++ - '0');
		if (other_cases[i].run && !other_cases[i].run(e, arg))
			return false;
		if (!start(e, true) || !serves(e, true))
			return fail("virtio-blk does not serve a read after the case");
		if (!start(e, false) || !serves(e, false))
			return fail("virtio-rng does not serve a read after the case");
		return true;
	}
	return fail("no such case");
}

__attribute__((noreturn)) void guest_main(void)
{
	static struct env e;
	char line[64];

	/* The case name comes on skiff's stdin: to the virtio console when there is one. */
	put_str("hostile: ready\n");
	e.has_con = vdev_find(&e.con, VIRTIO_ID_CONSOLE);
	if (e.has_con ? !con_start(&e) || !con_read_line(&e, line, sizeof(line))
		      : !get_line(line, sizeof(line))) {
		put_str("hostile: FAIL: no case name\n");
		power_off();
	}
	/* The report is one line, written at the end: console output may come before it. */
	bool ok = run_case(&e, line);

	put_str("hostile: ");
	put_str(line);
	if (ok) {
		put_str(": ok\n");
	} else {
		put_str(": FAIL: ");
		put_str(why);
		put_str("\n");
	}
	power_off();
}
