/* A guest that triple-faults: 32-bit protected mode with an empty IDT, then an undefined
 * opcode. #UD cannot be delivered (#GP), nor can the #GP (#DF), nor the #DF: shutdown. skiff
 * must end with a non-zero status and a one-line reason, not hang. (A real-mode int3 with an
 * empty IVT does not shut down on every KVM, software KVM among them.) */
#define IDT_DESCRIPTOR empty_idt
	.code16
	.text
	.globl _start
_start:
#include "protected_mode.inc"
	ud2
	hlt

	.balign	8
empty_idt:
	.word	0
	.long	0
