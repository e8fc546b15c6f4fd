/* The boot vCPU's registers for each entry mode, and the GDT and identity page tables they point
 * at. The pure part (x86_build_boot_cpu_state) is separate from the ioctls so tests can check it
 * without /dev/kvm. */
#include "arch/x86/boot.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/layout.h"
#include "base/log.h"

#define CR0_PE	 (1ULL << 0)
#define CR0_MP	 (1ULL << 1)
#define CR0_ET	 (1ULL << 4)
#define CR0_NE	 (1ULL << 5)
#define CR0_WP	 (1ULL << 16)
#define CR0_AM	 (1ULL << 18)
#define CR0_PG	 (1ULL << 31)
#define CR4_PAE	 (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

#define PTE_PRESENT (1ULL << 0)
#define PTE_RW	    (1ULL << 1)
#define PTE_PS	    (1ULL << 7)

#define SEG_TYPE_DATA_RW_ACCESSED 0x3
#define SEG_TYPE_CODE_RX_ACCESSED 0xb
#define SEG_TYPE_TSS_BUSY	  0xb

#define RFLAGS_RESERVED 0x2 /* bit 1 always reads 1; IF and the rest clear */

uint64_t x86_gdt_entry_from_segment(const struct kvm_segment *seg)
{
	uint64_t limit = seg->g ? seg->limit >> 12 : seg->limit;

	return (limit & 0xffffULL) | ((uint64_t)(seg->base & 0xffffff) << 16) |
	       ((uint64_t)(seg->type & 0xf) << 40) | ((uint64_t)(seg->s & 1) << 44) |
	       ((uint64_t)(seg->dpl & 3) << 45) | ((uint64_t)(seg->present & 1) << 47) |
	       (((limit >> 16) & 0xfULL) << 48) | ((uint64_t)(seg->avl & 1) << 52) |
	       ((uint64_t)(seg->l & 1) << 53) | ((uint64_t)(seg->db & 1) << 54) |
	       ((uint64_t)(seg->g & 1) << 55) | ((uint64_t)((seg->base >> 24) & 0xff) << 56);
}

void x86_segment_from_gdt_entry(uint64_t entry, uint16_t selector, struct kvm_segment *seg)
{
	uint32_t limit = (uint32_t)((entry & 0xffff) | (((entry >> 48) & 0xf) << 16));

	memset(seg, 0, sizeof(*seg));
	seg->selector = selector;
	seg->base = ((entry >> 16) & 0xffffff) | (((entry >> 56) & 0xff) << 24);
	seg->type = (entry >> 40) & 0xf;
	seg->s = (entry >> 44) & 1;
	seg->dpl = (entry >> 45) & 3;
	seg->present = (entry >> 47) & 1;
	seg->avl = (entry >> 52) & 1;
	seg->l = (entry >> 53) & 1;
	seg->db = (entry >> 54) & 1;
	seg->g = (entry >> 55) & 1;
	seg->limit = seg->g ? (limit << 12) | 0xfff : limit;
	seg->unusable = !seg->present;
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type, bool long_code)
{
	return (struct kvm_segment){
	    .base = 0,
	    .limit = 0xffffffff,
	    .selector = selector,
	    .type = type,
	    .present = 1,
	    .dpl = 0,
	    .db = long_code ? 0 : 1, /* L=1 requires D=0 */
	    .s = 1,
	    .l = long_code,
	    .g = 1,
	};
}

/* A busy TSS at 0 with the minimal limit: nothing uses it before the kernel loads its own, but
 * VMX requires a usable TR, and PVH specifies exactly this one. */
static struct kvm_segment boot_tss(void)
{
	return (struct kvm_segment){
	    .base = 0,
	    .limit = 0x67,
	    .selector = X86_BOOT_TSS_SELECTOR,
	    .type = SEG_TYPE_TSS_BUSY,
	    .present = 1,
	    .s = 0,
	};
}

static int write_gdt(const struct guest_mem *mem, const struct kvm_segment *code,
		     const struct kvm_segment *data, const struct kvm_segment *tss)
{
	uint64_t gdt[X86_BOOT_GDT_ENTRIES] = {0};

	gdt[code->selector >> 3] = x86_gdt_entry_from_segment(code);
	gdt[data->selector >> 3] = x86_gdt_entry_from_segment(data);
	gdt[tss->selector >> 3] = x86_gdt_entry_from_segment(tss);
	/* In long mode a TSS descriptor is 16 bytes; the upper half (base 63:32) stays 0. */
	return guest_mem_write(mem, X86_GDT_ADDR, gdt, sizeof(gdt));
}

/* Identity map of the first 4 GiB with 2 MiB pages: one PML4 entry, four PDPT entries, four
 * page directories of 512 entries. The MMIO hole is mapped too; Linux builds its own tables
 * before it touches devices. */
static int write_identity_page_tables(const struct guest_mem *mem)
{
	uint64_t page[512];
	int err;

	memset(page, 0, sizeof(page));
	page[0] = X86_PDPT_ADDR | PTE_PRESENT | PTE_RW;
	err = guest_mem_write(mem, X86_PML4_ADDR, page, sizeof(page));
	if (err)
		return err;

	memset(page, 0, sizeof(page));
	for (int i = 0; i < 4; i++)
		page[i] = (X86_PD_ADDR + i * sizeof(page)) | PTE_PRESENT | PTE_RW;
	err = guest_mem_write(mem, X86_PDPT_ADDR, page, sizeof(page));
	if (err)
		return err;

	for (uint64_t pd = 0; pd < 4; pd++) {
		for (uint64_t i = 0; i < 512; i++)
			page[i] = ((pd * 512 + i) << 21) | PTE_PRESENT | PTE_RW | PTE_PS;
		err = guest_mem_write(mem, X86_PD_ADDR + pd * sizeof(page), page, sizeof(page));
		if (err)
			return err;
	}
	return 0;
}

static void set_data_segments(struct kvm_sregs *sregs, const struct kvm_segment *data)
{
	sregs->ds = *data;
	sregs->es = *data;
	sregs->fs = *data;
	sregs->gs = *data;
	sregs->ss = *data;
}

static int build_protected(const struct guest_mem *mem, const struct x86_boot_info *boot,
			   struct kvm_sregs *sregs)
{
	bool long_mode = boot->mode == X86_ENTRY_LONG64;
	struct kvm_segment code =
	    flat_segment(X86_BOOT_CS_SELECTOR, SEG_TYPE_CODE_RX_ACCESSED, long_mode);
	struct kvm_segment data =
	    flat_segment(X86_BOOT_DS_SELECTOR, SEG_TYPE_DATA_RW_ACCESSED, false);
	struct kvm_segment tss = boot_tss();
	int err;

	err = write_gdt(mem, &code, &data, &tss);
	if (!err && long_mode)
		err = write_identity_page_tables(mem);
	if (err)
		return err;

	sregs->cs = code;
	set_data_segments(sregs, &data);
	sregs->tr = tss;
	sregs->gdt.base = X86_GDT_ADDR;
	sregs->gdt.limit = X86_BOOT_GDT_ENTRIES * 8 - 1;
	/* No IDT: the kernel installs its own before it enables interrupts. */
	sregs->idt.base = 0;
	sregs->idt.limit = 0;

	if (long_mode) {
		/* Linux's own CR0_STATE: caches on (CD/NW clear), native FPU errors (NE), write
		 * protection honoured in ring 0 (WP). startup_64 reloads it anyway. */
		sregs->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
		sregs->cr3 = X86_PML4_ADDR;
		sregs->cr4 = CR4_PAE;
		sregs->efer = EFER_LME | EFER_LMA;
	} else {
		/* PVH (and multiboot): "cr0: bit 0 (PE) must be set. All the other writeable bits are cleared";
		 * ET is not writeable on anything KVM runs on and reads as 1. cr4 all clear. */
		sregs->cr0 = CR0_PE | CR0_ET;
		sregs->cr3 = 0;
		sregs->cr4 = 0;
		sregs->efer = 0;
	}
	return 0;
}

static void build_real(const struct x86_boot_info *boot, struct kvm_sregs *sregs)
{
	/* Keep KVM's reset descriptors (types, 64 KiB limits) but with selector and base 0, so the
	 * binary's addresses are physical. */
	struct kvm_segment *segs[] = {&sregs->cs, &sregs->ds, &sregs->es,
				      &sregs->fs, &sregs->gs, &sregs->ss};

	for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
		segs[i]->selector = 0;
		segs[i]->base = 0;
	}
	sregs->cr0 &= ~(CR0_PE | CR0_PG);
}

int x86_build_boot_cpu_state(const struct guest_mem *mem, const struct x86_boot_info *boot,
			     struct kvm_sregs *sregs, struct kvm_regs *regs, struct kvm_fpu *fpu)
{
	int err = 0;

	switch (boot->mode) {
	case X86_ENTRY_REAL16:
		if (boot->entry > 0xffff || boot->stack > 0xffff)
			return -EINVAL;
		build_real(boot, sregs);
		break;
	case X86_ENTRY_LONG64:
	case X86_ENTRY_PVH32:
	case X86_ENTRY_MULTIBOOT32:
		if (boot->mode != X86_ENTRY_LONG64 && boot->entry > 0xffffffff)
			return -EINVAL;
		err = build_protected(mem, boot, sregs);
		break;
	default:
		return -EINVAL;
	}
	if (err)
		return err;

	memset(regs, 0, sizeof(*regs));
	regs->rflags = RFLAGS_RESERVED;
	regs->rip = boot->entry;
	regs->rsp = boot->stack;
	if (boot->mode == X86_ENTRY_LONG64)
		regs->rsi = boot->boot_arg;
	else if (boot->mode == X86_ENTRY_PVH32)
		regs->rbx = boot->boot_arg;
	if (boot->mode == X86_ENTRY_MULTIBOOT32) {
		/* The multiboot spec's machine state is PVH's (flat 32-bit segments, PE on, paging
		 * off, IF clear) plus the loader's magic in eax. */
		regs->rax = 0x2badb002;
		regs->rbx = boot->boot_arg;
	}

	memset(fpu, 0, sizeof(*fpu));
	fpu->fcw = 0x37f;    /* FNINIT's control word: all exceptions masked, 64-bit precision */
	fpu->mxcsr = 0x1f80; /* the reset MXCSR: all SSE exceptions masked */
	return 0;
}

int x86_set_boot_cpu_state(int vcpu_fd, struct guest_mem *mem, const struct x86_boot_info *boot)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;
	int err;

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
		err = -errno;
		log_error("boot vCPU: KVM_GET_SREGS: %s", strerror(errno));
		return err;
	}
	err = x86_build_boot_cpu_state(mem, boot, &sregs, &regs, &fpu);
	if (err) {
		log_error("boot vCPU: cannot set up the %s entry at 0x%llx: %s",
			  boot->format ? boot->format : "kernel", (unsigned long long)boot->entry,
			  strerror(-err));
		return err;
	}
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0) {
		err = -errno;
		log_error("boot vCPU: KVM_SET_SREGS: %s", strerror(errno));
		return err;
	}
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0) {
		err = -errno;
		log_error("boot vCPU: KVM_SET_REGS: %s", strerror(errno));
		return err;
	}
	if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0) {
		err = -errno;
		log_error("boot vCPU: KVM_SET_FPU: %s", strerror(errno));
		return err;
	}
	return 0;
}
