/* Counts forever on COM1, one line per round: the count in 8 hex digits. The count lives in
 * guest memory (0x8000) and this code only in guest memory too, so a snapshot restored into a new
 * skiff (tests/cli/snapshot) goes on counting only if both its registers and its memory came
 * back: a fresh start would count from 1 again. A delay loop between lines keeps the output
 * small. */
	.code16
	.text
	.globl _start
_start:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	movl	$0, 0x8000
1:	incl	0x8000
	mov	0x8000, %eax
	mov	$0x3f8, %dx
	mov	$8, %cx
2:	rol	$4, %eax
	mov	%eax, %ebx
	and	$0xf, %al
	add	$'0', %al
	cmp	$'9', %al
	jbe	3f
	add	$7, %al
3:	out	%al, (%dx)
	mov	%ebx, %eax
	loop	2b
	mov	$'\n', %al
	out	%al, (%dx)
	mov	$20000, %ecx
4:	dec	%ecx
	jnz	4b
	jmp	1b
