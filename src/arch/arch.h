/* The architecture interface: everything src/vmm asks of src/arch/<arch>/. Nothing outside
 * src/arch/ needs to know which architecture it runs on. */
#ifndef SKIFF_ARCH_H
#define SKIFF_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How snapshot files and live-migration streams name an architecture (a number in their
 * headers), this build's, and a name for one a file or a peer gave. */
#define ARCH_ID_X86_64 1
#define ARCH_ID_ARM64  2

static inline uint32_t arch_id(void)
{
#if defined(__x86_64__)
	return ARCH_ID_X86_64;
#elif defined(__aarch64__)
	return ARCH_ID_ARM64;
#else
#error "skiff runs on x86_64 and arm64 hosts"
#endif
}

static inline const char *arch_id_name(uint32_t id)
{
	return id == ARCH_ID_X86_64 ? "x86_64"
	       : id == ARCH_ID_ARM64 ? "arm64"
				     : "an unknown architecture";
}

struct guest_region;
struct kvm_irq_routing_entry;
struct state_reader;
struct state_writer;
struct vm;
struct vcpu;
struct vm_config;

/* The checks of a VM config that depend on the architecture (options that only one of them
 * has). Returns 0, or -EINVAL with a one-line reason as the thread's last error
 * (log_set_error). */
int arch_validate_config(const struct vm_config *cfg);

/* Guest RAM regions for `bytes` of memory; returns how many were written to `out`. */
int arch_memory_layout(uint64_t bytes, struct guest_region *out, int max);

/* VM-wide setup before any vCPU exists: capabilities, interrupt controller, timers; and the
 * arch's own state, which arch_vm_destroy() frees (after vm_destroy() destroyed the devices). */
int arch_vm_init(struct vm *vm);
void arch_vm_destroy(struct vm *vm);

/* The platform devices (console UART, reset and power devices, clock): each goes on the VM's
 * device list (vm_add_device), which owns it, and onto vm->pio / vm->mmio; and the console input
 * hook. */
int arch_devices_init(struct vm *vm);

/* Where the boot-timer device (devices/boot_timer.h) lives: a page of the MMIO space that is
 * neither RAM nor another device's. */
uint64_t arch_boot_timer_base(void);

/* Where virtio-mmio device number `index` (0, 1, ...) lives and the interrupt line it raises,
 * numbered as KVM_IRQFD numbers GSIs. Returns 0, or -ENOSPC when the platform has no more. */
int arch_virtio_mmio_slot(int index, uint64_t *base, uint32_t *gsi);

/* Where PCI lives in guest physical space (only used with --enable-pci). */
struct arch_pci_windows {
	uint64_t ecam_base, ecam_size; /* config space, ECAM: bus 0 only, so 1 MiB */
	uint64_t mmio_base, mmio_size; /* where BARs live (32-bit, below 4 GiB) */
	bool cf8;		       /* also config mechanism #1 on ports 0xcf8/0xcfc (x86) */
};

/* Fills `w` for a VM of config `cfg` (x86_64: firmware gets the window SeaBIOS allocates BARs
 * in); returns 0, or -ENODEV when this platform has no PCI host bridge (yet). */
int arch_pci_windows(const struct vm_config *cfg, struct arch_pci_windows *w);

/* The interrupt routes KVM starts the VM with, which every KVM_SET_GSI_ROUTING must repeat
 * (it replaces the whole table): x86: GSIs 0-15 to the PIC and the I/O APIC, 16-23 to the
 * I/O APIC; arm64: the vGIC's SPIs. Writes at most `max` entries to `out` and returns how many
 * (or -ENOSPC); *first_msi_gsi is the first GSI free for MSI routes. */
int arch_irq_routing_defaults(struct kvm_irq_routing_entry *out, int max,
			      uint32_t *first_msi_gsi);

/* Fills `e` (whose gsi is set) as the MSI route of message (addr, data) from PCI requester
 * `requester_id` (bus << 8 | devfn): type KVM_IRQ_ROUTING_MSI, and the flags and devid the
 * interrupt controller needs (arm64's ITS: KVM_MSI_VALID_DEVID, devid = requester_id). Returns
 * 0, or -EINVAL when the interrupt controller takes no message at `addr` (the caller refuses
 * the route with a log line). */
int arch_msi_route(struct kvm_irq_routing_entry *e, uint64_t addr, uint32_t data,
		   uint32_t requester_id);

/* The `irq` field of KVM_IRQ_LINE that drives interrupt line `gsi`. */
uint32_t arch_kvm_irq_line(uint32_t gsi);

/* Loads what the VM's config names (kernel and initrd, or a flat binary) into guest memory and
 * describes the platform to the guest (ACPI tables or a device tree), including the virtio-mmio
 * devices on vm->devices. */
int arch_load_guest(struct vm *vm);

/* Per-vCPU setup: identification (CPUID or MPIDR), MSRs, local interrupt controller, and the
 * boot register state on the boot vCPU. */
int arch_vcpu_init(struct vm *vm, struct vcpu *vcpu);

/* After every vCPU exists (arch_vcpu_init done on all): what KVM only accepts then (arm64: the
 * vGIC's initialization, the PMU) and what needs the vCPUs' identities (the device tree). */
int arch_vm_finalize(struct vm *vm);

/* The guest's clock across a pause (vm_pause/vm_resume), with every vCPU out of KVM_RUN:
 * save reads it into the arch state, restore writes it back so that the guest does not see the
 * paused time pass (x86: kvmclock and each vCPU's TSC; arm64: the virtual counter). 0, or
 * -errno after one logged line. */
int arch_vm_clock_save(struct vm *vm);
int arch_vm_clock_restore(struct vm *vm);

/* The machine state KVM holds, as sections of the saved-state layout (base/state.h), tagged
 * with these numbers (device kinds, base/device.h, stay below 0x100):
 *   ARCH_STATE_VM    the VM-wide part (x86: kvmclock, the PICs, the I/O APIC, the PIT; arm64:
 *                    the vGICv3's distributor, redistributors, CPU interfaces, line levels and
 *                    ITS);
 *   ARCH_STATE_VCPU  one vCPU (x86: registers, FPU/XSAVE, XCRs, every MSR KVM lists, the
 *                    local APIC, pending events, MP state, debug registers; arm64: every
 *                    register KVM_GET_REG_LIST names, timers included, MP state, events).
 * With every vCPU out of KVM_RUN. A restore goes onto a VM built from the same config, before
 * its vCPUs first run: the VM section first, then each vCPU's in order. 0, or -errno with a
 * one-line reason as the thread's last error (log_set_error); a section that fails to read
 * changes nothing of KVM's. An arm64 VM with a GICv2 answers -ENOTSUP and says so. */
#define ARCH_STATE_VM	0x100
#define ARCH_STATE_VCPU 0x101
int arch_vm_state_save(struct vm *vm, struct state_writer *w);
int arch_vm_state_restore(struct vm *vm, struct state_reader *r);
int arch_vcpu_state_save(struct vm *vm, struct vcpu *vcpu, struct state_writer *w);
int arch_vcpu_state_restore(struct vm *vm, struct vcpu *vcpu, struct state_reader *r);

/* Presses and releases Ctrl, Alt and Del on the guest's keyboard (x86: the i8042; arm64: three
 * gpio-keys buttons on a PL061). 0, or -errno with a one-line reason as the thread's last error
 * (log_set_error). */
int arch_send_ctrl_alt_del(struct vm *vm);

/* The built-in bare-metal demo guest for this architecture (a flat binary for --raw loading). */
void arch_demo_guest(const void **image, size_t *size);

/* One line of the vCPU's key registers, for fatal-exit messages. */
void arch_vcpu_describe(struct vcpu *vcpu, char *buf, size_t len);

#endif
