#include "virtio/pci.h"

#include "virtio/core.h"
#include "virtio/virtio.h"
#include "base/log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* 4.1.4 Virtio structure PCI capabilities: cfg_type values. */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG	  3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG	  5

/* The PCI configuration access capability (4.1.4.9): bar at +4, offset at +8, length at +12,
 * the data window at +16. */
#define PCI_CFG_BAR    4
#define PCI_CFG_OFFSET 8
#define PCI_CFG_LENGTH 12
#define PCI_CFG_DATA   16

/* 4.1.4.3 The common configuration structure. */
#define COMMON_DFSELECT	     0x00
#define COMMON_DF	     0x04
#define COMMON_GFSELECT	     0x08
#define COMMON_GF	     0x0c
#define COMMON_MSIX	     0x10
#define COMMON_NUMQ	     0x12
#define COMMON_STATUS	     0x14
#define COMMON_CFGGENERATION 0x15
#define COMMON_Q_SELECT	     0x16
#define COMMON_Q_SIZE	     0x18
#define COMMON_Q_MSIX	     0x1a
#define COMMON_Q_ENABLE	     0x1c
#define COMMON_Q_NOFF	     0x1e
#define COMMON_Q_DESC	     0x20
#define COMMON_Q_AVAIL	     0x28
#define COMMON_Q_USED	     0x30
#define COMMON_Q_NDATA	     0x38
#define COMMON_Q_RESET	     0x3a
#define COMMON_SIZE	     0x40

#define MAX_VECTORS 64

/* Transport kinds of driver mistakes (virtio_core_log_once). */
enum {
	LOGGED_COMMON = VIRTIO_LOGGED_TRANSPORT << 0,
	LOGGED_MSIX = VIRTIO_LOGGED_TRANSPORT << 1,
	LOGGED_MSIX_ADDR = VIRTIO_LOGGED_TRANSPORT << 2,
	LOGGED_BAR = VIRTIO_LOGGED_TRANSPORT << 3,
	LOGGED_NO_VECTOR = VIRTIO_LOGGED_TRANSPORT << 4,
	LOGGED_PCI_CFG = VIRTIO_LOGGED_TRANSPORT << 5,
};

struct msix_vector {
	uint32_t addr_lo, addr_hi, data, ctrl; /* the table entry */
	bool pending;			       /* the PBA bit */
	int fd;				       /* eventfd: bound to `route` by an irqfd */
	int route;			       /* msi_routes id, -1 until first needed */
	bool route_current;		       /* the route carries the entry's message */
	/* fd is detached from `route` (msi_routes_ops.detach) while the vector is not live: what
	 * a backend signals there meanwhile waits in fd's counter, a pending bit too. */
	bool detached;
};

struct virtio_pci {
	struct pci_device pci;
	struct virtio_core *core;
	struct virtio_device *dev;
	struct pci_host *host;
	const struct msi_routes *msi;
	uint8_t msix_cap;
	uint8_t pci_cfg_cap;

	/* BAR 0's decoding, changed under the host's config lock (bar_mapped). */
	bool bar_mapped;
	uint64_t bar_addr;

	/* Assigned by the driver under the core's lock, read by the worker when it signals. */
	_Atomic uint16_t config_vector;
	_Atomic uint16_t *queue_vector;

	/* The MSI-X state: table, pending bits, enable and function mask. Taken by vCPUs and by the
	 * worker thread when it raises an interrupt; nothing waits for another thread under it. */
	pthread_mutex_t msix_lock;
	uint16_t nr_vectors;
	struct msix_vector *vectors;
	bool msix_enabled, msix_masked;
};

static uint32_t class_code(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET:
		return 0x020000; /* network controller, Ethernet */
	case VIRTIO_ID_BLOCK:
	case VIRTIO_ID_FS:
		return 0x018000; /* mass storage, other */
	case VIRTIO_ID_CONSOLE:
		return 0x078000; /* communication, other */
	default:
		return 0xff0000; /* unassigned class */
	}
}

/* ---- MSI-X delivery (msix_lock held) ---- */

/* Makes the vector's route carry its table entry's message; false when it cannot (refused
 * address: logged once per device). */
static bool route_vector(struct virtio_pci *t, uint16_t v)
{
	struct msix_vector *vec = &t->vectors[v];
	uint64_t addr = (uint64_t)vec->addr_hi << 32 | vec->addr_lo;
	uint32_t requester_id = t->pci.devfn; /* bus 0 */
	int err;

	if (!t->msi || vec->route_current)
		return true;
	if (vec->route < 0) {
		vec->route = t->msi->ops->add(t->msi->ctx, vec->fd);
		if (vec->route < 0)
			return false;
	}
	err = t->msi->ops->set(t->msi->ctx, vec->route, addr, vec->data, requester_id);
	if (err == -EINVAL) {
		virtio_core_log_once(t->core, LOGGED_MSIX_ADDR, warn,
				     "MSI-X vector %u: message address %#llx (data %#x) is not an "
				     "interrupt controller's; vector refused",
				     v, (unsigned long long)addr, vec->data);
		return false;
	}
	if (err)
		return false;
	vec->route_current = true;
	return true;
}

static bool vector_live(struct virtio_pci *t, uint16_t v)
{
	return t->msix_enabled && !t->msix_masked &&
	       !(t->vectors[v].ctrl & PCI_MSIX_ENTRY_MASKED) && pci_device_bus_master(&t->pci);
}

static void deliver_if_pending(struct virtio_pci *t, uint16_t v)
{
	struct msix_vector *vec = &t->vectors[v];

	if (!vec->pending || !vector_live(t, v) || !route_vector(t, v))
		return;
	vec->pending = false;
	if (eventfd_write(vec->fd, 1) < 0 && errno != EAGAIN)
		log_error("%s: MSI-X vector %u: eventfd write: %s", t->dev->name, v,
			  strerror(errno));
}

/* Whether the vector has an interrupt waiting: ours (the PBA bit), or a signal a vhost-user
 * backend wrote into the detached eventfd (which KVM delivers when it is attached again). */
static bool vector_pending(struct virtio_pci *t, uint16_t v)
{
	struct msix_vector *vec = &t->vectors[v];
	struct pollfd p = {.fd = vec->fd, .events = POLLIN};

	return vec->pending || ((vec->detached || vec->route < 0) && poll(&p, 1, 0) == 1);
}

/* Brings the vector in line with its table entry, its mask and the function's MSI-X state: the
 * route carries the message while the vector is live, and its eventfd is attached to the route
 * exactly then, so that a backend holding the eventfd (direct_irq_fd) stops interrupting the
 * guest the moment the vector is masked, without waiting for any thread of ours. Then sends what
 * is pending. */
static void sync_vector(struct virtio_pci *t, uint16_t v)
{
	struct msix_vector *vec = &t->vectors[v];
	bool live = vector_live(t, v) && route_vector(t, v);

	if (vec->route >= 0 && vec->detached == live && t->msi && t->msi->ops->detach &&
	    t->msi->ops->detach(t->msi->ctx, vec->route, !live) == 0)
		vec->detached = !live;
	deliver_if_pending(t, v);
}

static void sync_all_vectors(struct virtio_pci *t)
{
	for (uint16_t v = 0; v < t->nr_vectors; v++)
		sync_vector(t, v);
}

/* ---- The transport ops the core calls ---- */

static bool pci_notify_area(void *transport, uint16_t q, struct virtio_notify_area *area)
{
	struct virtio_pci *t = transport;

	if (!t->bar_mapped)
		return false;
	*area = (struct virtio_notify_area){
	    .addr = t->bar_addr + VIRTIO_PCI_NOTIFY + (uint64_t)q * VIRTIO_PCI_NOTIFY_MULT,
	    .len = 2,
	    .datamatch = true,
	    .data = q,
	};
	return true;
}

static void pci_interrupt(void *transport, int q)
{
	struct virtio_pci *t = transport;
	uint16_t v = q < 0 ? atomic_load(&t->config_vector) : atomic_load(&t->queue_vector[q]);

	if (v >= t->nr_vectors) {
		/* No vector assigned, and no INTx pin: the driver polls the ISR, or nothing. */
		virtio_core_log_once(t->core, LOGGED_NO_VECTOR, debug,
				     "interrupt for %s %d without an MSI-X vector",
				     q < 0 ? "config" : "queue", q);
		return;
	}
	pthread_mutex_lock(&t->msix_lock);
	t->vectors[v].pending = true;
	deliver_if_pending(t, v);
	pthread_mutex_unlock(&t->msix_lock);
}

/* A queue's vector eventfd, for a backend to signal itself while MSI-X is on; masking is then
 * KVM's (sync_vector detaches the eventfd), and the device is told when MSI-X goes on or off or
 * the queue's vector changes. Not without msi_routes that can detach: a masked vector would
 * still interrupt. */
static int pci_direct_irq_fd(void *transport, uint16_t q)
{
	struct virtio_pci *t = transport;
	uint16_t v = atomic_load(&t->queue_vector[q]);
	int fd = -1;

	if (!t->msi || !t->msi->ops->detach || v >= t->nr_vectors)
		return -1;
	pthread_mutex_lock(&t->msix_lock);
	if (t->msix_enabled)
		fd = t->vectors[v].fd;
	pthread_mutex_unlock(&t->msix_lock);
	return fd;
}

static const struct virtio_transport_ops pci_transport_ops = {
    .notify_area = pci_notify_area,
    .interrupt = pci_interrupt,
    .direct_irq_fd = pci_direct_irq_fd,
};

/* ---- Common configuration (core lock held) ---- */

struct field {
	uint8_t off, size;
};

static const struct field common_fields[] = {
    {COMMON_DFSELECT, 4}, {COMMON_DF, 4},      {COMMON_GFSELECT, 4}, {COMMON_GF, 4},
    {COMMON_MSIX, 2},	  {COMMON_NUMQ, 2},    {COMMON_STATUS, 1},   {COMMON_CFGGENERATION, 1},
    {COMMON_Q_SELECT, 2}, {COMMON_Q_SIZE, 2},  {COMMON_Q_MSIX, 2},   {COMMON_Q_ENABLE, 2},
    {COMMON_Q_NOFF, 2},	  {COMMON_Q_DESC, 8},  {COMMON_Q_AVAIL, 8},  {COMMON_Q_USED, 8},
    {COMMON_Q_NDATA, 2},  {COMMON_Q_RESET, 2},
};

/* The field an access of `len` bytes at `off` addresses, or -1: natural width, or either half
 * of a 64-bit field. *high says which half. */
static int common_field(uint64_t off, uint32_t len, bool *high)
{
	for (int i = 0; i < (int)(sizeof(common_fields) / sizeof(common_fields[0])); i++) {
		const struct field *f = &common_fields[i];

		*high = false;
		if (off == f->off && len == f->size)
			return f->off;
		if (f->size == 8 && len == 4 && (off == f->off || off == f->off + 4u)) {
			*high = off != f->off;
			return f->off;
		}
	}
	return -1;
}

static int queue_addr_which(int field)
{
	return field == COMMON_Q_DESC ? 0 : field == COMMON_Q_AVAIL ? 1 : 2;
}

static uint64_t read_common(struct virtio_pci *t, int field, bool high, uint32_t len)
{
	struct virtio_core *c = t->core;
	struct virtq *vq = virtio_core_selected_queue(c);
	int which;

	switch (field) {
	case COMMON_DFSELECT:
		return c->state.device_features_sel;
	case COMMON_DF:
		return virtio_core_read_device_features(c);
	case COMMON_GFSELECT:
		return c->state.driver_features_sel;
	case COMMON_GF:
		return virtio_core_read_driver_features(c);
	case COMMON_MSIX:
		return atomic_load(&t->config_vector);
	case COMMON_NUMQ:
		return t->dev->ops->nr_queues;
	case COMMON_STATUS:
		return virtio_core_status(c) & 0xff;
	case COMMON_CFGGENERATION:
		return atomic_load(&c->state.config_generation) & 0xff;
	case COMMON_Q_SELECT:
		return c->state.queue_sel;
	case COMMON_Q_SIZE:
		return vq ? (vq->size ? vq->size : vq->max_size) : 0;
	case COMMON_Q_MSIX:
		return vq ? atomic_load(&t->queue_vector[c->state.queue_sel])
			  : VIRTIO_PCI_NO_VECTOR;
	case COMMON_Q_ENABLE:
		return vq ? vq->ready : 0;
	case COMMON_Q_NOFF:
		return vq ? c->state.queue_sel : 0;
	case COMMON_Q_DESC:
	case COMMON_Q_AVAIL:
	case COMMON_Q_USED:
		which = queue_addr_which(field);
		if (len == 8)
			return (uint64_t)virtio_core_read_queue_addr(c, which, true) << 32 |
			       virtio_core_read_queue_addr(c, which, false);
		return virtio_core_read_queue_addr(c, which, high);
	}
	return 0; /* queue_notify_data, queue_reset: their features are not offered */
}

static uint16_t checked_vector(struct virtio_pci *t, uint64_t value)
{
	/* 4.1.5.1.2: a vector the device cannot use reads back as NO_VECTOR. */
	return value < t->nr_vectors ? (uint16_t)value : VIRTIO_PCI_NO_VECTOR;
}

static void write_common(struct virtio_pci *t, int field, bool high, uint32_t len, uint64_t value)
{
	struct virtio_core *c = t->core;
	struct virtq *vq;
	int which;

	switch (field) {
	case COMMON_DFSELECT:
		c->state.device_features_sel = (uint32_t)value;
		return;
	case COMMON_GFSELECT:
		c->state.driver_features_sel = (uint32_t)value;
		return;
	case COMMON_GF:
		virtio_core_write_driver_features(c, (uint32_t)value);
		return;
	case COMMON_MSIX:
		atomic_store(&t->config_vector, checked_vector(t, value));
		return;
	case COMMON_STATUS:
		virtio_core_write_status(c, (uint32_t)value);
		if (value == 0) {
			atomic_store(&t->config_vector, VIRTIO_PCI_NO_VECTOR);
			for (uint16_t q = 0; q < t->dev->ops->nr_queues; q++)
				atomic_store(&t->queue_vector[q], VIRTIO_PCI_NO_VECTOR);
		}
		return;
	case COMMON_Q_SELECT:
		c->state.queue_sel = (uint32_t)value;
		return;
	case COMMON_Q_SIZE:
		virtio_core_write_queue_size(c, (uint32_t)value);
		return;
	case COMMON_Q_MSIX:
		if (virtio_core_configurable_queue(c, "queue_msix_vector", false)) {
			atomic_store(&t->queue_vector[c->state.queue_sel],
				     checked_vector(t, value));
			virtio_core_direct_irq_changed(c);
		}
		return;
	case COMMON_Q_ENABLE:
		/* The size reads as the maximum until the driver writes one. */
		vq = virtio_core_configurable_queue(c, "queue_enable", true);
		if (vq && value && !vq->size)
			vq->size = vq->max_size;
		virtio_core_write_queue_ready(c, (uint32_t)value);
		return;
	case COMMON_Q_DESC:
	case COMMON_Q_AVAIL:
	case COMMON_Q_USED:
		which = queue_addr_which(field);
		if (len == 8) {
			virtio_core_write_queue_addr(c, which, false, (uint32_t)value);
			virtio_core_write_queue_addr(c, which, true, (uint32_t)(value >> 32));
		} else {
			virtio_core_write_queue_addr(c, which, high, (uint32_t)value);
		}
		return;
	}
	virtio_core_log_once(c, VIRTIO_LOGGED_REGISTER, warn,
			     "write of %#llx to common config %#x, which is not writable",
			     (unsigned long long)value, field);
}

/* ---- MSI-X table and PBA (vCPU thread) ---- */

static uint32_t *table_field(struct virtio_pci *t, uint64_t off)
{
	struct msix_vector *vec = &t->vectors[off / PCI_MSIX_ENTRY_SIZE];

	switch (off % PCI_MSIX_ENTRY_SIZE) {
	case PCI_MSIX_ENTRY_ADDR_LO:
		return &vec->addr_lo;
	case PCI_MSIX_ENTRY_ADDR_HI:
		return &vec->addr_hi;
	case PCI_MSIX_ENTRY_DATA:
		return &vec->data;
	default:
		return &vec->ctrl;
	}
}

static bool msix_access_ok(struct virtio_pci *t, uint64_t off, uint32_t len, uint64_t limit)
{
	if ((len != 4 && len != 8) || (off & (len - 1)) || off + len > limit) {
		virtio_core_log_once(t->core, LOGGED_MSIX, warn,
				     "%u-byte MSI-X access at %#llx of its %#llx bytes; ignored",
				     len, (unsigned long long)off, (unsigned long long)limit);
		return false;
	}
	return true;
}

static void msix_table_read(struct virtio_pci *t, uint64_t off, void *data, uint32_t len)
{
	uint32_t v[2] = {0, 0};

	if (!msix_access_ok(t, off, len, (uint64_t)t->nr_vectors * PCI_MSIX_ENTRY_SIZE))
		return;
	pthread_mutex_lock(&t->msix_lock);
	for (uint32_t i = 0; i < len / 4; i++)
		v[i] = *table_field(t, off + 4 * i);
	pthread_mutex_unlock(&t->msix_lock);
	memcpy(data, v, len);
}

static void msix_table_write(struct virtio_pci *t, uint64_t off, const void *data, uint32_t len)
{
	uint32_t v[2];

	if (!msix_access_ok(t, off, len, (uint64_t)t->nr_vectors * PCI_MSIX_ENTRY_SIZE))
		return;
	memcpy(v, data, len);
	pthread_mutex_lock(&t->msix_lock);
	for (uint32_t i = 0; i < len / 4; i++) {
		uint64_t o = off + 4 * i;
		uint16_t n = (uint16_t)(o / PCI_MSIX_ENTRY_SIZE);
		uint32_t *f = table_field(t, o);

		if (o % PCI_MSIX_ENTRY_SIZE == PCI_MSIX_ENTRY_CTRL) {
			*f = v[i] & PCI_MSIX_ENTRY_MASKED; /* the other bits are reserved */
		} else if (*f != v[i]) {
			*f = v[i];
			t->vectors[n].route_current = false;
		}
		/* A live vector takes its new message (or its unmasking) at once. */
		sync_vector(t, n);
	}
	pthread_mutex_unlock(&t->msix_lock);
}

static void msix_pba_read(struct virtio_pci *t, uint64_t off, void *data, uint32_t len)
{
	uint64_t bits = 0;

	if (!msix_access_ok(t, off, len, ((t->nr_vectors + 63u) / 64u) * 8u))
		return;
	pthread_mutex_lock(&t->msix_lock);
	for (uint32_t b = 0; b < len * 8; b++) {
		uint64_t v = off * 8 + b;

		if (v < t->nr_vectors && vector_pending(t, (uint16_t)v))
			bits |= 1ULL << b;
	}
	pthread_mutex_unlock(&t->msix_lock);
	memcpy(data, &bits, len);
}

/* ---- BAR 0 ---- */

static bool valid_width(uint32_t len)
{
	return len == 1 || len == 2 || len == 4 || len == 8;
}

/* The common-config field an access of `len` bytes at `off` reaches, as common_field() finds it;
 * an 8-byte access to a queue address (desc, avail, used) takes the whole 64-bit field, named by
 * its offset. -1 for no field. */
static int common_access(uint64_t off, uint32_t len, bool *high)
{
	int field = common_field(off, len, high);

	if (field < 0 && len == 8 &&
	    (off == COMMON_Q_DESC || off == COMMON_Q_AVAIL || off == COMMON_Q_USED))
		field = (int)off;
	return field;
}

static void bar_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	struct virtio_pci *t = opaque;
	struct virtio_core *c = t->core;
	uint64_t v;
	bool high;
	int field;

	memset(data, 0, len);
	if (off < VIRTIO_PCI_COMMON + COMMON_SIZE) {
		field = common_access(off, len, &high);
		if (field < 0) {
			virtio_core_log_once(c, LOGGED_COMMON, warn,
					     "%u-byte read at common config %#llx: no such field; "
					     "read as 0",
					     len, (unsigned long long)off);
			return;
		}
		virtio_core_lock(c);
		v = read_common(t, field, high, len);
		virtio_core_unlock(c);
		memcpy(data, &v, len);
	} else if (off >= VIRTIO_PCI_ISR && off < VIRTIO_PCI_ISR + 4) {
		/* Reading the ISR acknowledges it (4.1.4.5). */
		if (off == VIRTIO_PCI_ISR)
			*(uint8_t *)data = (uint8_t)virtio_core_take_isr(c);
	} else if (off >= VIRTIO_PCI_DEVICE_CFG && off < VIRTIO_PCI_NOTIFY) {
		if (!valid_width(len))
			return;
		virtio_core_lock(c);
		virtio_core_config_read(c, off - VIRTIO_PCI_DEVICE_CFG, data, len);
		virtio_core_unlock(c);
	} else if (off >= VIRTIO_PCI_MSIX_TABLE && off < VIRTIO_PCI_MSIX_PBA) {
		msix_table_read(t, off - VIRTIO_PCI_MSIX_TABLE, data, len);
	} else if (off >= VIRTIO_PCI_MSIX_PBA) {
		msix_pba_read(t, off - VIRTIO_PCI_MSIX_PBA, data, len);
	}
}

static void bar_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct virtio_pci *t = opaque;
	struct virtio_core *c = t->core;
	uint64_t v = 0;
	bool high;
	int field;

	if (len <= 8)
		memcpy(&v, data, len);
	if (off >= VIRTIO_PCI_NOTIFY && off < VIRTIO_PCI_MSIX_TABLE) {
		/* A kick KVM's ioeventfd did not take: the address names the queue. */
		uint64_t q = (off - VIRTIO_PCI_NOTIFY) / VIRTIO_PCI_NOTIFY_MULT;

		virtio_core_notify(c, q > 0xffff ? 0xffff : (uint32_t)q);
	} else if (off < VIRTIO_PCI_COMMON + COMMON_SIZE) {
		field = common_access(off, len, &high);
		if (field < 0) {
			virtio_core_log_once(c, LOGGED_COMMON, warn,
					     "%u-byte write at common config %#llx: no such field; "
					     "ignored",
					     len, (unsigned long long)off);
			return;
		}
		virtio_core_lock(c);
		write_common(t, field, high, len, v);
		virtio_core_unlock(c);
	} else if (off >= VIRTIO_PCI_DEVICE_CFG && off < VIRTIO_PCI_NOTIFY) {
		if (!valid_width(len))
			return;
		virtio_core_lock(c);
		virtio_core_config_write(c, off - VIRTIO_PCI_DEVICE_CFG, data, len);
		virtio_core_unlock(c);
	} else if (off >= VIRTIO_PCI_MSIX_TABLE && off < VIRTIO_PCI_MSIX_PBA) {
		msix_table_write(t, off - VIRTIO_PCI_MSIX_TABLE, data, len);
	} else {
		virtio_core_log_once(c, LOGGED_BAR, warn,
				     "%u-byte write at BAR 0 offset %#llx, which is read-only; "
				     "ignored",
				     len, (unsigned long long)off);
	}
}

const struct bus_device_ops virtio_pci_bar_ops = {.read = bar_read, .write = bar_write};

/* ---- Config space hooks (host's config lock held) ---- */

static bool overlaps(uint32_t off, uint32_t len, uint32_t start, uint32_t size)
{
	return off < start + size && off + len > start;
}

/* The access the PCI configuration access capability describes, when it is one BAR 0 takes:
 * 1, 2 or 4 bytes, aligned, inside the BAR. */
static bool pci_cfg_access(struct virtio_pci *t, uint32_t *offset, uint32_t *length)
{
	uint32_t cap = t->pci_cfg_cap;
	uint8_t bar = (uint8_t)pci_config_get(&t->pci, cap + PCI_CFG_BAR, 1);

	*offset = pci_config_get(&t->pci, cap + PCI_CFG_OFFSET, 4);
	*length = pci_config_get(&t->pci, cap + PCI_CFG_LENGTH, 4);
	if (bar == 0 && (*length == 1 || *length == 2 || *length == 4) &&
	    !(*offset & (*length - 1)) && *offset <= VIRTIO_PCI_BAR_SIZE - *length)
		return true;
	virtio_core_log_once(t->core, LOGGED_PCI_CFG, warn,
			     "PCI config access capability: BAR %u offset %#x length %u is not "
			     "an access of BAR 0; ignored",
			     bar, *offset, *length);
	return false;
}

static void config_read(struct pci_device *d, uint32_t off, uint32_t len)
{
	struct virtio_pci *t = d->priv;
	uint32_t offset, length, v = 0;

	if (!overlaps(off, len, t->pci_cfg_cap + PCI_CFG_DATA, 4) ||
	    !pci_cfg_access(t, &offset, &length))
		return;
	bar_read(t, offset, &v, length);
	pci_config_set(d, t->pci_cfg_cap + PCI_CFG_DATA, length, v);
}

static void bar_mapped(struct pci_device *d, int bar, bool mapped, uint64_t addr)
{
	struct virtio_pci *t = d->priv;

	virtio_core_lock(t->core);
	t->bar_mapped = mapped;
	t->bar_addr = addr;
	if (mapped)
		virtio_core_bind_notifiers(t->core);
	else
		virtio_core_unbind_notifiers(t->core);
	virtio_core_unlock(t->core);
}

static void config_written(struct pci_device *d, uint32_t off, uint32_t len)
{
	struct virtio_pci *t = d->priv;
	uint32_t flags = t->msix_cap + PCI_MSIX_FLAGS;
	uint32_t offset, length;
	bool was_enabled;

	if (off < PCI_COMMAND + 2 && off + len > PCI_COMMAND)
		virtio_core_set_dma_allowed(t->core, pci_device_bus_master(d));
	if (overlaps(off, len, t->pci_cfg_cap + PCI_CFG_DATA, 4) &&
	    pci_cfg_access(t, &offset, &length)) {
		uint32_t v = pci_config_get(d, t->pci_cfg_cap + PCI_CFG_DATA, length);

		bar_write(t, offset, &v, length);
	}
	pthread_mutex_lock(&t->msix_lock);
	was_enabled = t->msix_enabled;
	if (off < flags + 2 && off + len > flags) {
		uint16_t ctrl = (uint16_t)pci_config_get(d, flags, 2);

		t->msix_enabled = ctrl & PCI_MSIX_FLAGS_ENABLE;
		t->msix_masked = ctrl & PCI_MSIX_FLAGS_MASKALL;
	}
	sync_all_vectors(t);
	pthread_mutex_unlock(&t->msix_lock);
	if (was_enabled != t->msix_enabled)
		virtio_core_direct_irq_changed(t->core);
}

static const struct pci_device_ops pci_function_ops = {
    .bar_mapped = bar_mapped,
    .config_written = config_written,
    .config_read = config_read,
};

/* ---- Creation and teardown ---- */

static bool add_virtio_cap(struct virtio_pci *t, uint8_t type, uint32_t offset, uint32_t length,
			   bool notify)
{
	uint8_t body[18] = {0};
	uint8_t len = notify ? 18 : 14;

	body[0] = (uint8_t)(len + 2); /* cap_len counts the id and next bytes */
	body[1] = type;
	body[2] = 0; /* BAR 0 */
	memcpy(&body[6], &offset, 4);
	memcpy(&body[10], &length, 4);
	if (notify) {
		uint32_t mult = VIRTIO_PCI_NOTIFY_MULT;

		memcpy(&body[14], &mult, 4);
	}
	return pci_device_add_cap(&t->pci, PCI_CAP_ID_VNDR, body, len) != 0;
}

/* Lets firmware reach BAR 0 through config space alone: its bar, offset, length and data are
 * the driver's to write. */
static bool add_pci_cfg_cap(struct virtio_pci *t)
{
	uint8_t body[18] = {20, VIRTIO_PCI_CAP_PCI_CFG};

	t->pci_cfg_cap = pci_device_add_cap(&t->pci, PCI_CAP_ID_VNDR, body, sizeof(body));
	if (!t->pci_cfg_cap)
		return false;
	pci_device_set_wmask(&t->pci, t->pci_cfg_cap + PCI_CFG_BAR, 1, 0xff);
	pci_device_set_wmask(&t->pci, t->pci_cfg_cap + PCI_CFG_OFFSET, 4, 0xffffffff);
	pci_device_set_wmask(&t->pci, t->pci_cfg_cap + PCI_CFG_LENGTH, 4, 0xffffffff);
	pci_device_set_wmask(&t->pci, t->pci_cfg_cap + PCI_CFG_DATA, 4, 0xffffffff);
	return true;
}

static bool add_msix_cap(struct virtio_pci *t)
{
	uint8_t body[10];
	uint16_t ctrl = (uint16_t)(t->nr_vectors - 1);
	uint32_t table = VIRTIO_PCI_MSIX_TABLE, pba = VIRTIO_PCI_MSIX_PBA; /* BIR 0 */

	memcpy(&body[0], &ctrl, 2);
	memcpy(&body[2], &table, 4);
	memcpy(&body[6], &pba, 4);
	t->msix_cap = pci_device_add_cap(&t->pci, PCI_CAP_ID_MSIX, body, sizeof(body));
	if (!t->msix_cap)
		return false;
	pci_device_set_wmask(&t->pci, t->msix_cap + PCI_MSIX_FLAGS, 2,
			     PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	return true;
}

static void free_transport(struct virtio_pci *t)
{
	for (uint16_t v = 0; t->vectors && v < t->nr_vectors; v++) {
		if (t->msi && t->vectors[v].route >= 0)
			t->msi->ops->remove(t->msi->ctx, t->vectors[v].route);
		if (t->vectors[v].fd >= 0)
			close(t->vectors[v].fd);
	}
	free(t->vectors);
	free((void *)t->queue_vector);
	pthread_mutex_destroy(&t->msix_lock);
	free(t);
}

struct virtio_pci *virtio_pci_create(const struct virtio_pci_params *p, struct virtio_device *dev)
{
	struct virtio_core_params cp = {
	    .vm_fd = p->vm_fd,
	    .mem = p->mem,
	    .max_config_size = VIRTIO_PCI_NOTIFY - VIRTIO_PCI_DEVICE_CFG,
	    .ops = &pci_transport_ops,
	    .transport_name = "virtio-pci",
	    .guest_option = "CONFIG_VIRTIO_PCI",
	    .guest_module = "virtio_pci",
	};
	uint16_t nr = dev->ops->nr_queues,
		 pci_id = (uint16_t)(VIRTIO_PCI_DEVICE_BASE + dev->ops->device_id);
	struct virtio_pci *t = calloc(1, sizeof(*t));
	bool caps;

	if (!t)
		goto nomem;
	t->dev = dev;
	t->host = p->host;
	t->msi = p->msi;
	pthread_mutex_init(&t->msix_lock, NULL);
	t->nr_vectors = nr + 1u > MAX_VECTORS ? MAX_VECTORS : (uint16_t)(nr + 1u);
	t->vectors = calloc(t->nr_vectors, sizeof(*t->vectors));
	t->queue_vector = calloc(nr ? nr : 1, sizeof(*t->queue_vector));
	if (!t->vectors || !t->queue_vector) {
		free_transport(t);
		goto nomem;
	}
	for (uint16_t v = 0; v < t->nr_vectors; v++) {
		t->vectors[v] = (struct msix_vector){.ctrl = PCI_MSIX_ENTRY_MASKED, .route = -1};
		t->vectors[v].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->vectors[v].fd < 0) {
			log_error("%s: MSI-X eventfd: %s", dev->name, strerror(errno));
			free_transport(t);
			return NULL;
		}
	}
	atomic_init(&t->config_vector, VIRTIO_PCI_NO_VECTOR);
	for (uint16_t q = 0; q < nr; q++)
		atomic_init(&t->queue_vector[q], VIRTIO_PCI_NO_VECTOR);

	pci_device_init(&t->pci, dev->name, VIRTIO_PCI_VENDOR, pci_id, 1,
			class_code(dev->ops->device_id), VIRTIO_PCI_VENDOR, pci_id);
	t->pci.ops = &pci_function_ops;
	t->pci.priv = t;
	caps =
	    add_virtio_cap(t, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON, COMMON_SIZE, false) &&
	    add_virtio_cap(t, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY,
			   (uint32_t)nr * VIRTIO_PCI_NOTIFY_MULT, true) &&
	    add_virtio_cap(t, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR, 4, false) &&
	    (!dev->ops->config_size ||
	     add_virtio_cap(t, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_CFG,
			    dev->ops->config_size, false)) &&
	    add_pci_cfg_cap(t) && add_msix_cap(t);
	if (!caps) {
		log_error("%s: PCI capabilities do not fit", dev->name);
		free_transport(t);
		return NULL;
	}
	pci_device_set_bar(&t->pci, 0, VIRTIO_PCI_BAR_SIZE, &virtio_pci_bar_ops, t);

	cp.transport = t;
	t->core = virtio_core_create(&cp, dev);
	if (!t->core) {
		free_transport(t);
		return NULL;
	}
	/* COMMAND starts with bus mastering off. */
	virtio_core_set_dma_allowed(t->core, false);
	if (pci_host_add(t->host, &t->pci) < 0) {
		virtio_core_detach(t->core);
		free_transport(t);
		return NULL;
	}
	log_debug("%s: virtio-pci at 00:%02x.0, BAR 0 at %#x", dev->name, t->pci.devfn >> 3,
		  pci_device_bar_addr(&t->pci, 0));
	return t;

nomem:
	log_error("%s: out of memory", dev->name);
	return NULL;
}

void virtio_pci_destroy(struct virtio_pci *t)
{
	if (!t)
		return;
	pci_host_remove(t->host, &t->pci); /* unmaps BAR 0, unbinding the notifiers */
	virtio_core_destroy(t->core);	   /* resets and destroys the device */
	free_transport(t);
}

/* ---- Saved state ---- */

#define STATE_VERSION 1

int virtio_pci_save(struct virtio_pci *t, uint16_t tag, struct state_writer *w)
{
	uint16_t nr = t->dev->ops->nr_queues;

	state_begin(w, tag, STATE_VERSION);
	state_put_u16(w, nr);
	state_put_u16(w, t->nr_vectors);
	state_put_bytes(w, t->pci.config, PCI_CONFIG_SIZE);
	state_put_u16(w, atomic_load(&t->config_vector));
	for (uint16_t q = 0; q < nr; q++)
		state_put_u16(w, atomic_load(&t->queue_vector[q]));
	pthread_mutex_lock(&t->msix_lock);
	for (uint16_t v = 0; v < t->nr_vectors; v++) {
		const struct msix_vector *vec = &t->vectors[v];

		state_put_u32(w, vec->addr_lo);
		state_put_u32(w, vec->addr_hi);
		state_put_u32(w, vec->data);
		state_put_u32(w, vec->ctrl);
		state_put_bool(w, vector_pending(t, v));
	}
	pthread_mutex_unlock(&t->msix_lock);
	state_end(w);
	return state_writer_status(w);
}

static bool vector_ok(struct virtio_pci *t, uint16_t v)
{
	return v < t->nr_vectors || v == VIRTIO_PCI_NO_VECTOR;
}

static int restore(struct virtio_pci *t, uint16_t tag, struct state_reader *r,
		   uint16_t *queue_vector)
{
	uint16_t nr = t->dev->ops->nr_queues, version, saved_nr = 0, saved_vectors = 0;
	uint16_t config_vector = 0;
	struct msix_vector vectors[MAX_VECTORS];
	uint8_t config[PCI_CONFIG_SIZE];
	int err;

	if (state_open(r, tag, STATE_VERSION, &version))
		return state_reader_status(r);
	state_get_u16(r, &saved_nr);
	state_get_u16(r, &saved_vectors);
	if (!state_reader_status(r) && (saved_nr != nr || saved_vectors != t->nr_vectors))
		return state_refuse(
		    r,
		    "%s: saved virtio-pci state has %u queues and %u vectors, not %u "
		    "and %u%s",
		    t->dev->name, saved_nr, saved_vectors, nr, t->nr_vectors,
		    saved_nr < nr ? " (saved by an older skiff, before the device had more "
				    "queues: such a state cannot load on virtio-pci)"
				  : "");
	state_get_bytes(r, config, sizeof(config));
	state_get_u16(r, &config_vector);
	for (uint16_t q = 0; q < nr; q++)
		state_get_u16(r, &queue_vector[q]);
	for (uint16_t v = 0; v < t->nr_vectors; v++) {
		vectors[v] = (struct msix_vector){0};
		state_get_u32(r, &vectors[v].addr_lo);
		state_get_u32(r, &vectors[v].addr_hi);
		state_get_u32(r, &vectors[v].data);
		state_get_u32(r, &vectors[v].ctrl);
		state_get_bool(r, &vectors[v].pending);
	}
	if ((err = state_close(r)))
		return err;
	if (!vector_ok(t, config_vector))
		return state_refuse(r, "%s: saved config vector %u is beyond the table",
				    t->dev->name, config_vector);
	for (uint16_t q = 0; q < nr; q++)
		if (!vector_ok(t, queue_vector[q]))
			return state_refuse(r,
					    "%s: saved vector %u of queue %u is beyond the table",
					    t->dev->name, queue_vector[q], q);
	for (uint16_t v = 0; v < t->nr_vectors; v++)
		if (vectors[v].ctrl & ~PCI_MSIX_ENTRY_MASKED)
			return state_refuse(r,
					    "%s: saved MSI-X vector %u has reserved control bits",
					    t->dev->name, v);
	for (int i = 0; i < PCI_CONFIG_SIZE; i++)
		if ((config[i] ^ t->pci.config[i]) & ~t->pci.wmask[i])
			return state_refuse(r, "%s: saved config space is another function's",
					    t->dev->name);

	atomic_store(&t->config_vector, config_vector);
	for (uint16_t q = 0; q < nr; q++)
		atomic_store(&t->queue_vector[q], queue_vector[q]);
	pthread_mutex_lock(&t->msix_lock);
	for (uint16_t v = 0; v < t->nr_vectors; v++) {
		struct msix_vector *vec = &t->vectors[v];

		vec->addr_lo = vectors[v].addr_lo;
		vec->addr_hi = vectors[v].addr_hi;
		vec->data = vectors[v].data;
		vec->ctrl = vectors[v].ctrl;
		vec->pending = vectors[v].pending;
		vec->route_current = false;
	}
	pthread_mutex_unlock(&t->msix_lock);
	/* BAR 0 where the config space says (rebinding the notifiers), then what config_written
	 * would make of COMMAND and the MSI-X flags. */
	pci_host_load_config(t->host, &t->pci, config);
	virtio_core_set_dma_allowed(t->core, pci_device_bus_master(&t->pci));
	pthread_mutex_lock(&t->msix_lock);
	{
		uint16_t ctrl = (uint16_t)pci_config_get(&t->pci, t->msix_cap + PCI_MSIX_FLAGS, 2);

		t->msix_enabled = ctrl & PCI_MSIX_FLAGS_ENABLE;
		t->msix_masked = ctrl & PCI_MSIX_FLAGS_MASKALL;
	}
	sync_all_vectors(t);
	pthread_mutex_unlock(&t->msix_lock);
	virtio_core_direct_irq_changed(t->core);
	return 0;
}

int virtio_pci_restore(struct virtio_pci *t, uint16_t tag, struct state_reader *r)
{
	uint16_t nr = t->dev->ops->nr_queues;
	uint16_t *queue_vector = calloc(nr ? nr : 1, sizeof(*queue_vector));
	int err;

	if (!queue_vector)
		return -ENOMEM;
	err = restore(t, tag, r, queue_vector);
	free(queue_vector);
	return err;
}

struct pci_device *virtio_pci_function(struct virtio_pci *t)
{
	return &t->pci;
}

int virtio_pci_vector_eventfd(const struct virtio_pci *t, uint16_t vector)
{
	return vector < t->nr_vectors ? t->vectors[vector].fd : -1;
}
