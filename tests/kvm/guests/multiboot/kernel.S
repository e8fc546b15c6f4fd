/* A multiboot (v1) test kernel for skiff's loader (src/arch/x86/multiboot.c). Built twice from
 * this file: an ELF32 (multiboot.elf: the loader follows its program headers) and, with
 * -DAOUT_KLUDGE, a flat binary whose header carries the load addresses (multiboot-aout.bin:
 * flag bit 16). It checks the machine state and the multiboot information it was given, prints
 * what it found on COM1 (mem_lower, mem_upper, the memory map, the command line, the boot loader
 * name, the module's string and first bytes), and ends skiff through --debug-exit (port 0xf4):
 * with 0x2a (exit status 85) when every check passed, else with the number of the first check
 * that failed (status 2n + 1). The test (tests/cli/test-kernels, tests/kvm/test_multiboot.c)
 * gives it a module starting with MODULE_TEXT and asserts both the status and the printed
 * values, so a loader that gets any of them wrong fails. */
#define MB_MAGIC	0x1badb002
#ifdef AOUT_KLUDGE
#define MB_FLAGS	0x00010003	/* page-aligned modules, memory info, address fields */
#else
#define MB_FLAGS	0x00000003
#endif
#define COM1		0x3f8
#define DEBUG_EXIT	0xf4
#define PASS		0x2a

	.code32
	.text
	.globl	_start, entry
_start:
header:
	.long	MB_MAGIC
	.long	MB_FLAGS
	.long	-(MB_MAGIC + MB_FLAGS)
	.long	header			/* header_addr */
	.long	_start			/* load_addr */
	.long	_edata			/* load_end_addr */
	.long	_end			/* bss_end_addr */
	.long	entry			/* entry_addr */

/* fail N: ends with exit value N (status 2N + 1). */
.macro	fail n
	mov	$\n, %eax
	jmp	finish
.endm

entry:
	mov	$stack_top, %esp
	/* 1: the boot loader's magic */
	cmp	$0x2badb002, %eax
	je	1f
	fail	1
1:	mov	%ebx, info
	/* 2: paging off, protection on; 3: interrupts off */
	mov	%cr0, %eax
	and	$0x80000001, %eax
	cmp	$1, %eax
	je	1f
	fail	2
1:	pushf
	pop	%eax
	test	$0x200, %eax
	jz	1f
	fail	3
1:	/* 4: the info flags: memory (0), cmdline (2), mods (3), mmap (6), loader name (9) */
	mov	(%ebx), %eax
	and	$0x24d, %eax
	cmp	$0x24d, %eax
	je	1f
	fail	4
1:	/* 5: the loaded data and the zeroed bss */
	cmpl	$0x600dda7a, data_word
	jne	5f
	cmpl	$0, bss_word
	je	1f
5:	fail	5
1:	/* Report. */
	mov	$s_lower, %esi
	call	puts
	mov	4(%ebx), %eax
	call	puthex
	mov	$s_upper, %esi
	call	puts
	mov	8(%ebx), %eax
	call	puthex
	mov	$s_cmdline, %esi
	call	puts
	mov	16(%ebx), %esi
	call	puts
	mov	$s_loader, %esi
	call	puts
	mov	64(%ebx), %esi
	call	puts
	mov	$s_nl, %esi
	call	puts
	/* The memory map; 6: RAM from 1 MiB of mem_upper KiB */
	mov	48(%ebx), %edi		/* mmap_addr */
	mov	44(%ebx), %ecx
	add	%edi, %ecx		/* its end */
	xor	%ebp, %ebp		/* found the 1 MiB entry */
2:	cmp	%ecx, %edi
	jae	3f
	mov	$s_mmap, %esi
	call	puts
	mov	8(%edi), %eax		/* addr, high half */
	call	puthex
	mov	4(%edi), %eax
	call	puthex
	mov	$s_space, %esi
	call	puts
	mov	16(%edi), %eax		/* len */
	call	puthex
	mov	12(%edi), %eax
	call	puthex
	mov	$s_space, %esi
	call	puts
	mov	20(%edi), %eax		/* type */
	call	puthex
	mov	$s_nl, %esi
	call	puts
	cmpl	$0x100000, 4(%edi)
	jne	4f
	cmpl	$1, 20(%edi)
	jne	4f
	mov	12(%edi), %eax
	shr	$10, %eax
	cmp	8(%ebx), %eax
	jne	4f
	inc	%ebp
4:	add	(%edi), %edi
	add	$4, %edi
	jmp	2b
3:	test	%ebp, %ebp
	jnz	1f
	fail	6
1:	/* 7: exactly one module, page-aligned, after the kernel's bss */
	cmpl	$1, 20(%ebx)
	je	1f
	fail	7
1:	mov	24(%ebx), %edi		/* mods_addr */
	mov	(%edi), %eax
	test	$0xfff, %eax
	jnz	7f
	cmp	$_end, %eax
	jae	1f
7:	fail	7
1:	mov	$s_modstr, %esi
	call	puts
	mov	8(%edi), %esi
	call	puts
	mov	$s_modlen, %esi
	call	puts
	mov	4(%edi), %eax
	sub	(%edi), %eax
	call	puthex
	mov	$s_module, %esi
	call	puts
	/* The module's first line (at most 64 bytes). */
	mov	(%edi), %esi
	mov	4(%edi), %ecx
	sub	%esi, %ecx
	cmp	$64, %ecx
	jbe	2f
	mov	$64, %ecx
2:	test	%ecx, %ecx
	jz	3f
	lodsb
	cmp	$'\n', %al
	je	3f
	call	putc
	dec	%ecx
	jmp	2b
3:	mov	$s_nl, %esi
	call	puts
	/* 8: the module starts with MODULE_TEXT */
	mov	(%edi), %esi
	mov	$module_text, %edx
2:	movb	(%edx), %al
	test	%al, %al
	jz	1f
	cmpb	(%esi), %al
	jne	8f
	inc	%esi
	inc	%edx
	jmp	2b
8:	fail	8
1:	/* 9: the boot loader's name is "skiff" */
	mov	64(%ebx), %esi
	mov	$s_skiff, %edx
2:	movb	(%edx), %al
	cmpb	(%esi), %al
	jne	9f
	test	%al, %al
	jz	1f
	inc	%esi
	inc	%edx
	jmp	2b
9:	fail	9
1:	/* 10: the command line has nothing of skiff's Linux additions (console=, root=) */
	mov	16(%ebx), %esi
2:	cmpb	$0, (%esi)
	je	1f
	cmpl	$0x736e6f63, (%esi)	/* "cons" */
	jne	3f
	cmpl	$0x3d656c6f, 4(%esi)	/* "ole=" */
	je	10f
3:	inc	%esi
	jmp	2b
10:	fail	10
1:	mov	$PASS, %eax
finish:
	mov	%eax, %ebx
	mov	$s_exit, %esi
	call	puts
	mov	%ebx, %eax
	call	puthex
	mov	$s_nl, %esi
	call	puts
	mov	%ebx, %eax
	out	%eax, $DEBUG_EXIT
	/* Without --debug-exit: halt for good. */
	cli
99:	hlt
	jmp	99b

/* putc: %al to COM1 */
putc:
	push	%edx
	mov	$COM1, %dx
	out	%al, (%dx)
	pop	%edx
	ret

/* puts: the NUL-terminated string at %esi (clobbers %esi, %eax) */
puts:
	lodsb
	test	%al, %al
	jz	1f
	call	putc
	jmp	puts
1:	ret

/* puthex: %eax as 8 hex digits (keeps %eax) */
puthex:
	push	%ecx
	push	%edx
	mov	%eax, %edx
	mov	$8, %ecx
1:	rol	$4, %edx
	mov	%edx, %eax
	and	$0xf, %eax
	movb	hexdigits(%eax), %al
	call	putc
	loop	1b
	mov	%edx, %eax
	pop	%edx
	pop	%ecx
	ret

hexdigits:	.ascii	"0123456789abcdef"
s_lower:	.asciz	"mb: mem_lower="
s_upper:	.asciz	" mem_upper="
s_cmdline:	.asciz	" cmdline="
s_loader:	.asciz	"|\nmb: loader="
s_mmap:		.asciz	"mb: mmap "
s_space:	.asciz	" "
s_modstr:	.asciz	"mb: module string="
s_modlen:	.asciz	"| bytes="
s_module:	.asciz	" first line="
s_exit:		.asciz	"mb: exit "
s_nl:		.asciz	"\n"
s_skiff:	.asciz	"skiff"
module_text:	.asciz	"skiff multiboot module"

	.balign	4
data_word:	.long	0x600dda7a
info:		.long	0
_edata:

	.bss
	.balign	16
bss_word:	.long	0
	.space	4092
stack_top:
_end:
