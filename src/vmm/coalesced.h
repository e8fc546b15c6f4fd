/* KVM's coalesced MMIO and port I/O: writes to a registered zone do not exit to skiff. KVM
 * appends them to a ring that every vCPU's kvm_run mapping shares, and the next vCPU to come
 * out of KVM_RUN, for whatever reason, replays them to the buses before its own exit is
 * handled. So a device sees every access in the guest's order; it only sees a batched write
 * later, at the guest's next exit. Only a write whose effect the guest cannot observe before its
 * next exit may be batched: the UART's transmit register while the guest polls the line status
 * register instead of waiting for an interrupt (devices/serial_8250.h), and virtio-mmio's
 * InterruptACK, which the guest observes only through InterruptStatus (an exit) and which the
 * virtio core takes late without losing an interrupt raised meanwhile (virtio/mmio.h). */
#ifndef SKIFF_VMM_COALESCED_H
#define SKIFF_VMM_COALESCED_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct bus;

struct coalesced {
	pthread_mutex_t lock; /* one replayer at a time; guards `replayed` */
	int vm_fd;
	long ring_offset;    /* bytes from a vCPU's kvm_run to the ring; 0: KVM has none */
	uint32_t ring_slots; /* entries the ring holds */
	bool pio;	     /* KVM_CAP_COALESCED_PIO: port-I/O zones too */
	struct bus *pio_bus;
	struct bus *mmio_bus;
	uint64_t replayed; /* writes replayed so far: exits the guest did not take */
};

/* One address range whose writes may be batched, switched on and off by its device. */
struct coalesced_zone {
	struct coalesced *c;
	uint64_t addr;
	uint32_t size;
	bool pio;
	bool on; /* registered with KVM now */
};

/* Asks KVM (on the VM's fd) where the ring is; a KVM without one leaves every zone off. */
void coalesced_init(struct coalesced *c, int vm_fd, struct bus *pio, struct bus *mmio);
void coalesced_destroy(struct coalesced *c);

/* Registers (on) or unregisters (off) the zone with KVM. 0, or -errno: -ENOTSUP when KVM
 * cannot batch this kind of access (the zone then stays off and its writes exit as before).
 * `zone` is a struct coalesced_zone, as a device's callback gets it. */
int coalesced_zone_set(void *zone, bool on);

/* Replays the batched writes to the buses, oldest first; a vCPU thread calls it with its own
 * kvm_run after every KVM_RUN. Cheap when the ring is empty. */
void coalesced_replay(struct coalesced *c, struct kvm_run *run);

/* Writes replayed since the VM was created. */
uint64_t coalesced_replayed(struct coalesced *c);

#endif
