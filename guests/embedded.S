/* The bare-metal guests that skiff carries inside its binary, as plain data. */
	.section .rodata
	.balign 16
	.globl	demo_guest_x86_64
	.globl	demo_guest_x86_64_end
demo_guest_x86_64:
	.incbin	"demo.bin"
demo_guest_x86_64_end:

	.section .note.GNU-stack, "", @progbits
