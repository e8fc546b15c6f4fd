/* Runs until stopped: each round writes the TSC (low half to port 0x514, high half to 0x518),
 * then an incrementing counter to port 0x510. test_pause watches the counter stand still while
 * the VM is paused and the TSC carry on from where it stood. */
	.code16
	.text
	.globl _start
_start:
	cli
	xor	%ebx, %ebx
1:	rdtsc
	mov	%edx, %ecx
	mov	$0x514, %dx
	out	%eax, (%dx)
	mov	%ecx, %eax
	mov	$0x518, %dx
	out	%eax, (%dx)
	inc	%ebx
	mov	%ebx, %eax
	mov	$0x510, %dx
	out	%eax, (%dx)
	jmp	1b
