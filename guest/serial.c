/* COM1, a 16550 UART at 0x3f8, driven by polling.  Every wait is bounded:
 * a missing or broken UART must slow the guest down, never hang it. */
#include "guest.h"
#include "io.h"

#define COM1	 0x3f8
#define UART_THR 0
#define UART_IER 1
#define UART_DLL 0
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_THRE 0x20
#define LCR_DLAB 0x80

void serial_init(void)
{
	outb(COM1 + UART_IER, 0); /* we poll */
	outb(COM1 + UART_LCR, LCR_DLAB);
	outb(COM1 + UART_DLL, 1); /* 115200 baud */
	outb(COM1 + UART_DLM, 0);
	outb(COM1 + UART_LCR, 0x03); /* 8n1 */
	outb(COM1 + UART_FCR, 0x07); /* FIFO on, cleared */
	outb(COM1 + UART_MCR, 0x03); /* DTR, RTS */
}

static void put_raw(char c)
{
	for (unsigned int i = 0; i < 100000; i++)
		if (inb(COM1 + UART_LSR) & LSR_THRE)
			break;
	outb(COM1 + UART_THR, (uint8_t)c);
}

void serial_putc(char c)
{
	if (c == '\n')
		put_raw('\r');
	put_raw(c);
}
