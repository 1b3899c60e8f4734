/* The guest-physical address map of a vireo-vmm VM (x86_64).  Every file
 * that places something in guest memory takes its address from here.
 *
 *   0x0000_0000  real-mode IVT / BDA (left zero)
 *   0x0000_1000  GDT used for the 32/64-bit boot entries
 *   0x0000_6000  PVH hvm_start_info, its memory map and module list
 *   0x0000_7000  Linux zero page (struct boot_params)
 *   0x0000_8ff0  initial stack for the boot CPU
 *   0x0000_9000  identity page tables for the 64-bit entry (PML4, PDPT, 4 PDs)
 *   0x0002_0000  kernel command line (up to 64 KiB)
 *   0x0009_fc00  EBDA (reserved)
 *   0x000e_0000  ACPI tables, RSDP first (reserved, 128 KiB)
 *   0x0010_0000  kernel (bzImage protected-mode part / ELF segments), RAM
 *   ...          RAM up to min(memory, 3 GiB)
 *   0xc000_0000  32-bit PCI MMIO window (BARs)          } the 32-bit
 *   0xe000_0000  PCI ECAM, 256 buses (MCFG)               } PCI hole,
 *   0xfec0_0000  IOAPIC                                   } never RAM
 *   0xfee0_0000  local APICs
 *   1_0000_0000  RAM above 4 GiB (the rest of --memory)
 *   after RAM    64-bit PCI MMIO window (1 GiB aligned)
 */
#ifndef VIREO_VMM_LAYOUT_H
#define VIREO_VMM_LAYOUT_H

#define LAYOUT_GDT	   0x1000ull
#define LAYOUT_PVH_INFO	   0x6000ull
#define LAYOUT_ZERO_PAGE   0x7000ull
#define LAYOUT_BOOT_STACK  0x8ff0ull
#define LAYOUT_PML4	   0x9000ull
#define LAYOUT_PDPT	   0xa000ull
#define LAYOUT_PD	   0xb000ull /* 4 pages: identity map of 0-4 GiB in 2 MiB pages */
#define LAYOUT_CMDLINE	   0x20000ull
#define LAYOUT_CMDLINE_MAX 0x10000ull
#define LAYOUT_EBDA_START  0x9fc00ull
#define LAYOUT_LOWMEM_END  0xa0000ull /* end of conventional memory (640 KiB) */
#define LAYOUT_ACPI_START  0xe0000ull
#define LAYOUT_ACPI_SIZE   0x20000ull
#define LAYOUT_BIOS_END	   0x100000ull
#define LAYOUT_KERNEL_LOAD 0x100000ull

#define LAYOUT_PCI_HOLE_START	0xc0000000ull /* RAM below 4 GiB stops here */
#define LAYOUT_PCI_MMIO32_START 0xc0000000ull
#define LAYOUT_PCI_MMIO32_SIZE	0x20000000ull
#define LAYOUT_ECAM_BASE	0xe0000000ull
#define LAYOUT_ECAM_SIZE	0x10000000ull /* 256 buses x 32 devices x 8 functions x 4 KiB */
#define LAYOUT_IOAPIC_BASE	0xfec00000ull
#define LAYOUT_IOAPIC_SIZE	0x1000ull
#define LAYOUT_LAPIC_BASE	0xfee00000ull
#define LAYOUT_LAPIC_SIZE	0x100000ull
/* With --firmware, SeaBIOS assigns the BARs itself, top-down from the IOAPIC
 * (its fixed end of the 32-bit PCI space, as on every QEMU machine): the
 * 32-bit window is then the range between ECAM and the IOAPIC. */
#define LAYOUT_FW_PCI_MMIO32_START 0xf0000000ull
#define LAYOUT_FW_PCI_MMIO32_SIZE  (LAYOUT_IOAPIC_BASE - LAYOUT_FW_PCI_MMIO32_START)
#define LAYOUT_HIGHMEM_START	   0x100000000ull
#define LAYOUT_PCI_MMIO64_ALIGN	   0x40000000ull
#define LAYOUT_PCI_MMIO64_MAX_SIZE (64ull << 30)

/* KVM needs three pages for the VMX real-mode TSS and one for the EPT
 * identity map, somewhere the guest never uses: just below the IOAPIC. */
#define LAYOUT_KVM_TSS		0xfeffc000ull
#define LAYOUT_KVM_IDENTITY_MAP 0xfeffb000ull

/* Legacy I/O ports. */
#define PORT_COM1	     0x3f8
#define PORT_COM1_IRQ	     4
#define PORT_RTC	     0x70 /* index 0x70, data 0x71 */
#define PORT_I8042_DATA	     0x60
#define PORT_I8042_CMD	     0x64
#define PORT_POST	     0x80
#define PORT_PCI_CONFIG_ADDR 0xcf8
#define PORT_PCI_CONFIG_DATA 0xcfc
#define PORT_ACPI_PM_BASE    0x600
#define PORT_ACPI_PM1A_EVT   0x600 /* PM1_STS (2 bytes) + PM1_EN (2 bytes) */
#define PORT_ACPI_PM1A_CNT   0x604 /* PM1_CNT (2 bytes) */
#define PORT_ACPI_PM_TMR     0x608 /* 32-bit ACPI PM timer, 3.579545 MHz */
#define ACPI_SCI_IRQ	     9
#define ACPI_S5_SLP_TYP	     5 /* the SLP_TYP value \_S5 hands the guest */

/* IOAPIC GSIs 16-23 take PCI INTx: slot s, pin p (0=INTA) -> 16 + (s + p) % 8 */
#define PCI_INTX_GSI_BASE 16
#define IOAPIC_NUM_PINS	  24

#endif
