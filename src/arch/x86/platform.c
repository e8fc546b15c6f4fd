/* The x86_64 platform: the arch interface (arch/arch.h) for PC-like microVMs. A VM that boots a
 * kernel gets the in-kernel PIC, IOAPIC, LAPICs and PIT, ACPI tables, COM1, an i8042 and a CMOS
 * RTC; a bare-metal (--raw) guest gets the same legacy devices but no interrupt controller, so
 * that its final `hlt` ends the VM. */
#include "arch/arch.h"
#include "arch/x86/acpi.h"
#include "arch/x86/boot.h"
#include "arch/x86/clock.h"
#include "arch/x86/cpu_state.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/firmware.h"
#include "arch/x86/fw_cfg_items.h"
#include "arch/x86/fw_cfg_linux.h"
#include "arch/x86/layout.h"
#include "arch/x86/msr.h"
#include "devices/acpi_pm.h"
#include "devices/debug_exit.h"
#include "devices/fw_cfg.h"
#include "devices/i8042.h"
#include "devices/rtc_cmos.h"
#include "devices/serial_8250.h"
#include "devices/vmgenid.h"
#include "base/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct x86_platform {
	struct i8042 *i8042; /* for Ctrl-Alt-Del; the VM's device list owns it */
	struct fw_cfg *fw_cfg; /* the VM's device list owns it */
	struct rtc_cmos *rtc;  /* the VM's device list owns it */
	struct vmgenid *vmgenid; /* Linux guests without --firmware; the device list owns it */
	struct irq_line vmgenid_irq;
	struct x86_firmware firmware; /* --firmware */
	struct irq_line com1_irq;
	struct coalesced_zone com1_tx; /* COM1's THR, batched while the guest polls (vmm/coalesced.h) */
	struct irq_line kbd_irq;
	struct x86_boot_info boot;
	struct x86_cpuid supported_cpuid;
	struct x86_clock_state clock; /* saved at a pause */
};

static struct x86_platform *platform(struct vm *vm)
{
	return vm->arch;
}

int arch_memory_layout(uint64_t bytes, struct guest_region *out, int max)
{
	uint64_t low = bytes < X86_MMIO_HOLE_START ? bytes : X86_MMIO_HOLE_START;
	int nr = 0;

	out[nr++] = (struct guest_region){.gpa = 0, .size = low};
	if (bytes > low && nr < max)
		out[nr++] = (struct guest_region){.gpa = X86_MMIO_HOLE_END, .size = bytes - low};
	return nr;
}

static const struct kvm_cap_need x86_caps[] = {
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
};

static const struct kvm_cap_need x86_irqchip_caps[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
};

static int vm_ioctl(struct vm *vm, unsigned long req, unsigned long arg, const char *what)
{
	if (ioctl(vm->fd, req, arg) < 0) {
		int err = errno;

		log_error("%s failed: %s", what, strerror(err));
		return -err;
	}
	return 0;
}

static int create_irqchip(struct vm *vm)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	int ret;

	ret = kvm_require_caps(vm->kvm.fd, x86_irqchip_caps,
			       sizeof(x86_irqchip_caps) / sizeof(x86_irqchip_caps[0]));
	if (ret)
		return ret;
	ret = vm_ioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
	if (ret)
		return ret;
	/* The dummy speaker lets the in-kernel PIT own port 0x61, which Linux reads while it
	 * calibrates the TSC. */
	ret = vm_ioctl(vm, KVM_CREATE_PIT2, (unsigned long)&pit, "KVM_CREATE_PIT2");
	if (ret)
		return ret;
	vm->has_irqchip = true;
	return 0;
}

int arch_vm_init(struct vm *vm)
{
	struct x86_platform *p;
	int ret;

	ret = kvm_require_caps(vm->kvm.fd, x86_caps, sizeof(x86_caps) / sizeof(x86_caps[0]));
	if (ret)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	vm->arch = p;
	ret = x86_clock_init(&p->clock, vm->cfg->nr_cpus);
	if (ret)
		return ret;
	ret = x86_cpuid_get_supported(vm->kvm.fd, &p->supported_cpuid);
	if (ret)
		return ret;

	/* Intel without unrestricted guest needs these pages for real mode; they sit in the MMIO
	 * hole where no RAM or device is. */
	ret = vm_ioctl(vm, KVM_SET_TSS_ADDR, (unsigned long)X86_TSS_ADDR, "KVM_SET_TSS_ADDR");
	if (ret)
		return ret;
	if (kvm_check_cap(vm->kvm.fd, KVM_CAP_SET_IDENTITY_MAP_ADDR)) {
		uint64_t addr = X86_IDENTITY_MAP_ADDR;

		ret = vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, (unsigned long)&addr,
			       "KVM_SET_IDENTITY_MAP_ADDR");
		if (ret)
			return ret;
	}
	if (vm->cfg->kernel_path || vm->cfg->firmware_path)
		return create_irqchip(vm);
	return 0;
}

/* Port 0x80 is the POST-code port that Linux writes to for I/O delays: accept and ignore. */
static void sink_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	memset(data, 0xff, len);
}

static void sink_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
}

static const struct bus_device_ops post_port_ops = {.read = sink_read, .write = sink_write};

static size_t com1_receive(void *ctx, const uint8_t *buf, size_t len)
{
	return serial_8250_receive(ctx, buf, len);
}

/* The legacy PC devices on the port bus. Each goes on the VM's device list as soon as it exists,
 * so vm_destroy() frees whatever was created when a later step fails. */
int arch_devices_init(struct vm *vm)
{
	struct x86_platform *p = platform(vm);
	struct serial_8250 *com1;
	struct rtc_cmos *rtc;
	struct acpi_pm *pm;
	struct fw_cfg *fw_cfg;
	struct bus *pio = &vm->pio;
	int ret;

	vm_irq_line_init(vm, &p->com1_irq, X86_COM1_IRQ);
	vm_irq_line_init(vm, &p->kbd_irq, X86_I8042_KBD_IRQ);
	com1 = serial_8250_create(&p->com1_irq, vm->console_out_fd);
	if ((ret = vm_add_device(vm, serial_8250_device(com1), "COM1")) ||
	    (ret = vm_map_device(vm, pio, X86_COM1_PORT, 8, &serial_8250_ops, com1, "COM1")))
		return ret;
	vm->console = (struct console_input){.receive = com1_receive, .ctx = com1};
	p->com1_tx = (struct coalesced_zone){.c = &vm->coalesced, .addr = X86_COM1_PORT, .size = 1,
					     .pio = true};
	serial_8250_batch_tx(com1, coalesced_zone_set, &p->com1_tx);

	p->i8042 = i8042_create(&p->kbd_irq, &vm->power);
	if ((ret = vm_add_device(vm, i8042_device(p->i8042), "the i8042")) ||
	    (ret = vm_map_device(vm, pio, X86_I8042_DATA_PORT, 1, &i8042_data_ops, p->i8042,
				 "i8042")) ||
	    (ret = vm_map_device(vm, pio, X86_I8042_CMD_PORT, 1, &i8042_cmd_ops, p->i8042,
				 "i8042")))
		return ret;

	rtc = rtc_cmos_create();
	if ((ret = vm_add_device(vm, rtc_cmos_device(rtc), "the CMOS RTC")) ||
	    (ret = vm_map_device(vm, pio, X86_RTC_PORT, 2, &rtc_cmos_ops, rtc, "rtc")))
		return ret;
	p->rtc = rtc;

	pm = acpi_pm_create(&vm->power);
	if ((ret = vm_add_device(vm, acpi_pm_device(pm), "the ACPI PM device")) ||
	    (ret = vm_map_device(vm, pio, X86_ACPI_PM_PORT, X86_ACPI_PM_LEN, &acpi_pm_ops, pm,
				 "acpi-pm")))
		return ret;
	if (vm->cfg->debug_exit) {
		struct debug_exit *de = debug_exit_create(&vm->power);

		if ((ret = vm_add_device(vm, debug_exit_device(de), "the debug-exit device")) ||
		    (ret = vm_map_device(vm, pio, X86_DEBUG_EXIT_PORT, X86_DEBUG_EXIT_LEN,
					 &debug_exit_ops, de, "debug-exit")))
			return ret;
	}

	/* fw_cfg on every VM, as on QEMU's microvm: firmware needs it, and test kernels
	 * (kvm-unit-tests) read the CPU count and RAM size from it. */
	fw_cfg = fw_cfg_create(&vm->mem);
	if ((ret = vm_add_device(vm, fw_cfg_device(fw_cfg), "fw_cfg")) ||
	    (ret = vm_map_device(vm, pio, FW_CFG_PIO_BASE, FW_CFG_PIO_LEN, &fw_cfg_pio_ops, fw_cfg,
				 "fw-cfg")) ||
	    (ret = x86_fw_cfg_add_platform(fw_cfg, &vm->mem, vm->cfg->nr_cpus)))
		return ret;
	p->fw_cfg = fw_cfg;

	/* The VMGenID lives in the page skiff reserves below 1 MiB and is described by skiff's
	 * own ACPI tables: a kernel booted directly. (--firmware's BIOS owns that range and
	 * writes the tables itself.) */
	if (vm->cfg->kernel_path && !vm->cfg->firmware_path) {
		vm_irq_line_init(vm, &p->vmgenid_irq, X86_VMGENID_GSI);
		p->vmgenid = vmgenid_create(&vm->mem, X86_VMGENID_ADDR, &p->vmgenid_irq,
					    !vm->restoring);
		if (!p->vmgenid)
			return log_set_error(-EIO, "cannot create the VMGenID device");
		if ((ret = vm_add_device(vm, vmgenid_device(p->vmgenid), "the VMGenID")))
			return ret;
	}
	return vm_map_device(vm, pio, 0x80, 1, &post_port_ops, NULL, "post");
}

/* The devices themselves are on the VM's device list, which vm_destroy() destroyed already. */
void arch_vm_destroy(struct vm *vm)
{
	struct x86_platform *p = platform(vm);

	if (!p)
		return;
	x86_clock_destroy(&p->clock);
	x86_firmware_unload(&p->firmware);
	free(p);
	vm->arch = NULL;
}

/* ISA IRQs the platform does not use (0 timer, 1 keyboard, 2 cascade, 4 COM1, 8 RTC, 9 the
 * VMGenID's GED (the PC's SCI), 12 mouse) and the IOAPIC's PCI-range pins: each virtio-mmio
 * device gets its own, edge triggered as the DSDT says. */
static const uint8_t virtio_gsis[] = {5, 6, 7, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};

int arch_virtio_mmio_slot(int index, uint64_t *base, uint32_t *gsi)
{
	if (index < 0 || index >= (int)sizeof(virtio_gsis) || index >= ACPI_MAX_VIRTIO_MMIO)
		return -ENOSPC;
	*base = X86_VIRTIO_MMIO_START + (uint64_t)index * X86_VIRTIO_MMIO_STRIDE;
	*gsi = virtio_gsis[index];
	return 0;
}

uint32_t arch_kvm_irq_line(uint32_t gsi)
{
	return gsi;
}

/* guests/embedded.S: the demo guest built for this architecture. */
extern const uint8_t demo_guest[], demo_guest_end[];

void arch_demo_guest(const void **image, size_t *size)
{
	*image = demo_guest;
	*size = (size_t)(demo_guest_end - demo_guest);
}

int arch_validate_config(const struct vm_config *cfg)
{
	if (cfg->irqchip != IRQCHIP_AUTO)
		return log_set_error(-EINVAL, "--irqchip %s is for arm64 guests; on x86_64 skiff "
				     "always uses KVM's in-kernel PIC, IOAPIC and local APICs "
				     "(--irqchip auto)",
				     cfg->irqchip == IRQCHIP_GICV3 ? "gicv3" : "gicv2");
	if (cfg->firmware_path)
		return x86_firmware_check(cfg->firmware_path);
	return 0;
}

int arch_vm_finalize(struct vm *vm)
{
	return 0;
}

/* Linux on a hardware-reduced ACPI platform reboots through EFI, then by jumping to the BIOS
 * reset vector at F000:FFF0 in real mode (arch/x86/kernel/reboot.c: BOOT_EFI, then BOOT_BIOS);
 * it never tries the FADT's reset register. skiff has no BIOS, so it puts there what a BIOS
 * reset would amount to: a write of the reset value to the ACPI reset register. */
static int install_reset_vector(struct vm *vm)
{
	static const uint8_t stub[] = {
		0xba, X86_ACPI_RESET_PORT & 0xff, X86_ACPI_RESET_PORT >> 8, /* mov dx, port */
		0xb0, X86_ACPI_RESET_VALUE,				    /* mov al, value */
		0xee,							    /* out dx, al */
		0xf4,							    /* hlt */
		0xeb, 0xfd,						    /* jmp hlt */
	};
	_Static_assert(sizeof(stub) <= 0x100000 - X86_RESET_VECTOR_ADDR, "reset stub too long");

	if (guest_mem_write(&vm->mem, X86_RESET_VECTOR_ADDR, stub, sizeof(stub))) {
		log_error("guest memory too small for the reset vector");
		return -EFAULT;
	}
	return 0;
}

/* What the ACPI tables describe of `vm`: fills `acpi`, `virtio`, `pci` and `vmgenid`. */
static void describe_for_acpi(struct vm *vm, struct acpi_config *acpi,
			      struct acpi_virtio_mmio_dev virtio[VM_MAX_VIRTIO],
			      struct acpi_pci *pci, struct acpi_vmgenid *vmgenid)
{
	struct x86_platform *p = platform(vm);
	struct vm_device *dev;
	struct arch_pci_windows w;

	*acpi = (struct acpi_config){.nr_cpus = vm->cfg->nr_cpus, .virtio = virtio};
	vm_devices_for_each(&vm->devices, dev)
		if (dev->virtio_mmio && acpi->nr_virtio < VM_MAX_VIRTIO)
			virtio[acpi->nr_virtio++] = (struct acpi_virtio_mmio_dev){
			    .base = dev->mmio_base, .size = X86_VIRTIO_MMIO_STRIDE, .gsi = dev->gsi};
	if (vm->pci && arch_pci_windows(vm->cfg, &w) == 0) {
		*pci = (struct acpi_pci){.ecam_base = w.ecam_base, .ecam_size = w.ecam_size,
					 .mmio_base = w.mmio_base, .mmio_size = w.mmio_size,
					 .cf8 = w.cf8};
		acpi->pci = pci;
	}
	if (p->vmgenid) {
		*vmgenid = (struct acpi_vmgenid){.addr = vmgenid_addr(p->vmgenid),
						 .gsi = X86_VMGENID_GSI};
		acpi->vmgenid = vmgenid;
	}
}

/* CMOS bytes a PC BIOS reads for the memory size and CPU count (fw_cfg's etc/e820 and NB_CPUS
 * say the same; older SeaBIOS and other BIOSes read these): 0x30/0x31 KiB above 1 MiB (up to
 * 64 MiB), 0x34/0x35 64 KiB units above 16 MiB (below 4 GiB), 0x5b-0x5d 64 KiB units above
 * 4 GiB, 0x5f the CPU count - 1. */
static void set_cmos_memory(struct rtc_cmos *rtc, const struct guest_mem *mem, int nr_cpus)
{
	uint64_t low = 0, high = 0, ext, ext16;

	for (int i = 0; i < mem->nr_regions; i++) {
		if (mem->regions[i].gpa < X86_MMIO_HOLE_END)
			low = mem->regions[i].gpa + mem->regions[i].size;
		else
			high += mem->regions[i].size;
	}
	ext = low > (1ULL << 20) ? (low - (1ULL << 20)) >> 10 : 0;
	ext = ext > 0xfc00 ? 0xfc00 : ext;
	ext16 = low > (16ULL << 20) ? (low - (16ULL << 20)) >> 16 : 0;
	ext16 = ext16 > 0xffff ? 0xffff : ext16;
	high >>= 16;
	rtc_cmos_set_ram(rtc, 0x30, (uint8_t)ext);
	rtc_cmos_set_ram(rtc, 0x31, (uint8_t)(ext >> 8));
	rtc_cmos_set_ram(rtc, 0x34, (uint8_t)ext16);
	rtc_cmos_set_ram(rtc, 0x35, (uint8_t)(ext16 >> 8));
	rtc_cmos_set_ram(rtc, 0x5b, (uint8_t)high);
	rtc_cmos_set_ram(rtc, 0x5c, (uint8_t)(high >> 8));
	rtc_cmos_set_ram(rtc, 0x5d, (uint8_t)(high >> 16));
	rtc_cmos_set_ram(rtc, 0x5f, (uint8_t)(nr_cpus - 1));
}

/* --firmware: the image at the top of 4 GiB and below 1 MiB, and what it reads of the machine:
 * fw_cfg (the ACPI tables through the table loader) and the CMOS. */
static int load_firmware(struct vm *vm)
{
	struct x86_platform *p = platform(vm);
	struct acpi_virtio_mmio_dev virtio[VM_MAX_VIRTIO];
	struct acpi_config acpi;
	struct acpi_pci pci;
	struct acpi_vmgenid vmgenid;
	int ret;

	ret = x86_firmware_load(&p->firmware, vm->kvm.fd, vm->fd, GUEST_MEM_MAX_REGIONS, &vm->mem,
				vm->cfg->firmware_path);
	if (ret)
		return ret;
	describe_for_acpi(vm, &acpi, virtio, &pci, &vmgenid);
	ret = x86_fw_cfg_add_firmware(p->fw_cfg, &acpi);
	if (ret)
		return ret;
	if (vm->cfg->kernel_path) {
		char cmdline[VM_CONFIG_MAX_CMDLINE];
		struct x86_fw_cfg_linux k = {
		    .kernel_path = vm->cfg->kernel_path,
		    .initrd_path = vm->cfg->initrd_path,
		    .cmdline = cmdline,
		    .low_ram_end = vm->mem.regions[0].gpa + vm->mem.regions[0].size,
		    .rom_path = X86_LINUXBOOT_ROM,
		};

		if (vm_config_kernel_cmdline(vm->cfg, cmdline, sizeof(cmdline))) {
			log_error("the kernel command line is too long");
			return -E2BIG;
		}
		ret = x86_fw_cfg_add_linux(p->fw_cfg, &k);
		if (ret)
			return ret;
		log_info("kernel %s handed to the firmware through fw_cfg; command line: %s",
			 vm->cfg->kernel_path, cmdline);
	}
	set_cmos_memory(p->rtc, &vm->mem, vm->cfg->nr_cpus);
	log_info("firmware %s: %zu KiB at 0x%llx, started at the reset vector",
		 vm->cfg->firmware_path, p->firmware.size >> 10,
		 (unsigned long long)((1ULL << 32) - p->firmware.size));
	return 0;
}

int arch_load_guest(struct vm *vm)
{
	struct x86_platform *p = platform(vm);
	const struct vm_config *cfg = vm->cfg;
	char cmdline[VM_CONFIG_MAX_CMDLINE];
	struct x86_kernel_args args;
	struct acpi_virtio_mmio_dev virtio[VM_MAX_VIRTIO];
	struct acpi_config acpi;
	struct acpi_pci pci;
	struct acpi_vmgenid vmgenid;
	uint64_t rsdp = 0;
	int ret;

	if (cfg->firmware_path)
		return load_firmware(vm);
	if (cfg->raw_path)
		return x86_load_raw_file(&vm->mem, cfg->raw_path, &p->boot);
	if (!cfg->kernel_path)
		return x86_load_raw(&vm->mem, cfg->raw_image, cfg->raw_size, &p->boot);

	describe_for_acpi(vm, &acpi, virtio, &pci, &vmgenid);
	ret = acpi_build_tables(&vm->mem, &acpi, &rsdp);
	if (ret)
		return ret;
	ret = install_reset_vector(vm);
	if (ret)
		return ret;
	if (vm_config_kernel_cmdline(cfg, cmdline, sizeof(cmdline))) {
		log_error("the kernel command line is too long");
		return -E2BIG;
	}
	args = (struct x86_kernel_args){
	    .kernel_path = cfg->kernel_path,
	    .initrd_path = cfg->initrd_path,
	    .cmdline = cmdline,
	    .user_cmdline = cfg->cmdline,
	    .rsdp_addr = rsdp,
	    .protocol = cfg->boot_protocol == BOOT_PROTOCOL_PVH	      ? X86_BOOT_PVH
			: cfg->boot_protocol == BOOT_PROTOCOL_LINUX64 ? X86_BOOT_LINUX64
								      : X86_BOOT_AUTO,
	};
	ret = x86_load_kernel(&vm->mem, &args, &p->boot);
	if (ret == 0)
		log_info("loaded %s as %s; command line: %s", cfg->kernel_path, p->boot.format,
			 p->boot.cmdline ? p->boot.cmdline : "");
	return ret;
}

/* LINT0 receives the 8259 PIC's interrupts (ExtINT) and LINT1 is the NMI input, as firmware
 * leaves them on a PC. */
static int setup_lapic(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;
	uint32_t lvt;

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		goto fail;
	memcpy(&lvt, &lapic.regs[0x350], 4);
	lvt = (lvt & ~0x700u) | (7u << 8);
	memcpy(&lapic.regs[0x350], &lvt, 4);
	memcpy(&lvt, &lapic.regs[0x360], 4);
	lvt = (lvt & ~0x700u) | (4u << 8);
	memcpy(&lapic.regs[0x360], &lvt, 4);
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
		goto fail;
	return 0;
fail:
	log_error("vCPU %d: cannot set up the local APIC: %s", vcpu->id, strerror(errno));
	return -errno;
}

int arch_vcpu_init(struct vm *vm, struct vcpu *vcpu)
{
	struct x86_platform *p = platform(vm);
	struct x86_cpuid cpuid = p->supported_cpuid;
	int ret;

	x86_cpuid_fixup(&cpuid, vcpu->id, vm->cfg->nr_cpus);
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, &cpuid.header) < 0) {
		ret = -errno;
		log_error("vCPU %d: KVM_SET_CPUID2 failed: %s", vcpu->id, strerror(errno));
		return ret;
	}
	ret = x86_msr_setup(vm->kvm.fd, vcpu->fd);
	if (ret)
		return ret;
	if (vm->has_irqchip && (ret = setup_lapic(vcpu)))
		return ret;
	/* The other vCPUs wait in the in-kernel LAPIC for the boot vCPU's INIT/SIPI. Firmware
	 * starts where KVM's reset state is: the reset vector. A restored VM's vCPUs get their
	 * state from the snapshot, and its memory is the guest's own. */
	if (vcpu->id == 0 && !vm->cfg->firmware_path && !vm->restoring)
		return x86_set_boot_cpu_state(vcpu->fd, &vm->mem, &p->boot);
	return 0;
}

void arch_vcpu_describe(struct vcpu *vcpu, char *buf, size_t len)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(buf, len, "registers unavailable");
		return;
	}
	snprintf(buf, len, "RIP=0x%llx RSP=0x%llx CS=0x%x CR0=0x%llx CR3=0x%llx EFER=0x%llx",
		 (unsigned long long)regs.rip, (unsigned long long)regs.rsp, sregs.cs.selector,
		 (unsigned long long)sregs.cr0, (unsigned long long)sregs.cr3,
		 (unsigned long long)sregs.efer);
}

int arch_vm_clock_save(struct vm *vm)
{
	return x86_clock_save(&platform(vm)->clock, vm->fd, vm->vcpus, vm->nr_vcpus);
}

int arch_vm_clock_restore(struct vm *vm)
{
	return x86_clock_restore(&platform(vm)->clock, vm->fd, vm->vcpus, vm->nr_vcpus);
}

int arch_vm_state_save(struct vm *vm, struct state_writer *w)
{
	return x86_vm_state_save(vm->fd, vm->has_irqchip, w);
}

int arch_vm_state_restore(struct vm *vm, struct state_reader *r)
{
	return x86_vm_state_restore(vm->fd, vm->has_irqchip, vm->clock_realtime, r);
}

int arch_vcpu_state_save(struct vm *vm, struct vcpu *vcpu, struct state_writer *w)
{
	return x86_vcpu_state_save(vm->kvm.fd, vcpu->fd, vcpu->id, vm->has_irqchip, w);
}

int arch_vcpu_state_restore(struct vm *vm, struct vcpu *vcpu, struct state_reader *r)
{
	return x86_vcpu_state_restore(vm->kvm.fd, vcpu->fd, vcpu->id, vm->has_irqchip, r);
}

/* Scancode set 1, which the guest reads while the controller translates (as Linux leaves it):
 * Ctrl, Alt and Del (an extended key: e0 53) pressed, then released in the reverse order. */
static const uint8_t ctrl_alt_del_codes[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};

int arch_send_ctrl_alt_del(struct vm *vm)
{
	struct x86_platform *p = platform(vm);
	int ret;

	if (!p || !p->i8042)
		return log_set_error(-ENODEV, "the VM has no keyboard");
	ret = i8042_inject_scancodes(p->i8042, ctrl_alt_del_codes, sizeof(ctrl_alt_del_codes));
	if (ret == -EAGAIN)
		return log_set_error(ret, "the guest has its keyboard disabled (no i8042 driver "
				     "yet?)");
	if (ret == -ENOSPC)
		return log_set_error(ret, "the keyboard's buffer is full: the guest is not reading "
				     "it");
	if (ret)
		return log_set_error(ret, "cannot press the keys: %s", strerror(-ret));
	return 0;
}

uint64_t arch_boot_timer_base(void)
{
	return X86_BOOT_TIMER_ADDR;
}
