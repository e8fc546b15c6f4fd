/* A guest that does nothing: says 'I' on COM1, then waits (pause loop) for the host to pause,
 * move or end it. bench/migration/local snapshots it and fills the snapshot's memory from the
 * host (this host's nested KVM writes a few hundred new guest pages a second: a guest cannot
 * fill a GiB itself in reasonable time). */
	.code16
	.text
	.globl _start
_start:
	mov	$0x3f8, %dx
	mov	$'I', %al
	out	%al, (%dx)
idle:
	pause
	jmp	idle
