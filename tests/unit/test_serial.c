#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vmm/dev/serial.h"
#include "vmm/layout.h"

struct rec {
	int level;
	int irq_calls;
	uint8_t tx[256];
	size_t ntx;
	int rx_space_calls;
};

static void rec_irq(void *ctx, uint32_t gsi, int level)
{
	struct rec *r = ctx;
	assert_int_equal(gsi, PORT_COM1_IRQ);
	r->level = level;
	r->irq_calls++;
}

static void rec_tx(void *ctx, uint8_t b)
{
	struct rec *r = ctx;
	if (r->ntx < sizeof(r->tx))
		r->tx[r->ntx++] = b;
}

static void rec_rx_space(void *ctx)
{
	struct rec *r = ctx;
	r->rx_space_calls++;
}

static struct rec rec;

static struct serial *make(void)
{
	memset(&rec, 0, sizeof(rec));
	struct serial_config cfg = {
		.irq = {.set = rec_irq, .ctx = &rec, .gsi = PORT_COM1_IRQ},
		.tx = rec_tx,
		.tx_ctx = &rec,
		.rx_space = rec_rx_space,
		.rx_space_ctx = &rec,
	};
	struct serial *s = serial_create(&cfg);
	assert_non_null(s);
	return s;
}

static void out(struct serial *s, unsigned reg, uint8_t v)
{
	serial_ops.write(s, reg, &v, 1);
}

static uint8_t in(struct serial *s, unsigned reg)
{
	uint8_t v = 0x5a;
	serial_ops.read(s, reg, &v, 1);
	return v;
}

enum {
	RBR = 0,
	THR = 0,
	DLL = 0,
	IER = 1,
	DLM = 1,
	IIR = 2,
	FCR = 2,
	LCR = 3,
	MCR = 4,
	LSR = 5,
	MSR = 6,
	SCR = 7
};

/* The probe sequence of Linux's 8250 autoconfig, in order. */
static void test_detect_16550a(void **state)
{
	struct serial *s = make();

	/* IER scratch test: an 8250-class UART must keep IER's low nibble. */
	uint8_t save = in(s, IER);
	out(s, IER, 0);
	assert_int_equal(in(s, IER) & 0x0f, 0);
	out(s, IER, 0x0f);
	assert_int_equal(in(s, IER) & 0x0f, 0x0f);
	out(s, IER, save);

	/* Scratch register exists (else 8250). */
	out(s, SCR, 0xa5);
	assert_int_equal(in(s, SCR), 0xa5);
	out(s, SCR, 0x5a);
	assert_int_equal(in(s, SCR), 0x5a);

	/* Loopback test: RTS|OUT2 in loopback -> CTS|DCD. */
	uint8_t mcr = in(s, MCR);
	out(s, MCR, 0x10 | 0x0a);
	assert_int_equal(in(s, MSR) & 0xf0, 0x90);
	out(s, MCR, mcr);

	/* FIFO probe: IIR bits 7:6 == 3 means 16550A (1 would be a buggy 16550,
	 * 0 a 16450). */
	out(s, FCR, 0x01);
	assert_int_equal(in(s, IIR) >> 6, 3);

	/* EFR probes: offset 2 under LCR 0x80 / 0xbf must not read 0, else it
	 * would be taken for an ST16C650 / 16650. */
	out(s, LCR, 0x80);
	assert_int_not_equal(in(s, IIR), 0);
	out(s, LCR, 0xbf);
	assert_int_not_equal(in(s, IIR), 0);

	/* National SuperIO probe: EXCR1 (offset 2 with LCR 0xe0) must not
	 * follow MCR.LOOP. */
	out(s, LCR, 0);
	uint8_t st1 = in(s, MCR);
	out(s, LCR, 0xe0);
	uint8_t st2 = in(s, IIR);
	if (!((st1 ^ st2) & 0x10)) {
		out(s, LCR, 0);
		out(s, MCR, st1 ^ 0x10);
		out(s, LCR, 0xe0);
		st2 = in(s, IIR);
		out(s, LCR, 0);
		out(s, MCR, st1);
		assert_false((st1 ^ st2) & 0x10);
	}
	out(s, LCR, 0);

	/* XScale probe: IER bit 6 (UUE) must not stick. */
	out(s, IER, 0x40);
	assert_int_equal(in(s, IER) & 0x40, 0);
	out(s, IER, 0);

	/* FIFO clear sequence. */
	out(s, FCR, 0x01);
	out(s, FCR, 0x07);
	out(s, FCR, 0x00);
	assert_int_equal(in(s, IIR), 0x01);
	assert_int_equal(in(s, LSR), 0x60);
	serial_destroy(s);
}

/* serial8250_do_startup's test: THRE must re-assert when IER.THRI is
 * enabled again although the first one was acknowledged by an IIR read. */
static void test_thre_reassert(void **state)
{
	struct serial *s = make();
	out(s, FCR, 0x01);
	out(s, IER, 0x02);
	assert_int_equal(rec.level, 1);
	uint8_t iir1 = in(s, IIR);
	assert_int_equal(iir1, 0xc2);
	assert_int_equal(rec.level, 0);
	assert_int_equal(in(s, IIR), 0xc1); /* acknowledged */
	out(s, IER, 0);
	out(s, IER, 0x02);
	uint8_t iir = in(s, IIR);
	assert_false(iir & 0x01);
	assert_int_equal(iir & 0x0f, 0x02);
	out(s, IER, 0);
	assert_int_equal(rec.level, 0);

	/* Writing THR makes THRE due again (the byte is sent at once). */
	out(s, IER, 0x02);
	in(s, IIR);
	assert_int_equal(rec.level, 0);
	out(s, THR, 'x');
	assert_int_equal(rec.level, 1);
	assert_int_equal(rec.ntx, 1);
	assert_int_equal(rec.tx[0], 'x');
	serial_destroy(s);
}

static void test_tx_and_rx(void **state)
{
	struct serial *s = make();
	const char *msg = "hello";
	for (const char *p = msg; *p; p++) {
		assert_true(in(s, LSR) & 0x20);
		out(s, THR, (uint8_t)*p);
	}
	assert_int_equal(rec.ntx, 5);
	assert_memory_equal(rec.tx, msg, 5);

	assert_int_equal(in(s, LSR) & 0x01, 0);
	assert_int_equal(serial_receive(s, (const uint8_t *)"ab", 2), 1); /* no FIFO: one byte */
	assert_int_equal(in(s, LSR) & 0x01, 1);
	assert_int_equal(in(s, RBR), 'a');
	assert_int_equal(rec.rx_space_calls, 1);
	assert_int_equal(in(s, LSR) & 0x01, 0);
	assert_int_equal(in(s, RBR), 0); /* empty reads 0 */
	serial_destroy(s);
}

static void test_loopback(void **state)
{
	struct serial *s = make();
	out(s, FCR, 0x01);
	out(s, MCR, 0x10);
	assert_int_equal(in(s, MSR) & 0xf0, 0x00);
	out(s, THR, 0x42);
	out(s, THR, 0x43);
	assert_int_equal(rec.ntx, 0); /* nothing on the line */
	assert_int_equal(in(s, LSR) & 0x01, 1);
	assert_int_equal(in(s, RBR), 0x42);
	assert_int_equal(in(s, RBR), 0x43);
	assert_int_equal(in(s, LSR) & 0x01, 0);
	/* The external line is disconnected in loopback. */
	assert_int_equal(serial_receive(s, (const uint8_t *)"z", 1), 0);

	/* Each MCR output to its MSR input, with delta bits. */
	in(s, MSR);
	out(s, MCR, 0x10 | 0x01);
	assert_int_equal(in(s, MSR), 0x20 | 0x02);
	out(s, MCR, 0x10 | 0x02);
	assert_int_equal(in(s, MSR), 0x10 | 0x01 | 0x02);
	out(s, MCR, 0x10 | 0x04);
	assert_int_equal(in(s, MSR), 0x40 | 0x01);
	out(s, MCR, 0x10 | 0x08);
	assert_int_equal(in(s, MSR), 0x80 | 0x08 | 0x04); /* RI fell: TERI */
	assert_int_equal(in(s, MSR), 0x80);

	/* Leaving loopback: CTS/DSR/DCD asserted again; console told to go on. */
	out(s, MCR, 0x00);
	assert_int_equal(in(s, MSR) & 0xf0, 0xb0);
	assert_int_equal(rec.rx_space_calls, 1);
	assert_int_equal(serial_receive(s, (const uint8_t *)"z", 1), 1);
	serial_destroy(s);
}

static void test_fifo_full_overrun(void **state)
{
	struct serial *s = make();
	out(s, FCR, 0x01);
	uint8_t buf[20];
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(serial_receive(s, buf, sizeof(buf)), 16);
	assert_int_equal(serial_receive(s, buf, 4), 0);
	assert_int_equal(in(s, LSR), 0x61); /* no overrun from the console path */
	for (unsigned i = 0; i < 15; i++)
		assert_int_equal(in(s, RBR), i);
	assert_int_equal(rec.rx_space_calls, 0);
	assert_int_equal(in(s, RBR), 15);
	assert_int_equal(rec.rx_space_calls, 1);
	assert_int_equal(serial_receive(s, buf + 16, 4), 4);
	assert_int_equal(in(s, RBR), 16);

	/* Overrun through loopback: 16 fit, the 17th is lost and sets OE. */
	out(s, FCR, 0x03);
	out(s, MCR, 0x10);
	out(s, IER, 0x04);
	for (unsigned i = 0; i < 17; i++)
		out(s, THR, (uint8_t)(0x80 + i));
	assert_int_equal(rec.level, 1);
	assert_int_equal(in(s, IIR), 0xc6);
	assert_int_equal(in(s, LSR), 0x63);
	assert_int_equal(in(s, LSR), 0x61); /* OE cleared by the read */
	assert_int_equal(rec.level, 0);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(in(s, RBR), 0x80 + i);
	assert_int_equal(in(s, LSR), 0x60);

	/* Without FIFO the holding register is overwritten. */
	out(s, FCR, 0x00);
	out(s, THR, 1);
	out(s, THR, 2);
	assert_int_equal(in(s, LSR), 0x63);
	assert_int_equal(in(s, RBR), 2);
	serial_destroy(s);
}

static void test_iir_priorities(void **state)
{
	struct serial *s = make();
	out(s, FCR, 0xc1); /* trigger level 14 */
	out(s, MCR, 0x10);
	/* Overrun + data + THRE + modem status, all pending at once. */
	for (unsigned i = 0; i < 17; i++)
		out(s, THR, (uint8_t)i);
	out(s, MCR, 0x12); /* RTS -> CTS: DCTS */
	out(s, IER, 0x0f);
	assert_int_equal(rec.level, 1);
	assert_int_equal(in(s, IIR), 0xc6); /* line status first */
	in(s, LSR);
	assert_int_equal(in(s, IIR), 0xc4); /* 16 >= trigger: data available */
	for (unsigned i = 0; i < 3; i++)
		in(s, RBR);
	assert_int_equal(in(s, IIR), 0xcc); /* below trigger: timeout */
	while (in(s, LSR) & 1)
		in(s, RBR);
	assert_int_equal(in(s, IIR), 0xc2); /* THRE, and the read clears it */
	assert_int_equal(in(s, IIR), 0xc0); /* modem status */
	assert_int_equal(rec.level, 1);
	in(s, MSR);
	assert_int_equal(in(s, IIR), 0xc1);
	assert_int_equal(rec.level, 0);
	serial_destroy(s);
}

static void test_irq_level_changes(void **state)
{
	struct serial *s = make();
	out(s, FCR, 0x01);
	out(s, IER, 0x01);
	assert_int_equal(rec.irq_calls, 0);
	serial_receive(s, (const uint8_t *)"abc", 3);
	assert_int_equal(rec.level, 1);
	assert_int_equal(rec.irq_calls, 1);
	serial_receive(s, (const uint8_t *)"d", 1);
	in(s, RBR);
	in(s, LSR);
	assert_int_equal(rec.irq_calls, 1); /* no redundant set calls */
	in(s, RBR);
	in(s, RBR);
	in(s, RBR);
	assert_int_equal(rec.level, 0);
	assert_int_equal(rec.irq_calls, 2);
	/* Masked interrupts do not drive the line. */
	out(s, IER, 0);
	serial_receive(s, (const uint8_t *)"e", 1);
	assert_int_equal(rec.irq_calls, 2);
	out(s, IER, 1);
	assert_int_equal(rec.level, 1);
	serial_reset(s);
	assert_int_equal(rec.level, 0);
	serial_destroy(s);
}

static void test_dlab(void **state)
{
	struct serial *s = make();
	out(s, IER, 0x05);
	out(s, LCR, 0x83);
	out(s, DLL, 0x01);
	out(s, DLM, 0x02);
	assert_int_equal(rec.ntx, 0); /* DLL write is not a transmit */
	assert_int_equal(in(s, DLL), 0x01);
	assert_int_equal(in(s, DLM), 0x02);
	assert_int_equal(in(s, LCR), 0x83);
	out(s, LCR, 0x03);
	assert_int_equal(in(s, IER), 0x05);
	out(s, THR, 'q');
	assert_int_equal(rec.ntx, 1);
	out(s, LCR, 0x80);
	assert_int_equal(in(s, DLL), 0x01);
	assert_int_equal(in(s, DLM), 0x02);
	serial_destroy(s);
}

/* 16-bit accesses act as two byte accesses; junk never crashes. */
static void test_wide_and_junk(void **state)
{
	struct serial *s = make();
	uint8_t d[4] = {0x80, 0x00, 0, 0};
	serial_ops.write(s, 3, d, 2); /* LCR=0x80, MCR=0 */
	assert_int_equal(in(s, LCR), 0x80);
	uint32_t seed = 1;
	for (int i = 0; i < 100000; i++) {
		seed = seed * 1103515245 + 12345;
		unsigned reg = (seed >> 8) % 8;
		uint32_t len = 1 + (seed >> 20) % 2;
		if (reg + len > 8)
			len = 1;
		uint8_t buf[2] = {(uint8_t)(seed >> 3), (uint8_t)(seed >> 11)};
		if (seed & 0x10000)
			serial_ops.write(s, reg, buf, len);
		else
			serial_ops.read(s, reg, buf, len);
		if ((seed & 0xff) == 7)
			serial_receive(s, buf, 2);
	}
	serial_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect_16550a),	  cmocka_unit_test(test_thre_reassert),
		cmocka_unit_test(test_tx_and_rx),	  cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_fifo_full_overrun), cmocka_unit_test(test_iir_priorities),
		cmocka_unit_test(test_irq_level_changes), cmocka_unit_test(test_dlab),
		cmocka_unit_test(test_wide_and_junk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
