/* Exception entry stubs for vectors 0-31.  Each pushes a zero error code
 * when the CPU does not push one, then its vector number, saves the
 * general registers and calls exception_handler(frame), which reports the
 * crash and powers off; it never returns.
 * Interrupt stubs for the MSI-X vectors IRQ_VECTOR_BASE.. (virtio_pci.c)
 * call irq_handler(vector), which counts and acknowledges them, and return;
 * the spurious vector 0xff just returns. */

.macro STUB vec, has_error
	.p2align 4
isr_\vec:
	.if !\has_error
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
.endm

	.section .text
	.code64
isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	andq $-16, %rsp
	call exception_handler
1:	cli
	hlt
	jmp 1b

/* Vectors with an error code: 8, 10-14, 17, 21, 29, 30. */
	STUB 0, 0
	STUB 1, 0
	STUB 2, 0
	STUB 3, 0
	STUB 4, 0
	STUB 5, 0
	STUB 6, 0
	STUB 7, 0
	STUB 8, 1
	STUB 9, 0
	STUB 10, 1
	STUB 11, 1
	STUB 12, 1
	STUB 13, 1
	STUB 14, 1
	STUB 15, 0
	STUB 16, 0
	STUB 17, 1
	STUB 18, 0
	STUB 19, 0
	STUB 20, 0
	STUB 21, 1
	STUB 22, 0
	STUB 23, 0
	STUB 24, 0
	STUB 25, 0
	STUB 26, 0
	STUB 27, 0
	STUB 28, 0
	STUB 29, 1
	STUB 30, 1
	STUB 31, 0

/* Only the caller-saved registers: irq_handler() keeps the others. */
irq_common:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	movq 72(%rsp), %rdi
	pushq %rbp
	movq %rsp, %rbp
	andq $-16, %rsp
	call irq_handler
	movq %rbp, %rsp
	popq %rbp
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
	addq $8, %rsp
	iretq

	.globl irq_spurious
	.p2align 4
irq_spurious:
	iretq

.macro IRQSTUB vec
	.p2align 4
irq_\vec:
	pushq $\vec
	jmp irq_common
.endm

	.irp v, 64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95
	IRQSTUB \v
	.endr

	.section .rodata
	.p2align 3
	.globl irq_table
irq_table:
	.irp v, 64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95
	.quad irq_\v
	.endr

	.p2align 3
	.globl isr_table
isr_table:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad isr_\v
	.endr
