/* 16550A UART.  Register behaviour follows the National Semiconductor /
 * TI PC16550D data sheet; the parts guests probe (Linux's 8250 autoconfig,
 * its THRE re-assert test, SeaBIOS's polling) are emulated faithfully:
 *
 *  - the transmitter is infinitely fast: a THR write is sent at once, so
 *    LSR.THRE and LSR.TEMT always read 1 and a THRE interrupt is due again
 *    right after each write;
 *  - there is no character timer: when the RX FIFO holds fewer bytes than
 *    the trigger level the "character timeout" interrupt is reported at
 *    once rather than four character times later (guests treat both the
 *    same way: read until LSR.DR clears);
 *  - baud rate, parity and word length (DLL/DLM, LCR) are stored for the
 *    guest to read back but change nothing;
 *  - the interrupt output is not gated by MCR.OUT2.
 */
#include "vmm/dev/serial.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* Register offsets. */
#define REG_RBR_THR 0 /* DLL when LCR.DLAB */
#define REG_IER	    1 /* DLM when LCR.DLAB */
#define REG_IIR_FCR 2
#define REG_LCR	    3
#define REG_MCR	    4
#define REG_LSR	    5
#define REG_MSR	    6
#define REG_SCR	    7

#define IER_RDI	 0x01 /* received data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI	 0x08 /* modem status */
#define IER_MASK 0x0f /* bits 4-7 are hard-wired to 0 on a 16550A */

#define IIR_NO_INT  0x01
#define IIR_MSI	    0x00
#define IIR_THRI    0x02
#define IIR_RDI	    0x04
#define IIR_RLSI    0x06
#define IIR_TIMEOUT 0x0c
#define IIR_FIFO_ON 0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04

#define LCR_DLAB 0x80

#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR	   0x01
#define LSR_OE	   0x02
#define LSR_PE	   0x04
#define LSR_FE	   0x08
#define LSR_BI	   0x10
#define LSR_THRE   0x20
#define LSR_TEMT   0x40
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS   0x01
#define MSR_DDSR   0x02
#define MSR_TERI   0x04
#define MSR_DDCD   0x08
#define MSR_DELTAS 0x0f
#define MSR_CTS	   0x10
#define MSR_DSR	   0x20
#define MSR_RI	   0x40
#define MSR_DCD	   0x80

struct serial {
	pthread_mutex_t lock;
	struct serial_config cfg;

	uint8_t rx_fifo[SERIAL_FIFO_SIZE];
	unsigned rx_head, rx_count;

	uint16_t divisor;
	uint8_t ier, lcr, mcr, scr;
	uint8_t lsr_errors; /* sticky LSR error bits, cleared by reading LSR */
	uint8_t msr;	    /* status inputs (bits 4-7) and delta bits (0-3) */
	uint8_t fcr;	    /* FIFO enable + trigger bits as last programmed */
	bool thre_pending;  /* THRE interrupt latched, cleared by IIR read / THR write */
	bool rx_wanted;	    /* serial_receive() refused bytes: tell the console when drained */
	int irq_level;
};

static const uint8_t trigger_levels[4] = {1, 4, 8, 14};

static bool fifo_enabled(const struct serial *s)
{
	return s->fcr & FCR_ENABLE;
}

/* With the FIFOs off the receiver holds one byte, as a 16450 does. */
static unsigned rx_capacity(const struct serial *s)
{
	return fifo_enabled(s) ? SERIAL_FIFO_SIZE : 1;
}

/* Modem-status inputs: the VM has no modem, so CTS, DSR and DCD are held
 * asserted; in loopback they follow the MCR outputs instead. */
static uint8_t msr_inputs(const struct serial *s)
{
	if (!(s->mcr & MCR_LOOP))
		return MSR_CTS | MSR_DSR | MSR_DCD;
	uint8_t in = 0;
	if (s->mcr & MCR_RTS)
		in |= MSR_CTS;
	if (s->mcr & MCR_DTR)
		in |= MSR_DSR;
	if (s->mcr & MCR_OUT1)
		in |= MSR_RI;
	if (s->mcr & MCR_OUT2)
		in |= MSR_DCD;
	return in;
}

/* Latch new modem-status inputs and the delta bits their change implies. */
static void msr_update(struct serial *s)
{
	uint8_t old = s->msr & 0xf0, now = msr_inputs(s);
	uint8_t changed = old ^ now, delta = 0;
	if (changed & MSR_CTS)
		delta |= MSR_DCTS;
	if (changed & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI))
		delta |= MSR_TERI; /* trailing edge only */
	if (changed & MSR_DCD)
		delta |= MSR_DDCD;
	s->msr = now | (s->msr & MSR_DELTAS) | delta;
}

/* The IIR identification of the highest-priority enabled interrupt. */
static uint8_t pending_iir(const struct serial *s)
{
	if ((s->ier & IER_RLSI) && (s->lsr_errors & LSR_ERRORS))
		return IIR_RLSI;
	if ((s->ier & IER_RDI) && s->rx_count) {
		if (fifo_enabled(s) && s->rx_count < trigger_levels[s->fcr >> 6])
			return IIR_TIMEOUT;
		return IIR_RDI;
	}
	if ((s->ier & IER_THRI) && s->thre_pending)
		return IIR_THRI;
	if ((s->ier & IER_MSI) && (s->msr & MSR_DELTAS))
		return IIR_MSI;
	return IIR_NO_INT;
}

/* Drive the line to "an enabled interrupt is pending", on change only. */
static void update_irq(struct serial *s)
{
	int level = pending_iir(s) != IIR_NO_INT;
	if (level != s->irq_level) {
		s->irq_level = level;
		irq_line_set(&s->cfg.irq, level);
	}
}

static void rx_push(struct serial *s, uint8_t byte)
{
	s->rx_fifo[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = byte;
	s->rx_count++;
}

static void rx_clear(struct serial *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
}

/* The FIFO has room again: wake the console thread if it is waiting. */
static void rx_drained(struct serial *s)
{
	if (s->rx_wanted && s->rx_count == 0 && !(s->mcr & MCR_LOOP)) {
		s->rx_wanted = false;
		if (s->cfg.rx_space)
			s->cfg.rx_space(s->cfg.rx_space_ctx);
	}
}

/* A byte arriving at the receiver (host input or loopback). */
static void rx_byte(struct serial *s, uint8_t byte)
{
	if (s->rx_count < rx_capacity(s)) {
		rx_push(s, byte);
		return;
	}
	s->lsr_errors |= LSR_OE;
	/* Without FIFO the new byte overwrites the holding register; with the
	 * FIFO on, the byte in the shift register is lost instead. */
	if (!fifo_enabled(s))
		s->rx_fifo[s->rx_head] = byte;
}

static void transmit(struct serial *s, uint8_t byte)
{
	if (s->mcr & MCR_LOOP)
		rx_byte(s, byte);
	else if (s->cfg.tx)
		s->cfg.tx(s->cfg.tx_ctx, byte);
	/* The holding register is empty again at once. */
	if (s->ier & IER_THRI)
		s->thre_pending = true;
}

static uint8_t read_reg(struct serial *s, unsigned reg)
{
	uint8_t v = 0;
	switch (reg) {
	case REG_RBR_THR:
		if (s->lcr & LCR_DLAB)
			return s->divisor & 0xff;
		if (s->rx_count) {
			v = s->rx_fifo[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
			s->rx_count--;
			rx_drained(s);
		}
		return v;
	case REG_IER:
		if (s->lcr & LCR_DLAB)
			return s->divisor >> 8;
		return s->ier;
	case REG_IIR_FCR:
		v = pending_iir(s);
		/* Reading IIR acknowledges a THRE interrupt it reports. */
		if (v == IIR_THRI)
			s->thre_pending = false;
		return v | (fifo_enabled(s) ? IIR_FIFO_ON : 0);
	case REG_LCR: return s->lcr;
	case REG_MCR: return s->mcr;
	case REG_LSR:
		v = LSR_THRE | LSR_TEMT | s->lsr_errors | (s->rx_count ? LSR_DR : 0);
		s->lsr_errors = 0;
		return v;
	case REG_MSR:
		v = s->msr;
		s->msr &= ~MSR_DELTAS;
		return v;
	case REG_SCR: return s->scr;
	}
	return 0xff;
}

static void write_fcr(struct serial *s, uint8_t v)
{
	/* FCR bits other than 0 are only programmed while bit 0 is written
	 * as 1; changing bit 0 resets both FIFOs. */
	if ((v ^ s->fcr) & FCR_ENABLE) {
		rx_clear(s);
		s->fcr = v & FCR_ENABLE ? (v & 0xc9) : 0;
		rx_drained(s);
		return;
	}
	if (!(v & FCR_ENABLE))
		return;
	if (v & FCR_CLEAR_RX) {
		rx_clear(s);
		rx_drained(s);
	}
	/* FCR_CLEAR_TX: the transmit FIFO is always empty here. */
	s->fcr = v & 0xc9;
}

static void write_reg(struct serial *s, unsigned reg, uint8_t v)
{
	switch (reg) {
	case REG_RBR_THR:
		if (s->lcr & LCR_DLAB)
			s->divisor = (s->divisor & 0xff00) | v;
		else
			transmit(s, v);
		break;
	case REG_IER:
		if (s->lcr & LCR_DLAB) {
			s->divisor = (uint16_t)((s->divisor & 0x00ff) | (v << 8));
			break;
		}
		v &= IER_MASK;
		/* Enabling the THRE interrupt while THR is empty (always, here)
		 * raises it: Linux's THRE test checks exactly this. */
		if ((v & IER_THRI) && !(s->ier & IER_THRI))
			s->thre_pending = true;
		if (!(v & IER_THRI))
			s->thre_pending = false;
		s->ier = v;
		break;
	case REG_IIR_FCR: write_fcr(s, v); break;
	case REG_LCR: s->lcr = v; break;
	case REG_MCR: {
		bool was_loop = s->mcr & MCR_LOOP;
		s->mcr = v & MCR_MASK;
		msr_update(s);
		if (was_loop && !(s->mcr & MCR_LOOP))
			rx_drained(s); /* the outside line is connected again */
		break;
	}
	case REG_LSR:
	case REG_MSR:
		/* Factory-test writes on real parts; ignored. */
		break;
	case REG_SCR: s->scr = v; break;
	}
}

static void serial_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < len; i++)
		data[i] = offset + i < SERIAL_PORT_LEN ? read_reg(s, (unsigned)(offset + i)) : 0xff;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < len; i++)
		if (offset + i < SERIAL_PORT_LEN)
			write_reg(s, (unsigned)(offset + i), data[i]);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

const struct bus_dev_ops serial_ops = {
	.read = serial_read,
	.write = serial_write,
};

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;
	pthread_mutex_lock(&s->lock);
	/* In loopback the receiver is cut off from the line. */
	if (!(s->mcr & MCR_LOOP))
		while (n < len && s->rx_count < rx_capacity(s))
			rx_push(s, buf[n++]);
	if (n < len)
		s->rx_wanted = true;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void reset_locked(struct serial *s)
{
	rx_clear(s);
	s->divisor = 12; /* 9600 baud from the PC's 1.8432 MHz clock */
	s->ier = s->lcr = s->mcr = s->scr = s->fcr = 0;
	s->lsr_errors = 0;
	s->msr = msr_inputs(s);
	s->thre_pending = false;
}

struct serial *serial_create(const struct serial_config *cfg)
{
	struct serial *s = calloc(1, sizeof(*s));
	if (!s) {
		log_error("serial: out of memory creating the UART");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->cfg = *cfg;
	reset_locked(s);
	return s;
}

void serial_reset(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	bool wanted = s->rx_wanted;
	reset_locked(s);
	update_irq(s);
	/* The FIFO is empty now: a console that was held back may go on. */
	s->rx_wanted = wanted;
	rx_drained(s);
	pthread_mutex_unlock(&s->lock);
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}
