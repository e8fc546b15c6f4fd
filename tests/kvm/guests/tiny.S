/* The smallest useful guest: one byte out of COM1, then a halt, which ends skiff's run. What a
 * VM costs to start and stop when the guest does next to nothing (bench/density's rate). */
	.code16
	.text
	.globl _start
_start:
	mov	$0x3f8, %dx
	mov	$'!', %al
	out	%al, (%dx)
	hlt
