#include "virtio/queue.h"
#include "virtio/virtio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The driver writes the rings concurrently with us: every field it owns is read exactly once,
 * through these, so the compiler can neither tear nor repeat a load after a check. */
#define READ_GUEST(x)	  __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_GUEST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* used_event follows the available ring's entries; avail_event follows the used ring's. */
static uint16_t *used_event(const struct virtq *q)
{
	return &q->avail->ring[q->size];
}

static uint16_t *avail_event(const struct virtq *q)
{
	return (uint16_t *)&q->used->ring[q->size];
}

static int __attribute__((format(printf, 2, 3))) queue_error(struct virtq *q, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->error, sizeof(q->error), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A ring of `len` bytes at `gpa` aligned to `align`, wholly in guest RAM; NULL with q->error set
 * otherwise. */
static void *ring_ptr(struct virtq *q, const char *what, uint64_t gpa, uint64_t len, uint64_t align)
{
	void *p;

	if (gpa & (align - 1)) {
		queue_error(q, "%s at 0x%llx is not %llu-byte aligned", what,
			    (unsigned long long)gpa, (unsigned long long)align);
		return NULL;
	}
	p = guest_mem_ptr(q->mem, gpa, len);
	if (!p)
		queue_error(q, "%s [0x%llx, +0x%llx) is not in guest RAM", what,
			    (unsigned long long)gpa, (unsigned long long)len);
	return p;
}

int virtq_activate(struct virtq *q, const struct guest_mem *mem, uint64_t features)
{
	uint64_t size = q->size;

	q->error[0] = '\0';
	q->desc = NULL;
	q->avail = NULL;
	q->used = NULL;
	if (size == 0 || size > q->max_size || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return queue_error(q, "queue size %llu: not a power of 2 in 1..%u",
				   (unsigned long long)size, q->max_size);
	q->mem = mem;
	/* 2.7 Table "Virtqueue Part Alignment": 16, 2 and 4 bytes. */
	q->desc = ring_ptr(q, "descriptor table", q->desc_gpa, 16 * size, 16);
	if (!q->desc)
		return -EINVAL;
	q->avail = ring_ptr(q, "available ring", q->avail_gpa, 6 + 2 * size, 2);
	if (!q->avail) {
		q->desc = NULL;
		return -EINVAL;
	}
	q->used = ring_ptr(q, "used ring", q->used_gpa, 6 + 8 * size, 4);
	if (!q->used) {
		q->desc = NULL;
		q->avail = NULL;
		return -EINVAL;
	}
	q->event_idx = (features >> VIRTIO_F_EVENT_IDX) & 1;
	q->indirect = (features >> VIRTIO_F_INDIRECT_DESC) & 1;
	q->last_avail_idx = 0;
	q->used_idx = 0;
	q->signalled_used = 0;
	q->signalled_used_valid = false;
	return 0;
}

void virtq_reset(struct virtq *q)
{
	uint16_t max_size = q->max_size;

	memset(q, 0, sizeof(*q));
	q->max_size = max_size;
}

/* One copy of a descriptor the driver may be rewriting while we look at it. memcpy because the
 * spec sets no alignment for indirect tables; the compiler barrier forbids re-reading the guest's
 * copy in place of ours after a check. */
static inline void desc_read(struct virtq_desc *d, const uint8_t *table, uint16_t idx)
{
	memcpy(d, table + (size_t)idx * sizeof(*d), sizeof(*d));
	__asm__ volatile("" ::: "memory");
}

/* Where the chain walk is, for error messages: "descriptor 5" or "indirect descriptor 2 of
 * descriptor 5". */
struct chain_pos {
	uint16_t idx;	/* in the queue's table, or in the indirect table */
	uint16_t outer; /* the descriptor that pointed to the indirect table */
	bool in_indirect;
};

static int __attribute__((format(printf, 3, 4)))
desc_error(struct virtq *q, const struct chain_pos *pos, const char *fmt, ...)
{
	char what[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (pos->in_indirect)
		return queue_error(q, "indirect descriptor %u of descriptor %u: %s", pos->idx,
				   pos->outer, what);
	return queue_error(q, "descriptor %u: %s", pos->idx, what);
}

int virtq_pop(struct virtq *q, struct virtq_elem *e)
{
	const uint8_t *table = (const uint8_t *)q->desc;
	uint32_t table_len = q->size;
	uint32_t limit = q->size < VIRTQ_MAX_SEGS ? q->size : VIRTQ_MAX_SEGS;
	uint32_t budget = limit;
	uint64_t out_len = 0, in_len = 0;
	unsigned nr_out = 0, nr_in = 0;
	struct chain_pos pos = { 0 };
	uint16_t avail_idx, pending, slot, head;

	if (!q->avail)
		return queue_error(q, "queue is not activated");
	/* Acquire: the ring entries and descriptors behind this index are read after it. */
	avail_idx = __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
	pending = avail_idx - q->last_avail_idx;
	if (pending == 0)
		return 0;
	if (pending > q->size)
		return queue_error(q, "available index jumped by %u, more than the queue size %u",
				   pending, q->size);
	slot = q->last_avail_idx & (q->size - 1);
	head = READ_GUEST(q->avail->ring[slot]);
	if (head >= q->size)
		return queue_error(q, "available ring entry %u: head %u is not below the size %u",
				   slot, head, q->size);
	e->head = head;
	pos.idx = head;

	for (;;) {
		struct virtq_desc d;
		struct iovec *iov;
		void *p;

		if (budget == 0)
			return desc_error(q, &pos, "chain from head %u is longer than %u (a loop?)",
					  head, limit);
		budget--;
		desc_read(&d, table, pos.idx);

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (pos.in_indirect)
				return desc_error(q, &pos, "INDIRECT inside an indirect table");
			if (!q->indirect)
				return desc_error(q, &pos, "INDIRECT not negotiated");
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return desc_error(q, &pos, "INDIRECT together with NEXT");
			if (d.len == 0 || d.len % sizeof(struct virtq_desc) ||
			    d.len > VIRTQ_MAX_SEGS * sizeof(struct virtq_desc))
				return desc_error(q, &pos,
						  "indirect table length %u (need 16..%u, by 16)",
						  d.len, VIRTQ_MAX_SEGS * 16);
			table = guest_mem_ptr(q->mem, d.addr, d.len);
			if (!table)
				return desc_error(q, &pos,
						  "indirect table [0x%llx, +0x%x) not in guest RAM",
						  (unsigned long long)d.addr, d.len);
			table_len = d.len / sizeof(struct virtq_desc);
			limit = table_len;
			budget = limit;
			pos.outer = pos.idx;
			pos.idx = 0;
			pos.in_indirect = true;
			continue;
		}

		if (d.len == 0)
			return desc_error(q, &pos, "zero length");
		p = guest_mem_ptr(q->mem, d.addr, d.len);
		if (!p)
			return desc_error(q, &pos, "buffer [0x%llx, +0x%x) is not in guest RAM",
					  (unsigned long long)d.addr, d.len);
		if (nr_out + nr_in == VIRTQ_MAX_SEGS)
			return desc_error(q, &pos, "chain from head %u has more than %u buffers",
					  head, VIRTQ_MAX_SEGS);
		iov = &e->iov[nr_out + nr_in];
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			in_len += d.len;
			if (in_len > UINT32_MAX)
				return desc_error(q, &pos, "writable buffers exceed 4 GiB");
			nr_in++;
		} else {
			if (nr_in)
				return desc_error(q, &pos, "device-readable after device-writable");
			out_len += d.len;
			if (out_len > UINT32_MAX)
				return desc_error(q, &pos, "readable buffers exceed 4 GiB");
			nr_out++;
		}
		iov->iov_base = p;
		iov->iov_len = d.len;

		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= table_len)
			return desc_error(q, &pos, "next %u is not below the table size %u", d.next,
					  table_len);
		pos.idx = d.next;
	}

	e->nr_out = nr_out;
	e->nr_in = nr_in;
	e->out_len = out_len;
	e->in_len = in_len;
	q->last_avail_idx++;
	/* The device may write every device-writable buffer: for a Diff snapshot they count as
	 * written now (KVM's dirty log does not see skiff's writes). */
	for (unsigned i = nr_out; i < nr_out + nr_in; i++)
		guest_mem_mark_dirty(q->mem, e->iov[i].iov_base, e->iov[i].iov_len);
	return 1;
}

void virtq_unpop(struct virtq *q)
{
	q->last_avail_idx--;
}

/* Marks chain `head`'s device-writable buffers as written by skiff, once the device is done
 * with them. The marks at the pop are not enough: a look at the bitmap (a live migration's pass)
 * may take them and copy the page before the device's write lands, and nothing would mark it
 * again. The chain is read again from guest memory: a driver that changed it meanwhile gets
 * other pages of its own memory marked, nothing worse (guest_mem_ptr bounds every buffer). */
static void mark_chain_written(struct virtq *q, uint16_t head)
{
	const uint8_t *table = (const uint8_t *)q->desc;
	uint32_t budget = q->size, idx = head, table_len = q->size;
	bool indirect = false;

	while (budget-- > 0 && idx < table_len) {
		struct virtq_desc d;
		void *p;

		desc_read(&d, table, (uint16_t)idx);
		if ((d.flags & VIRTQ_DESC_F_INDIRECT) && !indirect) {
			if (d.len < sizeof(d) || d.len > VIRTQ_MAX_SEGS * sizeof(d) ||
			    !(table = guest_mem_ptr(q->mem, d.addr, d.len)))
				return;
			table_len = d.len / sizeof(d);
			budget = table_len;
			idx = 0;
			indirect = true;
			continue;
		}
		if ((d.flags & VIRTQ_DESC_F_WRITE) && (p = guest_mem_ptr(q->mem, d.addr, d.len)))
			guest_mem_mark_dirty(q->mem, p, d.len);
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return;
		idx = d.next;
	}
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	struct virtq_used_elem *u = &q->used->ring[q->used_idx & (q->size - 1)];

	if (guest_mem_tracking(q->mem))
		mark_chain_written(q, head);
	WRITE_GUEST(u->id, head);
	WRITE_GUEST(u->len, written);
	q->used_idx++;
	/* Release: the element and the buffers' contents are visible before the index. */
	__atomic_store_n(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
	/* After the writes they cover, for the same reason as the buffers' marks. */
	guest_mem_mark_dirty(q->mem, u, sizeof(*u));
	guest_mem_mark_dirty(q->mem, &q->used->idx, sizeof(q->used->idx));
}

bool virtq_should_notify(struct virtq *q)
{
	uint16_t old, new, event;
	bool valid;

	/* Our used->idx store must be visible before we read the driver's suppression state,
	 * which it writes before reading used->idx: a store-load order, so a full fence. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->event_idx)
		return !(READ_GUEST(q->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT);

	/* 2.7.7.2: notify when used->idx moved past used_event since the last notification,
	 * i.e. used_event lies in [old, new). */
	old = q->signalled_used;
	valid = q->signalled_used_valid;
	new = q->used_idx;
	q->signalled_used = new;
	q->signalled_used_valid = true;
	if (!valid)
		return true;
	event = READ_GUEST(*used_event(q));
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

void virtq_set_notification(struct virtq *q, bool enable)
{
	if (q->event_idx) {
		/* Disabling needs no write: the driver only kicks when it passes avail_event,
		 * which stays behind while we do not update it. */
		if (enable) {
			WRITE_GUEST(*avail_event(q), q->last_avail_idx);
			guest_mem_mark_dirty(q->mem, avail_event(q), sizeof(uint16_t));
		}
	} else {
		uint16_t flags = READ_GUEST(q->used->flags);

		if (enable)
			flags &= ~VIRTQ_USED_F_NO_NOTIFY;
		else
			flags |= VIRTQ_USED_F_NO_NOTIFY;
		WRITE_GUEST(q->used->flags, flags);
		guest_mem_mark_dirty(q->mem, &q->used->flags, sizeof(flags));
	}
	/* The caller next reads avail->idx (virtq_has_avail): a store-load order. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool virtq_has_avail(struct virtq *q)
{
	if (!q->avail)
		return false;
	return __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE) != q->last_avail_idx;
}

int virtq_pop_armed(struct virtq *q, struct virtq_elem *e)
{
	int r = virtq_pop(q, e);

	if (r != 0)
		return r;
	virtq_set_notification(q, true);
	return virtq_has_avail(q) ? virtq_pop(q, e) : 0;
}

size_t virtq_elem_read(const struct virtq_elem *e, size_t offset, void *dst, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < e->nr_out && done < len; i++) {
		const struct iovec *iov = &e->iov[i];
		size_t n;

		if (offset >= iov->iov_len) {
			offset -= iov->iov_len;
			continue;
		}
		n = iov->iov_len - offset;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)dst + done, (const uint8_t *)iov->iov_base + offset, n);
		done += n;
		offset = 0;
	}
	return done;
}

size_t virtq_elem_write(const struct virtq_elem *e, size_t offset, const void *src, size_t len)
{
	size_t done = 0;

	for (unsigned i = e->nr_out; i < (unsigned)e->nr_out + e->nr_in && done < len; i++) {
		const struct iovec *iov = &e->iov[i];
		size_t n;

		if (offset >= iov->iov_len) {
			offset -= iov->iov_len;
			continue;
		}
		n = iov->iov_len - offset;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)iov->iov_base + offset, (const uint8_t *)src + done, n);
		done += n;
		offset = 0;
	}
	return done;
}
