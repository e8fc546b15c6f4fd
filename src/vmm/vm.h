/* A VM: the KVM VM file descriptor, its guest memory, the two address-dispatch buses, its vCPUs,
 * and its stop state. vm_create() builds everything the config describes; vm_run() starts the
 * vCPU threads, serves the console and signals on the calling thread, and returns skiff's exit
 * status once the guest powers off, resets, halts for good or fails. */
#ifndef SKIFF_VM_H
#define SKIFF_VM_H

#include "base/device.h"
#include "bus/bus.h"
#include "config/vm_config.h"
#include "base/guest_mem.h"
#include "base/irq.h"
#include "base/kvm.h"
#include "base/power.h"
#include "vmm/coalesced.h"
#include "vmm/vcpu.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct irq_routing;
struct pci_host;

#define VM_MAX_VIRTIO 16

/* How host input reaches the guest's console device; set by the arch code. */
struct console_input {
	size_t (*receive)(void *ctx, const uint8_t *buf, size_t len); /* returns bytes taken */
	void *ctx;
};

struct vm {
	struct kvm kvm;
	int fd;
	const struct vm_config *cfg;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	/* Writes KVM batches instead of exiting (the UART's transmit register), replayed by the
	 * vCPUs. */
	struct coalesced coalesced;
	struct vcpu *vcpus;
	int nr_vcpus;
	bool has_irqchip; /* false for bare-metal (--raw) guests: HLT then ends the VM */
	/* Built by vm_create_restored(): guest memory is a snapshot's, so nothing is loaded into
	 * it and no boot state is set up; the snapshot's state goes in before the vCPUs run. */
	bool restoring;
	/* Built by vm_create_incoming(): the disks are open without their locks (base/device.h
	 * disk_lock takes them). */
	bool disks_unlocked;
	/* Set before a restore (arch_vm_state_restore): the guest's clock moves on by the real time
	 * since the snapshot instead of going on from where it stood. */
	bool clock_realtime;
	void *arch;	  /* the arch code's private state */

	struct power_ctl power; /* handed to devices that can end the VM */
	/* With --enable-pci (else NULL): the host bridge, and the interrupt routing table its
	 * devices' MSI routes go into. */
	struct pci_host *pci;
	struct irq_routing *irq_routing;
	/* Every device, platform and virtio, in the order of creation (base/device.h). */
	struct vm_devices devices;

	struct console_input console;
	int console_out_fd;  /* skiff's stdout, or serial_out_fd */
	int serial_out_fd;   /* the config's serial_out_path, opened by vm_create (-1: none) */

	pthread_mutex_t stop_lock;
	enum vm_stop_reason stop_reason;
	char stop_why[VM_STOP_WHY_MAX];
	int stop_status; /* VM_STOP_EXIT: the exit status the guest chose */
	int stop_eventfd; /* becomes readable when a stop is requested */

	/* Pausing (vm_pause/vm_resume, serialised by pause_api_lock): the vCPUs park at the gate,
	 * which also tells them that the VM is stopping. */
	pthread_mutex_t pause_api_lock;
	struct vcpu_gate gate;
	bool paused; /* vm_pause() completed and no vm_resume() since (pause_api_lock) */
	bool clock_saved; /* arch_vm_clock_save() succeeded at the pause (pause_api_lock) */

	/* Process CPU time (ns) when the boot vCPU first entered KVM_RUN, for startup figures. */
	uint64_t first_run_cpu_ns;
	/* Its uptime (base/uptime.h, microseconds since exec) then, for the boot breakdown. */
	uint64_t first_run_us;
};

/* The whole check of a VM description before vm_create(): vm_config_validate() and the
 * architecture's own (arch_validate_config). 0, or -EINVAL with the reason as the thread's last
 * error. */
int vm_check_config(const struct vm_config *cfg, int max_cpus, uint64_t host_memory_mib);

/* Builds the VM the config describes. On failure returns -errno after one logged line, and
 * nothing stays allocated. */
int vm_create(struct vm *vm, const struct vm_config *cfg);
/* The same VM for a snapshot's state to be restored into (vmm/snapshot.h): its guest memory is
 * mem_fd's contents, mapped private (copy-on-write, read lazily), and neither the guest nor its
 * boot state nor the firmware tables are written into it. */
int vm_create_restored(struct vm *vm, const struct vm_config *cfg, int mem_fd);
/* The same for a live migration's destination, built while the source still runs: the disks
 * are opened without their locks, which the source holds until it sends the state; the
 * destination takes them then (vm_device_update with disk_lock 1). */
int vm_create_incoming(struct vm *vm, const struct vm_config *cfg, int mem_fd);
/* The same with anonymous guest memory that the Uffd page-fault handler listening on
 * socket_path fills (vmm/uffd.h). */
int vm_create_restored_uffd(struct vm *vm, const struct vm_config *cfg, const char *socket_path);
void vm_destroy(struct vm *vm);

/* Runs the VM to its end on the calling thread; returns skiff's exit status. */
int vm_run(struct vm *vm);

/* Records the first stop reason and wakes the run loop; safe from any thread. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *why);
enum vm_stop_reason vm_stop_reason(struct vm *vm);
/* The same with VM_STOP_EXIT: skiff ends with `status` (its low 8 bits), as a test device asked. */
void vm_request_exit(struct vm *vm, int status, const char *why);

/* Pausing: every vCPU leaves KVM_RUN (a signal plus immediate_exit, no busy waiting) and waits
 * until vm_resume(); vm_pause() returns once all of them have stopped. The guest's clock is saved
 * at the pause and restored at the resume, so it does not jump by the paused time. Both return 0,
 * or -errno with a one-line reason as the thread's last error (log_set_error: not running,
 * already in that state). Safe from any thread but the vCPUs'. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
bool vm_is_paused(struct vm *vm);

/* Presses Ctrl-Alt-Del on the guest's keyboard (x86: the i8042; arm64: see arch code). 0, or
 * -errno with a one-line reason as the thread's last error. */
int vm_send_ctrl_alt_del(struct vm *vm);

/* Resident bytes of guest memory (mincore), to tell the VMM's own RSS from the guest's. */
uint64_t vm_guest_resident_bytes(struct vm *vm);

/* For the code that creates devices (arch, vmm/virtio_devices.c): vm_add_device() puts `dev` on
 * the VM's device list, which owns it from then on (vm_destroy destroys it); dev NULL means its
 * creation ran out of memory: -ENOMEM after a line naming `what`. vm_map_device() places
 * registers of a device at [base, base + len) of `bus` (&vm->pio or &vm->mmio) with `ops` and
 * `opaque`. Both return 0 or -errno after one logged line. */
int vm_add_device(struct vm *vm, struct vm_device *dev, const char *what);
int vm_map_device(struct vm *vm, struct bus *bus, uint64_t base, uint64_t len,
		  const struct bus_device_ops *ops, void *opaque, const char *what);

/* An interrupt line driving GSI `gsi` of the in-kernel interrupt controller. */
void vm_irq_line_init(struct vm *vm, struct irq_line *line, uint32_t gsi);

#endif
