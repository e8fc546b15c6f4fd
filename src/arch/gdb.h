/* The architecture half of the GDB stub (vmm/gdb_stub.c): the target description, the register
 * block of gdb's 'g' packet, guest-virtual to guest-physical translation by walking the guest's
 * page tables, the software breakpoint instruction, and KVM_SET_GUEST_DEBUG. Each function is
 * called from the stub's thread while the vCPU is parked (out of KVM_RUN), except
 * arch_gdb_debug_exit, which the vCPU's own thread calls on KVM_EXIT_DEBUG. Errors: negative
 * errno, nothing logged (the stub answers gdb with an error packet). */
#ifndef SKIFF_ARCH_GDB_H
#define SKIFF_ARCH_GDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;
struct vcpu;

/* gdb's Z types 1-4 (rsp.h's enum rsp_bp_type). */
#define ARCH_GDB_MAX_HW 16

struct arch_gdb_hw {
	int type; /* RSP_BP_HW, RSP_WP_WRITE, RSP_WP_READ, RSP_WP_ACCESS */
	uint64_t addr;
	uint64_t len;
};

struct arch_gdb_debug {
	bool enable;	  /* a debugger is attached */
	bool single_step; /* this vCPU steps one instruction */
	int nr_hw;
	struct arch_gdb_hw hw[ARCH_GDB_MAX_HW];
};

enum arch_gdb_stop_kind {
	ARCH_GDB_STOP_SW_BP,
	ARCH_GDB_STOP_HW_BP,
	ARCH_GDB_STOP_WATCH,
	ARCH_GDB_STOP_STEP,
	ARCH_GDB_STOP_OTHER,
};

/* The target description (qXfer:features:read:target.xml), NUL-terminated. */
const char *arch_gdb_target_xml(void);

/* The size of the 'g' block, and where register `regno` lies in it (-EINVAL: no such). */
size_t arch_gdb_regs_size(void);
int arch_gdb_reg_span(uint64_t regno, size_t *offset, size_t *size);
/* Reads or writes the whole block (arch_gdb_regs_size bytes, target byte order). */
int arch_gdb_read_regs(struct vcpu *vcpu, uint8_t *buf);
int arch_gdb_write_regs(struct vcpu *vcpu, const uint8_t *buf);

/* The guest-physical address of guest-virtual `gva` as the vCPU's MMU would translate it now,
 * and how many bytes from there lie in the same page (*contiguous). -EFAULT when unmapped. */
int arch_gdb_translate(struct vcpu *vcpu, const struct guest_mem *mem, uint64_t gva,
		       uint64_t *gpa, uint64_t *contiguous);

/* The instruction a software breakpoint writes (x86 int3, arm64 brk #0), and the one kind
 * (gdb's Z0 kind argument) accepted for it. */
void arch_gdb_sw_bp(const uint8_t **insn, size_t *len);

/* Whether this hardware breakpoint or watchpoint can be set at all (type, alignment, length):
 * -EINVAL when not; -ENOSPC when the set `d` with it added has more than the debug registers
 * hold. */
int arch_gdb_check_hw(const struct arch_gdb_debug *d, const struct arch_gdb_hw *hw);

/* KVM_SET_GUEST_DEBUG with software breakpoints trapping to skiff, `d`'s hardware ones and
 * single-step. */
int arch_gdb_set_debug(struct vcpu *vcpu, const struct arch_gdb_debug *d);

/* On the vCPU's thread, at KVM_EXIT_DEBUG: why it stopped. ARCH_GDB_STOP_WATCH names the
 * entry of the arch_gdb_debug set that fired (*hw_slot: x86, where it may be a breakpoint
 * too) or the address a watchpoint saw accessed (*addr, with *hw_slot -1: arm64). */
enum arch_gdb_stop_kind arch_gdb_debug_exit(struct vcpu *vcpu, int *hw_slot, uint64_t *addr);

#endif
