/* A guest that keeps writing memory while a live migration copies it (tests/cli/migration).
 * 32-bit protected mode. It fills 16 MiB from 16 MiB with a pattern once (ballast, so that the
 * first full copy takes a while), then rewrites 1024 pages (4 MiB) from 4 MiB every round, a
 * dword in each, checking it first: it must still hold what the previous round wrote. A round
 * is short (this host's software KVM runs about 100 000 such writes a second), so every page is
 * written again and again during the copy: the guest goes on at the destination only if every
 * page written after its copy was sent again (the dirty log), and it sees any that was not.
 * 4 MiB dirty between two looks is more than a 1 ms downtime allows, so a migration of this
 * guest never converges: it runs every pass the sender allows before it pauses the guest. The
 * round count lives at 0x8000; every 16th round goes out on COM1 as round / 16 in 8 hex
 * digits, a line each. A dword that does not
 * hold what was written prints "BAD" and halts (which ends a --raw VM). */
	.code16
	.text
	.globl _start
_start:
#include "protected_mode.inc"
	mov	$(16 << 20), %edi
	mov	$(16 << 20) / 4, %ecx
	mov	$0x5a5aa5a5, %eax
	cld
	rep stosl
	movl	$0, 0x8000
1:	movl	0x8000, %esi	/* what the last round wrote */
	lea	1(%esi), %ebp	/* what this one writes */
	mov	$(4 << 20), %edi
2:	cmpl	%esi, (%edi)
	jne	bad
	movl	%ebp, (%edi)
	add	$4096, %edi
	cmp	$(4 << 20) + 1024 * 4096, %edi
	jne	2b
	movl	%ebp, 0x8000
	test	$0x0f, %ebp
	jnz	1b
	mov	%ebp, %eax
	shr	$4, %eax
	mov	$0x3f8, %dx
	mov	$8, %ecx
4:	rol	$4, %eax
	mov	%eax, %ebx
	and	$0xf, %al
	add	$'0', %al
	cmp	$'9', %al
	jbe	5f
	add	$7, %al
5:	out	%al, (%dx)
	mov	%ebx, %eax
	loop	4b
	mov	$'\n', %al
	out	%al, (%dx)
	jmp	1b
bad:	mov	$0x3f8, %dx
	mov	$'B', %al
	out	%al, (%dx)
	mov	$'A', %al
	out	%al, (%dx)
	mov	$'D', %al
	out	%al, (%dx)
	mov	$'\n', %al
	out	%al, (%dx)
	hlt
