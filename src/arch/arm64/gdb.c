/* The arm64 half of the GDB stub (arch/gdb.h): gdb's aarch64 core and FPU features through
 * KVM_GET_ONE_REG/KVM_SET_ONE_REG; `sp` is the stack pointer the vCPU uses now (SP_EL1 in EL1h,
 * SP_EL0 otherwise); the stage-1 walk of arch/arm64/pagewalk.h from SCTLR_EL1, TCR_EL1 and the
 * TTBRs; brk #0 for software breakpoints; the architecture's guaranteed minimum of two hardware
 * breakpoints and two watchpoints (DBGBCR/DBGBVR, DBGWCR/DBGWVR). */
#include "arch/gdb.h"
#include "arch/arm64/pagewalk.h"
#include "base/guest_mem.h"
#include "gdb/rsp.h"
#include "vmm/vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#define NR_HW_BP 2
#define NR_HW_WP 2

#define CORE_REG(field, size)                                                                      \
	(KVM_REG_ARM64 | (size) | KVM_REG_ARM_CORE |                                               \
	 (offsetof(struct kvm_regs, field) / sizeof(__u32)))
#define CORE64(field)  CORE_REG(field, KVM_REG_SIZE_U64)
#define CORE32(field)  CORE_REG(field, KVM_REG_SIZE_U32)
#define CORE128(field) CORE_REG(field, KVM_REG_SIZE_U128)

#define SCTLR_EL1 ARM64_SYS_REG(3, 0, 1, 0, 0)
#define TTBR0_EL1 ARM64_SYS_REG(3, 0, 2, 0, 0)
#define TTBR1_EL1 ARM64_SYS_REG(3, 0, 2, 0, 1)
#define TCR_EL1	  ARM64_SYS_REG(3, 0, 2, 0, 2)

/* Block layout: x0-x30, sp, pc (8 each), cpsr (4), v0-v31 (16 each), fpsr, fpcr (4 each). */
#define OFF_SP	  248
#define OFF_PC	  256
#define OFF_CPSR  264
#define OFF_V	  268
#define OFF_FPSR  780
#define OFF_FPCR  784
#define REGS_SIZE 788
#define R_NR	  68

static char target_xml[4096];

const char *arch_gdb_target_xml(void)
{
	size_t n;

	if (target_xml[0])
		return target_xml;
	n = (size_t)snprintf(target_xml, sizeof(target_xml),
			     "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
			     "<target version=\"1.0\">\n<architecture>aarch64</architecture>\n"
			     "<feature name=\"org.gnu.gdb.aarch64.core\">\n");
	for (int i = 0; i < 31; i++)
		n += (size_t)snprintf(target_xml + n, sizeof(target_xml) - n,
				      "<reg name=\"x%d\" bitsize=\"64\" type=\"int\"/>\n", i);
	n += (size_t)snprintf(target_xml + n, sizeof(target_xml) - n,
			      "<reg name=\"sp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
			      "<reg name=\"pc\" bitsize=\"64\" type=\"code_ptr\"/>\n"
			      "<reg name=\"cpsr\" bitsize=\"32\" type=\"int\"/>\n</feature>\n"
			      "<feature name=\"org.gnu.gdb.aarch64.fpu\">\n");
	for (int i = 0; i < 32; i++)
		n += (size_t)snprintf(target_xml + n, sizeof(target_xml) - n,
				      "<reg name=\"v%d\" bitsize=\"128\" type=\"uint128\"/>\n", i);
	snprintf(target_xml + n, sizeof(target_xml) - n,
		 "<reg name=\"fpsr\" bitsize=\"32\" type=\"int\"/>\n"
		 "<reg name=\"fpcr\" bitsize=\"32\" type=\"int\"/>\n</feature>\n</target>\n");
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
	if (regno < 33) {
		*offset = regno * 8, *size = 8;
	} else if (regno == 33) {
		*offset = OFF_CPSR, *size = 4;
	} else if (regno < 66) {
		*offset = OFF_V + (regno - 34) * 16, *size = 16;
	} else {
		*offset = OFF_FPSR + (regno - 66) * 4, *size = 4;
	}
	return 0;
}

static int get(struct vcpu *vcpu, uint64_t id, void *val)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uint64_t)(uintptr_t)val };

	return ioctl(vcpu->fd, KVM_GET_ONE_REG, &reg) < 0 ? -errno : 0;
}

static int set(struct vcpu *vcpu, uint64_t id, const void *val)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uint64_t)(uintptr_t)val };

	return ioctl(vcpu->fd, KVM_SET_ONE_REG, &reg) < 0 ? -errno : 0;
}

/* SP_EL1 when the vCPU runs at EL1 on its own stack pointer (EL1h), else SP_EL0. */
static int sp_id(struct vcpu *vcpu, uint64_t *id)
{
	uint64_t pstate;
	int err = get(vcpu, CORE64(regs.pstate), &pstate);

	if (err)
		return err;
	*id = (pstate & 0xf) == 0x5 ? CORE64(sp_el1) : CORE64(regs.sp);
	return 0;
}

int arch_gdb_read_regs(struct vcpu *vcpu, uint8_t *buf)
{
	uint64_t v, spid;
	int err = sp_id(vcpu, &spid);

	memset(buf, 0, REGS_SIZE);
	for (int i = 0; i < 31 && !err; i++)
		err = get(vcpu, CORE64(regs.regs[i]), buf + i * 8);
	if (!err)
		err = get(vcpu, spid, buf + OFF_SP);
	if (!err)
		err = get(vcpu, CORE64(regs.pc), buf + OFF_PC);
	if (!err && !(err = get(vcpu, CORE64(regs.pstate), &v)))
		memcpy(buf + OFF_CPSR, &v, 4);
	for (int i = 0; i < 32 && !err; i++)
		err = get(vcpu, CORE128(fp_regs.vregs[i]), buf + OFF_V + i * 16);
	if (!err)
		err = get(vcpu, CORE32(fp_regs.fpsr), buf + OFF_FPSR);
	if (!err)
		err = get(vcpu, CORE32(fp_regs.fpcr), buf + OFF_FPCR);
	return err;
}

int arch_gdb_write_regs(struct vcpu *vcpu, const uint8_t *buf)
{
	uint64_t spid, pstate;
	uint32_t cpsr;
	int err = sp_id(vcpu, &spid);

	for (int i = 0; i < 31 && !err; i++)
		err = set(vcpu, CORE64(regs.regs[i]), buf + i * 8);
	if (!err)
		err = set(vcpu, spid, buf + OFF_SP);
	if (!err)
		err = set(vcpu, CORE64(regs.pc), buf + OFF_PC);
	if (!err && !(err = get(vcpu, CORE64(regs.pstate), &pstate))) {
		memcpy(&cpsr, buf + OFF_CPSR, 4);
		pstate = (pstate & ~0xffffffffULL) | cpsr;
		err = set(vcpu, CORE64(regs.pstate), &pstate);
	}
	for (int i = 0; i < 32 && !err; i++)
		err = set(vcpu, CORE128(fp_regs.vregs[i]), buf + OFF_V + i * 16);
	if (!err)
		err = set(vcpu, CORE32(fp_regs.fpsr), buf + OFF_FPSR);
	if (!err)
		err = set(vcpu, CORE32(fp_regs.fpcr), buf + OFF_FPCR);
	return err;
}

static int read_phys(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	return guest_mem_read(ctx, gpa, buf, len);
}

int arch_gdb_translate(struct vcpu *vcpu, const struct guest_mem *mem, uint64_t gva,
		       uint64_t *gpa, uint64_t *contiguous)
{
	struct arm64_paging p;
	uint64_t size;
	int err = get(vcpu, SCTLR_EL1, &p.sctlr);

	if (!err)
		err = get(vcpu, TCR_EL1, &p.tcr);
	if (!err)
		err = get(vcpu, TTBR0_EL1, &p.ttbr0);
	if (!err)
		err = get(vcpu, TTBR1_EL1, &p.ttbr1);
	if (!err)
		err = arm64_pagewalk(&p, gva, read_phys, (void *)mem, gpa, &size);
	if (err)
		return err;
	*contiguous = size - (*gpa & (size - 1));
	return 0;
}

void arch_gdb_sw_bp(const uint8_t **insn, size_t *len)
{
	static const uint8_t brk0[4] = { 0x00, 0x00, 0x20, 0xd4 }; /* brk #0 */

	*insn = brk0;
	*len = sizeof(brk0);
}

int arch_gdb_check_hw(const struct arch_gdb_debug *d, const struct arch_gdb_hw *hw)
{
	int bps = 0, wps = 0;

	for (int i = 0; i < d->nr_hw; i++)
		*(d->hw[i].type == RSP_BP_HW ? &bps : &wps) += 1;
	if (hw->type == RSP_BP_HW) {
		if (hw->addr & 3)
			return -EINVAL;
		return bps >= NR_HW_BP ? -ENOSPC : 0;
	}
	/* A watchpoint covers bytes of one aligned doubleword. */
	if (hw->len == 0 || hw->len > 8 || (hw->addr & 7) + hw->len > 8)
		return -EINVAL;
	return wps >= NR_HW_WP ? -ENOSPC : 0;
}

int arch_gdb_set_debug(struct vcpu *vcpu, const struct arch_gdb_debug *d)
{
	struct kvm_guest_debug dbg;
	int bp = 0, wp = 0;

	memset(&dbg, 0, sizeof(dbg));
	if (d->enable)
		dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP;
	if (d->enable && d->single_step)
		dbg.control |= KVM_GUESTDBG_SINGLESTEP;
	for (int i = 0; d->enable && i < d->nr_hw; i++) {
		const struct arch_gdb_hw *hw = &d->hw[i];

		if (hw->type == RSP_BP_HW && bp < NR_HW_BP) {
			/* E, PMC = EL1 and EL0, BAS = all four bytes */
			dbg.arch.dbg_bcr[bp] = 1 | 3 << 1 | 0xf << 5;
			dbg.arch.dbg_bvr[bp++] = hw->addr;
		} else if (hw->type != RSP_BP_HW && wp < NR_HW_WP) {
			uint64_t lsc = hw->type == RSP_WP_READ ? 1 : hw->type == RSP_WP_WRITE ? 2 : 3;
			uint64_t bas = ((1ULL << hw->len) - 1) << (hw->addr & 7);

			dbg.arch.dbg_wcr[wp] = 1 | 3 << 1 | lsc << 3 | bas << 5;
			dbg.arch.dbg_wvr[wp++] = hw->addr & ~7ULL;
		}
	}
	if (bp || wp)
		dbg.control |= KVM_GUESTDBG_USE_HW;
	return ioctl(vcpu->fd, KVM_SET_GUEST_DEBUG, &dbg) < 0 ? -errno : 0;
}

enum arch_gdb_stop_kind arch_gdb_debug_exit(struct vcpu *vcpu, int *hw_slot, uint64_t *addr)
{
	const struct kvm_debug_exit_arch *a = &vcpu->run->debug.arch;

	switch (a->hsr >> 26) { /* the exception class */
	case 0x3c:		/* BRK in AArch64 */
		return ARCH_GDB_STOP_SW_BP;
	case 0x30:		/* breakpoint, lower EL */
	case 0x31:		/* breakpoint, same EL */
		return ARCH_GDB_STOP_HW_BP;
	case 0x32:		/* software step, lower EL */
	case 0x33:		/* software step, same EL */
		return ARCH_GDB_STOP_STEP;
	case 0x34:		/* watchpoint, lower EL */
	case 0x35:		/* watchpoint, same EL */
		*hw_slot = -1;
		*addr = a->far;
		return ARCH_GDB_STOP_WATCH;
	default:
		return ARCH_GDB_STOP_OTHER;
	}
}
