/* The arm64 platform: the arch interface (arch/arch.h) for a virt-like microVM. A VM that boots a
 * kernel gets an in-kernel vGIC (v3, or v2), the architected timer, PSCI 0.2 handled by KVM
 * (secondary vCPUs start powered off and wait for the guest's CPU_ON), a PMU when the host has
 * one, a 16550A UART in MMIO, a PL061 GPIO controller with gpio-keys buttons for Ctrl-Alt-Del
 * and a device tree. A bare-metal (--raw) guest gets the UART and
 * PSCI but no interrupt controller; it ends with PSCI SYSTEM_OFF. Memory map: arm64/layout.h. */
#include "arch/arch.h"
#include "arch/arm64/cpu_state.h"
#include "arch/arm64/fdt.h"
#include "arch/arm64/gic.h"
#include "arch/arm64/image.h"
#include "arch/arm64/layout.h"
#include "devices/fw_cfg.h"
#include "devices/pl061.h"
#include "devices/serial_8250.h"
#include "devices/vmgenid.h"
#include "base/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

struct arm64_platform {
	struct irq_line uart_irq;
	struct coalesced_zone uart_tx; /* the UART's THR, batched while the guest polls (vmm/coalesced.h) */
	/* With the gpio-keys buttons; kernel guests only. The VM's device list owns it. */
	struct pl061 *gpio;
	struct irq_line gpio_irq;
	/* Kernel guests: the last page of RAM; the VM's device list owns it. */
	struct vmgenid *vmgenid;
	struct irq_line vmgenid_irq;
	bool fw_cfg; /* on the device list and at ARM64_FW_CFG_BASE */
	pthread_mutex_t keys_lock; /* one Ctrl-Alt-Del at a time */
	struct arm64_gic gic;
	bool has_gic;
	bool pmu;
	struct kvm_vcpu_init target; /* KVM_ARM_PREFERRED_TARGET */
	uint64_t *mpidr;	     /* per vCPU, from KVM */
	uint64_t *cntvct;	     /* per vCPU: the virtual counter, saved at a pause */
	uint64_t counter_delta;	     /* a restore's clock_realtime ticks, VM section to vCPUs */
	struct arm64_boot_layout boot;
	char cmdline[VM_CONFIG_MAX_CMDLINE];
};

static struct arm64_platform *platform(struct vm *vm)
{
	return vm->arch;
}

int arch_validate_config(const struct vm_config *cfg)
{
	char cpus[64], memory[64];

	vm_config_describe(cfg, VM_SETTING_CPUS, cpus, sizeof(cpus));
	vm_config_describe(cfg, VM_SETTING_MEMORY, memory, sizeof(memory));
	if (cfg->firmware_path)
		return log_set_error(-EINVAL, "--firmware is for x86_64 BIOS images; arm64 firmware "
				     "(EDK2) needs flash emulation, which skiff does not have");
	if (cfg->boot_protocol != BOOT_PROTOCOL_AUTO)
		return log_set_error(-EINVAL, "--boot-protocol is for x86_64 ELF kernels; arm64 "
				     "boots a Linux Image (or a gzip-compressed one) as booting.rst "
				     "says");
	if (cfg->debug_exit)
		return log_set_error(-EINVAL, "--debug-exit is x86_64's port 0xf4 test device; an "
				     "arm64 test image ends skiff through PSCI SYSTEM_OFF (status 0) "
				     "and reports its result on the console");
	if (cfg->irqchip == IRQCHIP_GICV2 && cfg->nr_cpus > ARM64_GIC_V2_MAX_CPUS)
		return log_set_error(-EINVAL,
				     "%s: a GICv2 serves at most %d vCPUs (use "
				     "--irqchip gicv3 or auto)",
				     cpus, ARM64_GIC_V2_MAX_CPUS);
	if (cfg->enable_pci && cfg->irqchip == IRQCHIP_GICV2)
		return log_set_error(-EINVAL,
				     "%s needs a GICv3 (PCI MSIs go through its "
				     "ITS; GICv2m is not supported): use --irqchip gicv3 or auto",
				     vm_config_setting_name(cfg, VM_SETTING_PCI));
	if (cfg->memory_mib > ((1ULL << ARM64_MAX_IPA_BITS) - ARM64_RAM_BASE) >> 20)
		return log_set_error(-EINVAL,
				     "%s: guest RAM must end below %d bits "
				     "of guest physical address space (it starts at 2 GiB)",
				     memory, ARM64_MAX_IPA_BITS);
	return 0;
}

int arch_memory_layout(uint64_t bytes, struct guest_region *out, int max)
{
	if (max < 1)
		return 0;
	out[0] = (struct guest_region){.gpa = ARM64_RAM_BASE, .size = bytes};
	return 1;
}

static const struct kvm_cap_need arm64_caps[] = {
    {KVM_CAP_ONE_REG, "KVM_CAP_ONE_REG"},
    {KVM_CAP_ARM_PSCI_0_2, "KVM_CAP_ARM_PSCI_0_2"},
};

static const struct kvm_cap_need arm64_irqchip_caps[] = {
    {KVM_CAP_DEVICE_CTRL, "KVM_CAP_DEVICE_CTRL"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
};

/* PCI's MSIs reach the guest through a GICv3 ITS, which takes a device id (the requester id)
 * with every MSI. KVM reports KVM_CAP_MSI_DEVID only once a VM has an ITS: it is checked after,
 * as the promise the MSI routes rely on. */
static int its_init(struct vm *vm, struct arm64_platform *p)
{
	int ret;

	if (p->gic.version != ARM64_GICV3) {
		log_error("%s needs a GICv3 (PCI MSIs go through its ITS), and this host's KVM "
			  "gave the VM a GICv2",
			  vm_config_setting_name(vm->cfg, VM_SETTING_PCI));
		return -ENODEV;
	}
	ret = arm64_gic_add_its(vm->fd, &p->gic);
	if (!ret && kvm_check_cap(vm->fd, KVM_CAP_MSI_DEVID) <= 0) {
		log_error("%s: this host's KVM has an ITS but cannot route MSIs with a "
			  "device id (no KVM_CAP_MSI_DEVID)",
			  vm_config_setting_name(vm->cfg, VM_SETTING_PCI));
		ret = -ENODEV;
	}
	if (!ret)
		log_info("GICv3 ITS at 0x%llx: PCI MSIs, device id = requester id",
			 ARM64_GIC_ITS_BASE);
	return ret;
}

int arch_vm_init(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	struct arm64_platform *p;
	int ret;

	ret = kvm_require_caps(vm->kvm.fd, arm64_caps, sizeof(arm64_caps) / sizeof(arm64_caps[0]));
	if (ret)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	vm->arch = p;
	p->gic.fd = -1;
	p->gic.its_fd = -1;
	pthread_mutex_init(&p->keys_lock, NULL);
	p->mpidr = calloc((size_t)cfg->nr_cpus, sizeof(*p->mpidr));
	p->cntvct = calloc((size_t)cfg->nr_cpus, sizeof(*p->cntvct));
	if (!p->mpidr || !p->cntvct)
		return -ENOMEM;
	if (ioctl(vm->fd, KVM_ARM_PREFERRED_TARGET, &p->target) < 0) {
		ret = -errno;
		log_error("KVM_ARM_PREFERRED_TARGET failed: %s", strerror(errno));
		return ret;
	}
	if (!cfg->kernel_path)
		return 0;
	ret = kvm_require_caps(vm->kvm.fd, arm64_irqchip_caps,
			       sizeof(arm64_irqchip_caps) / sizeof(arm64_irqchip_caps[0]));
	if (ret)
		return ret;
	ret = arm64_gic_create(vm->fd, cfg->irqchip, cfg->nr_cpus, &p->gic);
	if (ret)
		return ret;
	p->has_gic = true;
	vm->has_irqchip = true;
	/* --enable-pci: the virtio devices sit on a PCI host bridge, their MSIs go to an ITS. */
	if (cfg->enable_pci) {
		ret = its_init(vm, p);
		if (ret)
			return ret;
	}
	p->pmu = kvm_check_cap(vm->fd, KVM_CAP_ARM_PMU_V3) > 0;
	log_info("interrupt controller: in-kernel GICv%d%s; PMU: %s", p->gic.version,
		 cfg->irqchip == IRQCHIP_AUTO ? " (--irqchip auto)" : "",
		 p->pmu ? "PMUv3" : "none (the host's KVM has no KVM_CAP_ARM_PMU_V3)");
	return 0;
}

static size_t uart_receive(void *ctx, const uint8_t *buf, size_t len)
{
	return serial_8250_receive(ctx, buf, len);
}

/* fw_cfg (devices/fw_cfg.h) with what firmware and test kernels ask first: the RAM size and the
 * CPU count. */
static int add_fw_cfg(struct vm *vm)
{
	struct fw_cfg *f = fw_cfg_create(&vm->mem);
	int ret;

	if ((ret = vm_add_device(vm, fw_cfg_device(f), "fw_cfg")) ||
	    (ret = vm_map_device(vm, &vm->mmio, ARM64_FW_CFG_BASE, FW_CFG_MMIO_LEN, &fw_cfg_mmio_ops,
				 f, "fw-cfg")))
		return ret;
	ret = fw_cfg_add_u64(f, FW_CFG_RAM_SIZE, guest_mem_size(&vm->mem));
	if (!ret)
		ret = fw_cfg_add_u16(f, FW_CFG_NB_CPUS, (uint16_t)vm->cfg->nr_cpus);
	if (!ret)
		ret = fw_cfg_add_u16(f, FW_CFG_MAX_CPUS, (uint16_t)vm->cfg->nr_cpus);
	if (ret) {
		log_error("fw-cfg: cannot add the platform's items: %s", strerror(-ret));
		return ret;
	}
	platform(vm)->fw_cfg = true;
	return 0;
}

/* The last page of RAM (arch/arm64/layout.h). */
static uint64_t vmgenid_page(const struct vm *vm)
{
	return ARM64_RAM_BASE + (vm->cfg->memory_mib << 20) - ARM64_VMGENID_PAGE;
}

/* The UART, fw_cfg, and for a kernel the PL061 with its buttons and the VMGenID. Each goes on
 * the VM's device list as soon as it exists, so vm_destroy() frees whatever was created when a
 * later step fails. */
int arch_devices_init(struct vm *vm)
{
	struct arm64_platform *p = platform(vm);
	struct serial_8250 *uart;
	int ret;

	vm_irq_line_init(vm, &p->uart_irq, ARM64_UART_SPI);
	uart = serial_8250_create(&p->uart_irq, vm->console_out_fd);
	if ((ret = vm_add_device(vm, serial_8250_device(uart), "the UART")) ||
	    (ret = vm_map_device(vm, &vm->mmio, ARM64_UART_BASE, 8, &serial_8250_ops, uart,
				 "uart")))
		return ret;
	vm->console = (struct console_input){.receive = uart_receive, .ctx = uart};
	p->uart_tx = (struct coalesced_zone){.c = &vm->coalesced, .addr = ARM64_UART_BASE, .size = 1};
	serial_8250_batch_tx(uart, coalesced_zone_set, &p->uart_tx);
	ret = add_fw_cfg(vm);
	if (ret || !vm->cfg->kernel_path)
		return ret;
	vm_irq_line_init(vm, &p->gpio_irq, ARM64_GPIO_SPI);
	p->gpio = pl061_create(&p->gpio_irq);
	if ((ret = vm_add_device(vm, pl061_device(p->gpio), "the GPIO controller")) ||
	    (ret = vm_map_device(vm, &vm->mmio, ARM64_GPIO_BASE, PL061_SIZE, &pl061_ops, p->gpio,
				 "pl061")))
		return ret;

	vm_irq_line_init(vm, &p->vmgenid_irq, ARM64_VMGENID_SPI);
	p->vmgenid = vmgenid_create(&vm->mem, vmgenid_page(vm), &p->vmgenid_irq, !vm->restoring);
	if (!p->vmgenid)
		return log_set_error(-EIO, "cannot create the VMGenID device");
	return vm_add_device(vm, vmgenid_device(p->vmgenid), "the VMGenID");
}

/* The devices themselves are on the VM's device list, which vm_destroy() destroyed already. */
void arch_vm_destroy(struct vm *vm)
{
	struct arm64_platform *p = platform(vm);

	if (!p)
		return;
	pthread_mutex_destroy(&p->keys_lock);
	arm64_gic_destroy(&p->gic);
	free(p->mpidr);
	free(p->cntvct);
	free(p);
	vm->arch = NULL;
}

int arch_virtio_mmio_slot(int index, uint64_t *base, uint32_t *gsi)
{
	if (index < 0 || index >= ARM64_VIRTIO_MMIO_MAX ||
	    ARM64_VIRTIO_SPI_BASE + index >= ARM64_GIC_NR_IRQS - 32)
		return -ENOSPC;
	*base = ARM64_VIRTIO_MMIO_START + (uint64_t)index * ARM64_VIRTIO_MMIO_STRIDE;
	*gsi = ARM64_VIRTIO_SPI_BASE + (uint32_t)index;
	return 0;
}

/* A "GSI" on arm64 is an SPI number, as KVM_IRQFD's default routing numbers them. */
uint32_t arch_kvm_irq_line(uint32_t gsi)
{
	return (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | ((gsi + 32) & 0xffff);
}

/* guests/embedded.S: the demo guest built for this architecture. */
extern const uint8_t demo_guest[], demo_guest_end[];

void arch_demo_guest(const void **image, size_t *size)
{
	*image = demo_guest;
	*size = (size_t)(demo_guest_end - demo_guest);
}

static int load_kernel(struct vm *vm)
{
	struct arm64_platform *p = platform(vm);
	const struct vm_config *cfg = vm->cfg;
	size_t max = (size_t)(cfg->memory_mib << 20);
	struct arm64_blob kernel = {.fd = -1}, initrd = {.fd = -1};
	int ret;

	if (vm_config_kernel_cmdline(cfg, p->cmdline, sizeof(p->cmdline))) {
		log_error("the kernel command line is too long");
		return -E2BIG;
	}
	/* Read straight into guest RAM: a 30 MiB Image is not copied twice, nor held in a
	 * buffer that peak RSS would count. */
	ret = arm64_open_file("kernel", cfg->kernel_path, max, &kernel);
	if (!ret && cfg->initrd_path)
		ret = arm64_open_file("initrd", cfg->initrd_path, max, &initrd);
	if (!ret)
		ret = arm64_load_blobs(&vm->mem, ARM64_RAM_BASE, &kernel, &initrd, &p->boot);
	arm64_close_file(&kernel);
	arm64_close_file(&initrd);
	if (ret == 0 && p->boot.raw) {
		/* Not Linux: the user's command line alone, none of skiff's additions. */
		snprintf(p->cmdline, sizeof(p->cmdline), "%s", cfg->cmdline ? cfg->cmdline : "");
		log_info("%s has no arm64 Image header: loaded as a raw image at 0x%llx with the "
			 "whole platform, entered at its first byte with x0 = the device tree",
			 cfg->kernel_path, (unsigned long long)p->boot.kernel_start);
	}
	if (ret == 0)
		log_info("loaded %s as %s at 0x%llx; command line: %s", cfg->kernel_path,
			 p->boot.format, (unsigned long long)p->boot.kernel_start, p->cmdline);
	return ret;
}

int arch_load_guest(struct vm *vm)
{
	struct arm64_platform *p = platform(vm);
	const struct vm_config *cfg = vm->cfg;

	if (cfg->kernel_path)
		return load_kernel(vm);
	if (!cfg->raw_path)
		return arm64_load_raw(&vm->mem, ARM64_RAM_BASE, cfg->raw_image, cfg->raw_size,
				      &p->boot);
	return arm64_load_raw_file(&vm->mem, ARM64_RAM_BASE, cfg->raw_path,
				   (size_t)(cfg->memory_mib << 20), &p->boot);
}

#define CORE_REG(name)                                                                             \
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |                                     \
	 (offsetof(struct kvm_regs, name) / sizeof(uint32_t)))
#define MPIDR_EL1 ARM64_SYS_REG(3, 0, 0, 0, 5)

static int set_reg(struct vcpu *vcpu, uint64_t id, uint64_t val, const char *name)
{
	struct kvm_one_reg reg = {.id = id, .addr = (uint64_t)(uintptr_t)&val};

	if (ioctl(vcpu->fd, KVM_SET_ONE_REG, &reg) < 0) {
		int err = errno;

		log_error("vCPU %d: cannot set %s: %s", vcpu->id, name, strerror(err));
		return -err;
	}
	return 0;
}

static int get_reg(struct vcpu *vcpu, uint64_t id, uint64_t *val)
{
	struct kvm_one_reg reg = {.id = id, .addr = (uint64_t)(uintptr_t)val};

	return ioctl(vcpu->fd, KVM_GET_ONE_REG, &reg) < 0 ? -errno : 0;
}

/* booting.rst: x0 = the device tree's address, x1..x3 = 0, EL1h with D, A, I and F masked, MMU
 * and caches off (KVM's reset state). */
static int set_boot_regs(struct vm *vm, struct vcpu *vcpu)
{
	struct arm64_platform *p = platform(vm);
	const uint64_t pstate = PSR_MODE_EL1h | PSR_D_BIT | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT;
	int ret = set_reg(vcpu, CORE_REG(regs.pstate), pstate, "PSTATE");

	for (int i = 0; i < 4 && !ret; i++)
		ret = set_reg(vcpu, CORE_REG(regs.regs[i]), i == 0 ? p->boot.fdt_addr : 0, "x0-x3");
	if (!ret)
		ret = set_reg(vcpu, CORE_REG(regs.pc), p->boot.entry, "PC");
	return ret;
}

int arch_vcpu_init(struct vm *vm, struct vcpu *vcpu)
{
	struct arm64_platform *p = platform(vm);
	struct kvm_vcpu_init init = p->target;
	int ret;

	memset(init.features, 0, sizeof(init.features));
	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	/* The secondaries wait, powered off, for the guest's PSCI CPU_ON (handled by KVM). */
	if (vcpu->id != 0)
		init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
	if (p->pmu)
		init.features[0] |= 1u << KVM_ARM_VCPU_PMU_V3;
	if (ioctl(vcpu->fd, KVM_ARM_VCPU_INIT, &init) < 0) {
		ret = -errno;
		log_error("vCPU %d: KVM_ARM_VCPU_INIT (target %u) failed: %s", vcpu->id,
			  init.target, strerror(errno));
		return ret;
	}
	ret = get_reg(vcpu, MPIDR_EL1, &p->mpidr[vcpu->id]);
	if (ret) {
		log_error("vCPU %d: cannot read MPIDR_EL1: %s", vcpu->id, strerror(-ret));
		return ret;
	}
	/* A restored VM's vCPUs get their registers from the snapshot. */
	return vcpu->id == 0 && !vm->restoring ? set_boot_regs(vm, vcpu) : 0;
}

/* The PMU's overflow interrupt, a PPI; KVM takes it only once the vGIC is initialized. */
static int pmu_init(struct vcpu *vcpu)
{
	int irq = 16 + ARM64_PMU_PPI;
	struct kvm_device_attr set_irq = {.group = KVM_ARM_VCPU_PMU_V3_CTRL,
					  .attr = KVM_ARM_VCPU_PMU_V3_IRQ,
					  .addr = (uint64_t)(uintptr_t)&irq};
	struct kvm_device_attr init = {.group = KVM_ARM_VCPU_PMU_V3_CTRL,
				       .attr = KVM_ARM_VCPU_PMU_V3_INIT};

	if (ioctl(vcpu->fd, KVM_SET_DEVICE_ATTR, &set_irq) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_DEVICE_ATTR, &init) < 0) {
		int err = errno;

		log_error("vCPU %d: cannot set up the PMU: %s", vcpu->id, strerror(err));
		return -err;
	}
	return 0;
}

static int write_fdt(struct vm *vm)
{
	struct arm64_platform *p = platform(vm);
	struct arm64_fdt_virtio virtio[VM_MAX_VIRTIO];
	struct arm64_fdt_config c = {
	    .ram_base = ARM64_RAM_BASE,
	    .ram_size = vm->cfg->memory_mib << 20,
	    .nr_cpus = vm->nr_vcpus,
	    .mpidr = p->mpidr,
	    .gic = p->gic.version,
	    .pmu = p->pmu,
	    .uart_base = ARM64_UART_BASE,
	    .uart_spi = ARM64_UART_SPI,
	    .gpio_base = p->gpio ? ARM64_GPIO_BASE : 0,
	    .gpio_spi = ARM64_GPIO_SPI,
	    .fw_cfg_base = p->fw_cfg ? ARM64_FW_CFG_BASE : 0,
	    .virtio = virtio,
	    .bootargs = p->cmdline,
	    .initrd_start = p->boot.initrd_start,
	    .initrd_end = p->boot.initrd_end,
	};
	struct arm64_fdt_pci pci;
	struct arch_pci_windows win;
	struct vm_device *dev;
	size_t blob_size = ARM64_FDT_MAX_SIZE;
	void *blob;
	int len;

	if (p->gic.its_fd >= 0 && arch_pci_windows(vm->cfg, &win) == 0) {
		pci = (struct arm64_fdt_pci){
		    .ecam_base = win.ecam_base,
		    .bus_end = (uint32_t)(win.ecam_size >> 20) - 1,
		    .mmio_base = win.mmio_base,
		    .mmio_size = win.mmio_size,
		};
		c.its_base = ARM64_GIC_ITS_BASE;
		c.pci = &pci;
	}
	/* The virtio-mmio devices get a node each; those on PCI are found by enumeration. */
	vm_devices_for_each(&vm->devices, dev)
		if (dev->virtio_mmio && c.nr_virtio < VM_MAX_VIRTIO)
			virtio[c.nr_virtio++] =
			    (struct arm64_fdt_virtio){.base = dev->mmio_base, .spi = dev->gsi};
	/* The DTB ends below the VMGenID's page, the last of RAM. */
	if (p->vmgenid) {
		c.vmgenid_base = vmgenid_addr(p->vmgenid);
		c.vmgenid_spi = ARM64_VMGENID_SPI;
		if (c.vmgenid_base > p->boot.fdt_addr &&
		    c.vmgenid_base - p->boot.fdt_addr < blob_size)
			blob_size = (size_t)(c.vmgenid_base - p->boot.fdt_addr);
	}
	blob = guest_mem_ptr(&vm->mem, p->boot.fdt_addr, blob_size);
	if (!blob) {
		log_error("no guest RAM for the device tree at 0x%llx",
			  (unsigned long long)p->boot.fdt_addr);
		return -EFAULT;
	}
	len = arm64_fdt_build(&c, blob, blob_size);
	if (len < 0) {
		log_error("cannot build the device tree: %s", strerror(-len));
		return len;
	}
	log_debug("device tree: %d bytes at 0x%llx", len, (unsigned long long)p->boot.fdt_addr);
	return 0;
}

int arch_vm_finalize(struct vm *vm)
{
	struct arm64_platform *p = platform(vm);
	int ret;

	if (!p->has_gic)
		return 0;
	ret = arm64_gic_finalize(&p->gic);
	for (int i = 0; i < vm->nr_vcpus && !ret && p->pmu; i++)
		ret = pmu_init(&vm->vcpus[i]);
	/* A restored VM's device tree is in its memory already, where its kernel read it. */
	if (!ret && vm->cfg->kernel_path && !vm->restoring)
		ret = write_fdt(vm);
	return ret;
}

void arch_vcpu_describe(struct vcpu *vcpu, char *buf, size_t len)
{
	uint64_t pc, pstate, sp, esr_el1 = 0;

	if (get_reg(vcpu, CORE_REG(regs.pc), &pc) ||
	    get_reg(vcpu, CORE_REG(regs.pstate), &pstate) || get_reg(vcpu, CORE_REG(sp_el1), &sp)) {
		snprintf(buf, len, "registers unavailable");
		return;
	}
	get_reg(vcpu, ARM64_SYS_REG(3, 0, 5, 2, 0), &esr_el1);
	snprintf(buf, len, "PC=0x%llx PSTATE=0x%llx SP_EL1=0x%llx ESR_EL1=0x%llx",
		 (unsigned long long)pc, (unsigned long long)pstate, (unsigned long long)sp,
		 (unsigned long long)esr_el1);
}

/* The guest's virtual counter (CNTVCT_EL0), which its clocksource and timers read. KVM takes a
 * write as a new counter offset, so writing back the value read at the pause takes the paused
 * time out. */
int arch_vm_clock_save(struct vm *vm)
{
	struct arm64_platform *p = platform(vm);

	for (int i = 0; i < vm->nr_vcpus; i++) {
		int ret = get_reg(&vm->vcpus[i], KVM_REG_ARM_TIMER_CNT, &p->cntvct[i]);

		if (ret) {
			log_warn("vCPU %d: cannot read the virtual counter at the pause: %s", i,
				 strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int arch_vm_clock_restore(struct vm *vm)
{
	struct arm64_platform *p = platform(vm);

	for (int i = 0; i < vm->nr_vcpus; i++) {
		int ret = set_reg(&vm->vcpus[i], KVM_REG_ARM_TIMER_CNT, p->cntvct[i],
				  "the virtual counter");

		if (ret)
			return ret;
	}
	return 0;
}

/* Linux's gpio-keys reads a button's line in a work item some milliseconds (its debounce
 * interval, 5 ms by default) after the edge interrupt: each key is held long enough for that
 * read to see it, and the next one is pressed only after, so that the keyboard handler sees
 * Ctrl and Alt down before Delete. */
#define KEY_STEP_MS 60

static void key_step(struct pl061 *gpio, unsigned line, bool down)
{
	struct timespec ts = {.tv_nsec = KEY_STEP_MS * 1000000L};

	pl061_set_input(gpio, line, down);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int arch_vm_state_save(struct vm *vm, struct state_writer *w)
{
	struct arm64_platform *p = platform(vm);

	return arm64_vm_state_save(p->has_gic ? &p->gic : NULL, p->mpidr, vm->nr_vcpus, w);
}

int arch_vm_state_restore(struct vm *vm, struct state_reader *r)
{
	struct arm64_platform *p = platform(vm);

	return arm64_vm_state_restore(p->has_gic ? &p->gic : NULL, p->mpidr, vm->nr_vcpus,
				      vm->clock_realtime, &p->counter_delta, r);
}

int arch_vcpu_state_save(struct vm *vm, struct vcpu *vcpu, struct state_writer *w)
{
	return arm64_vcpu_state_save(vm->fd, vcpu->fd, vcpu->id, w);
}

int arch_vcpu_state_restore(struct vm *vm, struct vcpu *vcpu, struct state_reader *r)
{
	return arm64_vcpu_state_restore(vm->fd, vcpu->fd, vcpu->id, platform(vm)->counter_delta,
					r);
}

/* Presses Ctrl, Alt and Delete in turn on the gpio-keys buttons and releases them: about
 * 6 * KEY_STEP_MS on the calling thread. */
int arch_send_ctrl_alt_del(struct vm *vm)
{
	static const unsigned lines[] = {ARM64_GPIO_LINE_CTRL, ARM64_GPIO_LINE_ALT,
					 ARM64_GPIO_LINE_DELETE};
	struct arm64_platform *p = platform(vm);

	if (!p || !p->gpio)
		return log_set_error(-ENODEV, "the VM has no keyboard buttons (a bare-metal guest)");
	pthread_mutex_lock(&p->keys_lock);
	for (int i = 0; i < 3; i++)
		key_step(p->gpio, lines[i], true);
	for (int i = 2; i >= 0; i--)
		key_step(p->gpio, lines[i], false);
	pthread_mutex_unlock(&p->keys_lock);
	return 0;
}

uint64_t arch_boot_timer_base(void)
{
	return ARM64_BOOT_TIMER_BASE;
}
