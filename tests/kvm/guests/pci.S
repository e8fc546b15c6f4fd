/* PCI config space from a guest (skiff run --enable-pci with a virtio-rng at 00:01.0): mechanism
 * #1 through ports 0xcf8/0xcfc and ECAM at 0xe0000000, BAR sizing, then a read of BAR 0 once
 * memory decoding is on. Each value read is reported with a dword write to port 0x530, where
 * the test has a probe. */
	.code16
	.text
	.globl _start
_start:
#include "protected_mode.inc"
	mov	$0x530, %bx
	/* Mechanism #1: 00:00.0, 00:01.0 and the absent 00:02.0, register 0. */
	mov	$0x80000000, %eax
	call	cf8_read
	mov	$0x80000800, %eax
	call	cf8_read
	mov	$0x80001000, %eax
	call	cf8_read
	/* ECAM: 00:01.0's ids, an unaligned word (all ones), the absent 00:05.0. */
	movl	0xe0008000, %eax
	call	report
	movzwl	0xe0008001, %eax
	call	report
	movl	0xe0028000, %eax
	call	report
	/* BAR 0: sizing with all ones, then back; memory decoding and bus mastering on. */
	movl	0xe0008010, %esi
	movl	$0xffffffff, 0xe0008010
	movl	0xe0008010, %eax
	call	report
	movl	%esi, 0xe0008010
	movw	$0x0006, 0xe0008004
	/* virtio common config num_queues (BAR 0 + 0x12): virtio-rng has 1. */
	and	$0xfffffff0, %esi
	movzwl	0x12(%esi), %eax
	call	report
	hlt

cf8_read:
	mov	$0xcf8, %dx
	out	%eax, (%dx)
	mov	$0xcfc, %dx
	in	(%dx), %eax
report:
	mov	%bx, %dx
	out	%eax, (%dx)
	ret
