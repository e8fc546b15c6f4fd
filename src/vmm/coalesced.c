#include "vmm/coalesced.h"
#include "base/kvm.h"
#include "base/log.h"
#include "bus/bus.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

void coalesced_init(struct coalesced *c, int vm_fd, struct bus *pio, struct bus *mmio)
{
	long page = sysconf(_SC_PAGESIZE);
	int offset = kvm_check_cap(vm_fd, KVM_CAP_COALESCED_MMIO);

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->vm_fd = vm_fd;
	c->pio_bus = pio;
	c->mmio_bus = mmio;
	if (offset <= 0 || page <= 0)
		return;
	/* The capability's value is the ring's page within the vCPU mapping. */
	c->ring_offset = (long)offset * page;
	c->ring_slots = (uint32_t)(((size_t)page - sizeof(struct kvm_coalesced_mmio_ring)) /
				   sizeof(struct kvm_coalesced_mmio));
	c->pio = kvm_check_cap(vm_fd, KVM_CAP_COALESCED_PIO) > 0;
}

void coalesced_destroy(struct coalesced *c)
{
	pthread_mutex_destroy(&c->lock);
}

int coalesced_zone_set(void *opaque, bool on)
{
	struct coalesced_zone *z = opaque;
	struct kvm_coalesced_mmio_zone kz = {.addr = z->addr, .size = z->size, .pio = z->pio};
	unsigned long req = on ? KVM_REGISTER_COALESCED_MMIO : KVM_UNREGISTER_COALESCED_MMIO;

	if (on == z->on)
		return 0;
	if (!z->c || !z->c->ring_offset || (z->pio && !z->c->pio))
		return -ENOTSUP;
	if (ioctl(z->c->vm_fd, req, &kz) < 0) {
		int err = errno;

		log_debug("coalesced %s zone 0x%llx+%u: %s %s", z->pio ? "port-I/O" : "MMIO",
			  (unsigned long long)z->addr, z->size, on ? "register" : "unregister",
			  strerror(err));
		return -err;
	}
	z->on = on;
	return 0;
}

void coalesced_replay(struct coalesced *c, struct kvm_run *run)
{
	struct kvm_coalesced_mmio_ring *ring;
	uint32_t first;

	if (!c || !c->ring_offset)
		return;
	ring = (struct kvm_coalesced_mmio_ring *)((char *)run + c->ring_offset);
	if (__atomic_load_n(&ring->first, __ATOMIC_RELAXED) ==
	    __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&c->lock);
	first = ring->first;
	while (first != __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE)) {
		const struct kvm_coalesced_mmio *e;
		uint8_t data[8];
		uint32_t len;

		/* KVM keeps both indices below ring_slots; a ring that says otherwise is dropped
		 * rather than read past its page. */
		if (first >= c->ring_slots) {
			log_warn("coalesced writes: ring index %u beyond its %u slots; dropped", first,
				 c->ring_slots);
			first = __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE);
			break;
		}
		e = &ring->coalesced_mmio[first];
		len = e->len < sizeof(data) ? e->len : sizeof(data);
		memcpy(data, e->data, len);
		bus_access(e->pio ? c->pio_bus : c->mmio_bus, e->phys_addr, data, len, true);
		first = (first + 1) % c->ring_slots;
		c->replayed++;
	}
	/* The slots are free again once `first` moves past them. */
	__atomic_store_n(&ring->first, first, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&c->lock);
}

uint64_t coalesced_replayed(struct coalesced *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->lock);
	n = c->replayed;
	pthread_mutex_unlock(&c->lock);
	return n;
}
