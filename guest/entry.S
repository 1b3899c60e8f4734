/* PVH entry and the switch to 64-bit long mode.
 *
 * A PVH loader (QEMU's -kernel, vireo-vmm) jumps to pvh_entry in 32-bit
 * protected mode with paging off, flat segments of unknown selectors and
 * %ebx = physical address of struct hvm_start_info.  We load our own GDT,
 * build identity page tables (2 MiB pages, 0-4 GiB), enter long mode and
 * call guest_main(start_info).  Application processors arrive at
 * ap_entry32 from the real-mode trampoline and share the same tables. */

#define CODE32 0x08
#define DATA 0x10
#define CODE64 0x18

#define AP_STACK_SIZE 4096
#define MAX_CPUS 256

/* The ELF note a PVH loader looks for: XEN_ELFNOTE_PHYS32_ENTRY (18). */
	.section .note.Xen, "a"
	.p2align 2
	.long 4			/* namesz: "Xen\0" */
	.long 4			/* descsz: a 32-bit physical address */
	.long 18		/* type: XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_entry

/* Enter long mode from 32-bit protected mode with flat segments and then
 * jump to the 64-bit label given. */
.macro ENTER_LONG_MODE target
	movl %cr4, %eax
	orl $0x20, %eax			/* PAE */
	movl %eax, %cr4
	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx		/* EFER */
	rdmsr
	orl $0x100, %eax		/* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax		/* PG | PE */
	movl %eax, %cr0
	ljmp $CODE64, $\target
.endm

	.section .text.entry, "ax"
	.code32
	.globl pvh_entry
pvh_entry:
	cli
	cld
	movl %ebx, %esi			/* keep start_info across the setup */
	lgdt gdt_ptr
	ljmp $CODE32, $1f
1:	movl $DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs

	/* Zero .bss ourselves: not every loader clears memsz beyond filesz. */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb
	movl $boot_stack_top, %esp

	/* PML4[0] -> PDPT, PDPT[0..3] -> four PDs, PDs: 2048 x 2 MiB pages. */
	movl $boot_pdpt + 3, boot_pml4
	movl $boot_pd + 3, %eax
	movl $boot_pdpt, %edi
	movl $4, %ecx
2:	movl %eax, (%edi)
	addl $4096, %eax
	addl $8, %edi
	loop 2b
	movl $boot_pd, %edi
	movl $0x83, %eax		/* present, writable, 2 MiB page */
	xorl %edx, %edx
	movl $2048, %ecx
3:	movl %eax, (%edi)
	movl %edx, 4(%edi)
	addl $0x200000, %eax
	adcl $0, %edx
	addl $8, %edi
	loop 3b

	ENTER_LONG_MODE bsp_entry64

	.globl ap_entry32
ap_entry32:
	/* From the trampoline: protected mode on our GDT, CS = CODE32. */
	movl $DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	ENTER_LONG_MODE ap_entry64

	.code64
bsp_entry64:
	movl $DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movq $boot_stack_top, %rsp
	movl %esi, %edi			/* guest_main(start_info paddr) */
	call guest_main
4:	cli
	hlt
	jmp 4b

ap_entry64:
	movl $DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	/* Each AP takes the next stack slot; more APs than slots just halt. */
	movl $1, %eax
	lock xaddl %eax, ap_next_index
	cmpl $MAX_CPUS, %eax
	jae 4b
	movl %eax, %edi
	incl %eax
	imull $AP_STACK_SIZE, %eax
	leaq ap_stacks(%rax), %rsp
	call ap_main
	jmp 4b

	.section .data
	.p2align 3
	.globl gdt
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* CODE32 */
	.quad 0x00cf92000000ffff	/* DATA */
	.quad 0x00af9a000000ffff	/* CODE64 */
gdt_end:
	.globl gdt_ptr
gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt
ap_next_index:
	.long 0

	.section .bss
	.p2align 12
	.globl boot_pml4, boot_pdpt, boot_pd
boot_pml4:
	.skip 4096
boot_pdpt:
	.skip 4096
boot_pd:
	.skip 4 * 4096
	.p2align 4
boot_stack:
	.skip 16384
boot_stack_top:
	.p2align 4
ap_stacks:
	.skip MAX_CPUS * AP_STACK_SIZE
