/* Real-mode start-up code for the application processors.  smp.c copies
 * trampoline_start..trampoline_end to a RAM page below 1 MiB and sends its
 * page number as the SIPI vector, so an AP starts here at CS:IP = page:0.
 * The code only uses offsets from its own start, loads the kernel's GDT
 * (a 32-bit address, the image lives at 1 MiB) and far-jumps into
 * ap_entry32 in entry.S, which finishes the trip to long mode. */

#define CODE32 0x08

	.section .text
	.code16
	.globl trampoline_start, trampoline_end
trampoline_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl tramp_gdt_ptr - trampoline_start
	movl %cr0, %eax
	orl $1, %eax			/* PE */
	movl %eax, %cr0
	ljmpl $CODE32, $ap_entry32

	.p2align 2
tramp_gdt_ptr:
	.word 31			/* four descriptors, see entry.S */
	.long gdt
trampoline_end:
	.code64
