/* Runs until stopped: each round writes the TSC (low half to port 0x534, high half to 0x538),
 * then an incrementing counter to port 0x530. test_pause watches the counter stand still while
 * the VM is paused and the TSC carry on from where it stood. */
	.code16
	.text
	.globl _start
_start:
	cli
	xor	%ebx, %ebx
1:	rdtsc
	mov	%edx, %ecx
	mov	$0x534, %dx
	out	%eax, (%dx)
	mov	%ecx, %eax
	mov	$0x538, %dx
	out	%eax, (%dx)
	inc	%ebx
	mov	%ebx, %eax
	mov	$0x530, %dx
	out	%eax, (%dx)
	jmp	1b
