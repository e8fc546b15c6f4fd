/* The x86_64 half of the GDB stub (arch/gdb.h). The register block follows the target
 * description below: gdb's i386 core and SSE features (as gdb's amd64 target expects them), the
 * segment bases, and a system feature of skiff's own with the control registers and EFER.
 * Segment selectors are shown but not written (a selector without its descriptor means
 * nothing); everything else is written back. */
#include "arch/gdb.h"
#include "arch/x86/pagewalk.h"
#include "base/guest_mem.h"
#include "gdb/rsp.h"
#include "vmm/vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

static const char target_xml[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
    "<target version=\"1.0\">\n"
    "<architecture>i386:x86-64</architecture>\n"
    "<feature name=\"org.gnu.gdb.i386.core\">\n"
    "<reg name=\"rax\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rbx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rcx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rdx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rsi\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rdi\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rbp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
    "<reg name=\"rsp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
    "<reg name=\"r8\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r9\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r10\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r11\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r12\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r13\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r14\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r15\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/>\n"
    "<reg name=\"eflags\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"cs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"ss\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"ds\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"es\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"fs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"gs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"st0\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st1\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st2\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st3\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st4\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st5\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st6\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st7\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"fctrl\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fstat\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"ftag\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fiseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fioff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"foseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fooff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fop\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "</feature>\n"
    "<feature name=\"org.gnu.gdb.i386.sse\">\n"
    "<reg name=\"xmm0\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm1\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm2\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm3\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm4\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm5\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm6\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm7\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm8\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm9\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm10\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm11\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm12\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm13\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm14\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"xmm15\" bitsize=\"128\" type=\"uint128\"/>\n"
    "<reg name=\"mxcsr\" bitsize=\"32\" type=\"int\" group=\"vector\"/>\n"
    "</feature>\n"
    "<feature name=\"org.gnu.gdb.i386.segments\">\n"
    "<reg name=\"fs_base\" bitsize=\"64\" type=\"int\"/>\n"
    "<reg name=\"gs_base\" bitsize=\"64\" type=\"int\"/>\n"
    "</feature>\n"
    "<feature name=\"org.skiff.x86.sys\">\n"
    "<reg name=\"cr0\" bitsize=\"64\" type=\"int\" group=\"system\"/>\n"
    "<reg name=\"cr2\" bitsize=\"64\" type=\"int\" group=\"system\"/>\n"
    "<reg name=\"cr3\" bitsize=\"64\" type=\"int\" group=\"system\"/>\n"
    "<reg name=\"cr4\" bitsize=\"64\" type=\"int\" group=\"system\"/>\n"
    "<reg name=\"cr8\" bitsize=\"64\" type=\"int\" group=\"system\"/>\n"
    "<reg name=\"efer\" bitsize=\"64\" type=\"int\" group=\"system\"/>\n"
    "</feature>\n"
    "</target>\n";

/* Register numbers in the order of the description, and the block's layout. */
enum {
	R_GPR = 0,	/* 16 x 8: rax rbx rcx rdx rsi rdi rbp rsp r8-r15 */
	R_RIP = 16,	/* 8 */
	R_EFLAGS = 17,	/* 4 */
	R_SEG = 18,	/* 6 x 4: cs ss ds es fs gs */
	R_ST = 24,	/* 8 x 10 */
	R_FCTRL = 32,	/* 8 x 4: fctrl fstat ftag fiseg fioff foseg fooff fop */
	R_XMM = 40,	/* 16 x 16 */
	R_MXCSR = 56,	/* 4 */
	R_FS_BASE = 57, /* 8 */
	R_GS_BASE = 58, /* 8 */
	R_CR = 59,	/* 6 x 8: cr0 cr2 cr3 cr4 cr8 efer */
	R_NR = 65,
};

#define OFF_RIP	   128
#define OFF_EFLAGS 136
#define OFF_SEG	   140
#define OFF_ST	   164
#define OFF_FCTRL  244
#define OFF_XMM	   276
#define OFF_MXCSR  532
#define OFF_FSBASE 536
#define OFF_CR	   552
#define REGS_SIZE  600

const char *arch_gdb_target_xml(void)
{
	return target_xml;
}

size_t arch_gdb_regs_size(void)
{
	return REGS_SIZE;
}

int arch_gdb_reg_span(uint64_t regno, size_t *offset, size_t *size)
{
	if (regno >= R_NR)
		return -EINVAL;
	if (regno < R_RIP) {
		*offset = regno * 8, *size = 8;
	} else if (regno == R_RIP) {
		*offset = OFF_RIP, *size = 8;
	} else if (regno == R_EFLAGS) {
		*offset = OFF_EFLAGS, *size = 4;
	} else if (regno < R_ST) {
		*offset = OFF_SEG + (regno - R_SEG) * 4, *size = 4;
	} else if (regno < R_FCTRL) {
		*offset = OFF_ST + (regno - R_ST) * 10, *size = 10;
	} else if (regno < R_XMM) {
		*offset = OFF_FCTRL + (regno - R_FCTRL) * 4, *size = 4;
	} else if (regno < R_MXCSR) {
		*offset = OFF_XMM + (regno - R_XMM) * 16, *size = 16;
	} else if (regno == R_MXCSR) {
		*offset = OFF_MXCSR, *size = 4;
	} else if (regno < R_CR) {
		*offset = OFF_FSBASE + (regno - R_FS_BASE) * 8, *size = 8;
	} else {
		*offset = OFF_CR + (regno - R_CR) * 8, *size = 8;
	}
	return 0;
}

static void put64(uint8_t *buf, size_t off, uint64_t v)
{
	memcpy(buf + off, &v, 8);
}

static void put32(uint8_t *buf, size_t off, uint32_t v)
{
	memcpy(buf + off, &v, 4);
}

static uint64_t get64(const uint8_t *buf, size_t off)
{
	uint64_t v;

	memcpy(&v, buf + off, 8);
	return v;
}

static uint32_t get32(const uint8_t *buf, size_t off)
{
	uint32_t v;

	memcpy(&v, buf + off, 4);
	return v;
}

struct x86_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
};

static int get_state(struct vcpu *vcpu, struct x86_state *s)
{
	if (ioctl(vcpu->fd, KVM_GET_REGS, &s->regs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_SREGS, &s->sregs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_FPU, &s->fpu) < 0)
		return -errno;
	return 0;
}

int arch_gdb_read_regs(struct vcpu *vcpu, uint8_t *buf)
{
	struct x86_state s;
	const struct kvm_regs *r = &s.regs;
	const struct kvm_segment *seg[6] = { &s.sregs.cs, &s.sregs.ss, &s.sregs.ds,
					     &s.sregs.es, &s.sregs.fs, &s.sregs.gs };
	uint32_t ftag = 0;
	int err = get_state(vcpu, &s);

	if (err)
		return err;
	const uint64_t gpr[16] = { r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rbp, r->rsp,
				   r->r8,  r->r9,  r->r10, r->r11, r->r12, r->r13, r->r14, r->r15 };
	memset(buf, 0, REGS_SIZE);
	for (int i = 0; i < 16; i++)
		put64(buf, (size_t)i * 8, gpr[i]);
	put64(buf, OFF_RIP, r->rip);
	put32(buf, OFF_EFLAGS, (uint32_t)r->rflags);
	for (int i = 0; i < 6; i++)
		put32(buf, OFF_SEG + (size_t)i * 4, seg[i]->selector);
	for (int i = 0; i < 8; i++)
		memcpy(buf + OFF_ST + (size_t)i * 10, s.fpu.fpr[i], 10);
	/* KVM keeps the abridged tag (FXSAVE's: one bit per register, set when valid); gdb shows
	 * the full one (two bits each, 3 = empty). */
	for (int i = 0; i < 8; i++)
		if (!(s.fpu.ftwx & (1u << i)))
			ftag |= 3u << (2 * i);
	put32(buf, OFF_FCTRL + 0, s.fpu.fcw);
	put32(buf, OFF_FCTRL + 4, s.fpu.fsw);
	put32(buf, OFF_FCTRL + 8, ftag);
	put32(buf, OFF_FCTRL + 16, (uint32_t)s.fpu.last_ip);
	put32(buf, OFF_FCTRL + 24, (uint32_t)s.fpu.last_dp);
	put32(buf, OFF_FCTRL + 28, s.fpu.last_opcode);
	memcpy(buf + OFF_XMM, s.fpu.xmm, 256);
	put32(buf, OFF_MXCSR, s.fpu.mxcsr);
	put64(buf, OFF_FSBASE, s.sregs.fs.base);
	put64(buf, OFF_FSBASE + 8, s.sregs.gs.base);
	put64(buf, OFF_CR + 0, s.sregs.cr0);
	put64(buf, OFF_CR + 8, s.sregs.cr2);
	put64(buf, OFF_CR + 16, s.sregs.cr3);
	put64(buf, OFF_CR + 24, s.sregs.cr4);
	put64(buf, OFF_CR + 32, s.sregs.cr8);
	put64(buf, OFF_CR + 40, s.sregs.efer);
	return 0;
}

int arch_gdb_write_regs(struct vcpu *vcpu, const uint8_t *buf)
{
	struct x86_state s;
	struct kvm_regs *r = &s.regs;
	__u64 *gpr[16] = { &r->rax, &r->rbx, &r->rcx, &r->rdx, &r->rsi, &r->rdi,
			      &r->rbp, &r->rsp, &r->r8,	 &r->r9,  &r->r10, &r->r11,
			      &r->r12, &r->r13, &r->r14, &r->r15 };
	uint32_t ftag;
	int err = get_state(vcpu, &s);

	if (err)
		return err;
	for (int i = 0; i < 16; i++)
		*gpr[i] = get64(buf, (size_t)i * 8);
	r->rip = get64(buf, OFF_RIP);
	r->rflags = (r->rflags & ~0xffffffffULL) | get32(buf, OFF_EFLAGS);
	for (int i = 0; i < 8; i++)
		memcpy(s.fpu.fpr[i], buf + OFF_ST + (size_t)i * 10, 10);
	s.fpu.fcw = (uint16_t)get32(buf, OFF_FCTRL + 0);
	s.fpu.fsw = (uint16_t)get32(buf, OFF_FCTRL + 4);
	ftag = get32(buf, OFF_FCTRL + 8);
	s.fpu.ftwx = 0;
	for (int i = 0; i < 8; i++)
		if (((ftag >> (2 * i)) & 3) != 3)
			s.fpu.ftwx |= (uint8_t)(1u << i);
	s.fpu.last_opcode = (uint16_t)get32(buf, OFF_FCTRL + 28);
	memcpy(s.fpu.xmm, buf + OFF_XMM, 256);
	s.fpu.mxcsr = get32(buf, OFF_MXCSR);
	s.sregs.fs.base = get64(buf, OFF_FSBASE);
	s.sregs.gs.base = get64(buf, OFF_FSBASE + 8);
	s.sregs.cr0 = get64(buf, OFF_CR + 0);
	s.sregs.cr2 = get64(buf, OFF_CR + 8);
	s.sregs.cr3 = get64(buf, OFF_CR + 16);
	s.sregs.cr4 = get64(buf, OFF_CR + 24);
	s.sregs.cr8 = get64(buf, OFF_CR + 32);
	s.sregs.efer = get64(buf, OFF_CR + 40);
	if (ioctl(vcpu->fd, KVM_SET_REGS, &s.regs) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_SREGS, &s.sregs) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_FPU, &s.fpu) < 0)
		return -errno;
	return 0;
}

static int read_phys(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	return guest_mem_read(ctx, gpa, buf, len);
}

int arch_gdb_translate(struct vcpu *vcpu, const struct guest_mem *mem, uint64_t gva,
		       uint64_t *gpa, uint64_t *contiguous)
{
	struct kvm_sregs sregs;
	struct x86_paging p;
	uint64_t size;
	int err;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	p = (struct x86_paging){ sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer };
	err = x86_pagewalk(&p, gva, read_phys, (void *)mem, gpa, &size);
	if (err)
		return err;
	*contiguous = size - (*gpa & (size - 1));
	return 0;
}

void arch_gdb_sw_bp(const uint8_t **insn, size_t *len)
{
	static const uint8_t int3 = 0xcc;

	*insn = &int3;
	*len = 1;
}

/* Four debug registers, shared by breakpoints and watchpoints. Watched lengths 1, 2, 4, 8,
 * aligned; x86 cannot watch reads alone (Z3). */
int arch_gdb_check_hw(const struct arch_gdb_debug *d, const struct arch_gdb_hw *hw)
{
	if (hw->type == RSP_WP_READ)
		return -EOPNOTSUPP;
	if (hw->type != RSP_BP_HW) {
		if (hw->len != 1 && hw->len != 2 && hw->len != 4 && hw->len != 8)
			return -EINVAL;
		if (hw->addr & (hw->len - 1))
			return -EINVAL;
	}
	return d->nr_hw >= 4 ? -ENOSPC : 0;
}

int arch_gdb_set_debug(struct vcpu *vcpu, const struct arch_gdb_debug *d)
{
	struct kvm_guest_debug dbg;
	uint64_t dr7 = 0;

	memset(&dbg, 0, sizeof(dbg));
	if (d->enable)
		dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP;
	if (d->enable && d->single_step)
		dbg.control |= KVM_GUESTDBG_SINGLESTEP;
	for (int i = 0; d->enable && i < d->nr_hw && i < 4; i++) {
		const struct arch_gdb_hw *hw = &d->hw[i];
		uint64_t rw = 0, len = 0;

		if (hw->type == RSP_WP_WRITE)
			rw = 1;
		else if (hw->type == RSP_WP_ACCESS)
			rw = 3;
		if (hw->type != RSP_BP_HW)
			len = hw->len == 1 ? 0 : hw->len == 2 ? 1 : hw->len == 8 ? 2 : 3;
		dbg.arch.debugreg[i] = hw->addr;
		dr7 |= 2ULL << (2 * i); /* global enable */
		dr7 |= (rw | len << 2) << (16 + 4 * i);
	}
	if (dr7) {
		dbg.control |= KVM_GUESTDBG_USE_HW_BP;
		dbg.arch.debugreg[7] = dr7 | 0x400; /* bit 10 reads as one */
	}
	return ioctl(vcpu->fd, KVM_SET_GUEST_DEBUG, &dbg) < 0 ? -errno : 0;
}

enum arch_gdb_stop_kind arch_gdb_debug_exit(struct vcpu *vcpu, int *hw_slot, uint64_t *addr)
{
	const struct kvm_debug_exit_arch *a = &vcpu->run->debug.arch;

	if (a->exception == 3)
		return ARCH_GDB_STOP_SW_BP;
	if (a->exception != 1)
		return ARCH_GDB_STOP_OTHER;
	for (int i = 0; i < 4; i++) {
		if (!(a->dr6 & (1ULL << i)))
			continue;
		/* Which entry of the set fired: the stub knows whether it was a breakpoint. */
		*hw_slot = i;
		return ARCH_GDB_STOP_WATCH;
	}
	if (a->dr6 & (1ULL << 14))
		return ARCH_GDB_STOP_STEP;
	return ARCH_GDB_STOP_OTHER;
}
