/* Memory density: 32-bit protected mode, fill 16 MiB from 1 MiB with one pattern (every guest
 * alike, so KSM can merge them), say 'F' on COM1, then wait (pause loop) for the host to pause
 * or end it. bench/density runs many of these. */
	.code16
	.text
	.globl _start
_start:
#include "protected_mode.inc"
	mov	$0x100000, %edi
	mov	$(16 << 20) / 4, %ecx
	mov	$0x5a5aa5a5, %eax
	cld
	rep stosl
	mov	$0x3f8, %dx
	mov	$'F', %al
	out	%al, (%dx)
idle:
	pause
	jmp	idle
