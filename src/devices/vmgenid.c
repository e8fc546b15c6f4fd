#include "devices/vmgenid.h"
#include "base/device.h"
#include "base/log.h"
#include "base/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct vmgenid {
	struct vm_device dev; /* its entry in the VM's device list */
	const struct guest_mem *mem;
	uint64_t gpa;
	struct irq_line irq;
};

/* 16 bytes from the kernel's CSPRNG. getrandom() for 16 bytes does not return short once the
 * pool is initialized; EINTR is tried again. */
static int random_id(uint8_t id[VMGENID_SIZE])
{
	ssize_t n;

	do
		n = getrandom(id, VMGENID_SIZE, 0);
	while (n < 0 && errno == EINTR);
	if (n != VMGENID_SIZE)
		return n < 0 ? -errno : -EIO;
	return 0;
}

/* A new ID at `gpa`; nothing written on a failure. */
static int write_id(const struct guest_mem *mem, uint64_t gpa)
{
	uint8_t id[VMGENID_SIZE];
	void *dst = guest_mem_ptr(mem, gpa, VMGENID_SIZE);
	int err;

	if (!dst) {
		log_error("vmgenid: 0x%llx+%d is not guest RAM", (unsigned long long)gpa,
			  VMGENID_SIZE);
		return -EFAULT;
	}
	err = random_id(id);
	if (err) {
		log_error("vmgenid: no random bytes for a new generation ID: %s", strerror(-err));
		return err;
	}
	memcpy(dst, id, sizeof(id));
	/* A Diff snapshot must carry the new ID: KVM's dirty log does not see skiff's writes. */
	guest_mem_mark_dirty(mem, dst, VMGENID_SIZE);
	return 0;
}

/* The guest's handler (Linux: the GED's _EVT, which notifies VGEN) runs on the edge. */
static void notify(struct vmgenid *g)
{
	irq_line_set(&g->irq, true);
	irq_line_set(&g->irq, false);
}

int vmgenid_regenerate(struct vmgenid *g)
{
	int err = write_id(g->mem, g->gpa);

	if (!err)
		notify(g);
	return err;
}

uint64_t vmgenid_addr(const struct vmgenid *g)
{
	return g->gpa;
}

#define VMGENID_STATE_VERSION 1

static int vmgenid_save(struct vm_device *dev, struct state_writer *w)
{
	struct vmgenid *g = (struct vmgenid *)dev;

	state_begin(w, VM_DEVICE_VMGENID, VMGENID_STATE_VERSION);
	state_put_u64(w, g->gpa);
	state_put_u32(w, g->irq.gsi);
	state_end(w);
	return state_writer_status(w);
}

/* The ID's page came with the guest's memory; what changes is the ID in it: a restored VM is a
 * clone of the one that was saved, and may be one of many. */
static int vmgenid_restore(struct vm_device *dev, struct state_reader *r)
{
	struct vmgenid *g = (struct vmgenid *)dev;
	uint16_t version;
	uint64_t gpa;
	uint32_t gsi;

	if (state_open(r, VM_DEVICE_VMGENID, VMGENID_STATE_VERSION, &version))
		return state_reader_status(r);
	state_get_u64(r, &gpa);
	state_get_u32(r, &gsi);
	if (state_close(r))
		return state_reader_status(r);
	if (!guest_mem_ptr(g->mem, gpa, VMGENID_SIZE))
		return state_refuse(r,
				    "vmgenid: the generation ID's address 0x%llx is not in "
				    "guest RAM",
				    (unsigned long long)gpa);
	if (gsi != g->irq.gsi)
		return state_refuse(r,
				    "vmgenid: the snapshot notifies on GSI %u, this skiff on "
				    "GSI %u",
				    gsi, g->irq.gsi);
	if (write_id(g->mem, gpa))
		return state_refuse(r, "vmgenid: cannot write a new generation ID");
	g->gpa = gpa;
	notify(g);
	log_info("vmgenid: new generation ID at 0x%llx, guest notified on GSI %u",
		 (unsigned long long)gpa, gsi);
	return 0;
}

static void vmgenid_device_destroy(struct vm_device *dev)
{
	vmgenid_destroy((struct vmgenid *)dev);
}

static const struct vm_device_ops vmgenid_device_ops = {
	.name = "vmgenid",
	.destroy = vmgenid_device_destroy,
	.save = vmgenid_save,
	.restore = vmgenid_restore,
};

struct vmgenid *vmgenid_create(const struct guest_mem *mem, uint64_t gpa,
			       const struct irq_line *irq, bool fresh)
{
	struct vmgenid *g;

	if (!guest_mem_ptr(mem, gpa, VMGENID_SIZE)) {
		log_error("vmgenid: 0x%llx+%d is not guest RAM", (unsigned long long)gpa,
			  VMGENID_SIZE);
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		log_error("vmgenid: out of memory");
		return NULL;
	}
	g->mem = mem;
	g->gpa = gpa;
	if (irq)
		g->irq = *irq;
	if (fresh && write_id(mem, gpa)) {
		free(g);
		return NULL;
	}
	vm_device_init(&g->dev, VM_DEVICE_VMGENID, &vmgenid_device_ops, NULL);
	return g;
}

struct vm_device *vmgenid_device(struct vmgenid *g)
{
	return g ? &g->dev : NULL;
}

void vmgenid_destroy(struct vmgenid *g)
{
	free(g);
}
