/* 8042 controller, reset path only.  Status reads show the system flag
 * and empty buffers (plus "output full" after a command that answers);
 * data written to the keyboard is dropped since there is no keyboard.
 * Commands outside the handful below are ignored. */
#include "vmm/dev/i8042.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/log.h"

#define STS_OBF	     0x01
#define STS_SYS	     0x04
#define STS_CMD	     0x08 /* last write went to the command port */
#define STS_UNLOCKED 0x10

#define CB_SYS	       0x04
#define CB_KBD_DISABLE 0x10
#define CB_AUX_DISABLE 0x20
#define CB_DEFAULT     0x45 /* translate, system flag, keyboard interrupt */

#define CMD_READ_CB	  0x20
#define CMD_WRITE_CB	  0x60
#define CMD_AUX_DISABLE	  0xa7
#define CMD_AUX_ENABLE	  0xa8
#define CMD_SELF_TEST	  0xaa
#define CMD_KBD_TEST	  0xab
#define CMD_KBD_DISABLE	  0xad
#define CMD_KBD_ENABLE	  0xae
#define CMD_WRITE_OUTPORT 0xd1

struct i8042 {
	pthread_mutex_t lock;
	struct i8042_config cfg;
	uint8_t cmd_byte;
	uint8_t pending_cmd; /* command waiting for its data byte, or 0 */
	uint8_t out;	     /* output buffer */
	bool out_full;
	bool last_was_cmd;
};

static struct log_ratelimit i8042_rl = LOG_RATELIMIT_INIT(1000, 5);

static void put_output(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->out_full = true;
}

/* Returns true when the reset line must be pulsed. */
static bool do_command(struct i8042 *k, uint8_t cmd)
{
	k->pending_cmd = 0;
	switch (cmd) {
	case CMD_READ_CB: put_output(k, k->cmd_byte); return false;
	case CMD_WRITE_CB:
	case CMD_WRITE_OUTPORT: k->pending_cmd = cmd; return false;
	case CMD_SELF_TEST: put_output(k, 0x55); return false;
	case CMD_KBD_TEST: put_output(k, 0x00); return false;
	case CMD_KBD_DISABLE: k->cmd_byte |= CB_KBD_DISABLE; return false;
	case CMD_KBD_ENABLE: k->cmd_byte &= (uint8_t)~CB_KBD_DISABLE; return false;
	case CMD_AUX_DISABLE: k->cmd_byte |= CB_AUX_DISABLE; return false;
	case CMD_AUX_ENABLE: k->cmd_byte &= (uint8_t)~CB_AUX_DISABLE; return false;
	}
	/* 0xF0-0xFF pulse output-port lines low for a moment: those whose
	 * bit is 0 in the command; bit 0 is the CPU reset line (0xFE). */
	if ((cmd & 0xf0) == 0xf0)
		return !(cmd & 0x01);
	log_ratelimited(&i8042_rl, LOG_DEBUG, "i8042: command 0x%02x ignored", cmd);
	return false;
}

/* Returns true when the reset line must be pulsed. */
static bool do_data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending_cmd;
	k->pending_cmd = 0;
	switch (cmd) {
	case CMD_WRITE_CB: k->cmd_byte = v; return false;
	case CMD_WRITE_OUTPORT: return !(v & 0x01); /* output port bit 0 low = CPU in reset */
	}
	return false; /* for the keyboard, which is absent */
}

static void finish(struct i8042 *k, bool reset)
{
	pthread_mutex_unlock(&k->lock);
	/* Outside the lock: the VM's reset path may call i8042_reset(). */
	if (reset && k->cfg.reset)
		k->cfg.reset(k->cfg.ctx);
}

static void data_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;
	pthread_mutex_lock(&k->lock);
	data[0] = k->out_full ? k->out : 0;
	k->out_full = false;
	for (uint32_t i = 1; i < len; i++)
		data[i] = 0xff;
	pthread_mutex_unlock(&k->lock);
}

static void data_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;
	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = false;
	finish(k, do_data(k, data[0]));
}

static void cmd_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;
	pthread_mutex_lock(&k->lock);
	data[0] = STS_SYS | STS_UNLOCKED | (k->last_was_cmd ? STS_CMD : 0) |
		  (k->out_full ? STS_OBF : 0);
	for (uint32_t i = 1; i < len; i++)
		data[i] = 0xff;
	pthread_mutex_unlock(&k->lock);
}

static void cmd_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;
	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = true;
	finish(k, do_command(k, data[0]));
}

const struct bus_dev_ops i8042_data_ops = {.read = data_read, .write = data_write};
const struct bus_dev_ops i8042_cmd_ops = {.read = cmd_read, .write = cmd_write};

static void reset_locked(struct i8042 *k)
{
	k->cmd_byte = CB_DEFAULT;
	k->pending_cmd = 0;
	k->out = 0;
	k->out_full = false;
	k->last_was_cmd = false;
}

struct i8042 *i8042_create(const struct i8042_config *cfg)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k) {
		log_error("i8042: out of memory creating the PS/2 controller");
		return NULL;
	}
	pthread_mutex_init(&k->lock, NULL);
	if (cfg)
		k->cfg = *cfg;
	reset_locked(k);
	return k;
}

void i8042_reset(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	reset_locked(k);
	pthread_mutex_unlock(&k->lock);
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}
