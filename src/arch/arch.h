/* The architecture interface: everything src/vmm asks of src/arch/<arch>/. Nothing outside
 * src/arch/ needs to know which architecture it runs on. */
#ifndef SKIFF_ARCH_H
#define SKIFF_ARCH_H

#include <stddef.h>
#include <stdint.h>

struct guest_region;
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

/* Presses and releases Ctrl, Alt and Del on the guest's keyboard (x86: the i8042; arm64: three
 * gpio-keys buttons on a PL061). 0, or -errno with a one-line reason as the thread's last error
 * (log_set_error). */
int arch_send_ctrl_alt_del(struct vm *vm);

/* The built-in bare-metal demo guest for this architecture (a flat binary for --raw loading). */
void arch_demo_guest(const void **image, size_t *size);

/* One line of the vCPU's key registers, for fatal-exit messages. */
void arch_vcpu_describe(struct vcpu *vcpu, char *buf, size_t len);

#endif
