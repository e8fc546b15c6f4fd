/* The bare-metal guests that skiff carries inside its binary, as plain data: the demo guest of
 * the architecture being built (the Makefile builds $(BUILD)/guests/demo.bin for it). */
	.section .rodata
	.balign 16
	.globl	demo_guest
	.globl	demo_guest_end
demo_guest:
	.incbin	"demo.bin"
demo_guest_end:

	.section .note.GNU-stack, "", %progbits
