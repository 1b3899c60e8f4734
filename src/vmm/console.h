/* The host end of the guest's serial console: stdio (raw terminal with a
 * Ctrl-A escape, like QEMU's), a file, a pseudo-terminal or a unix socket.
 * Output is written from vCPU threads; input is read by the main loop and
 * handed to the UART as fast as its FIFO accepts it. */
#ifndef VIREO_VMM_CONSOLE_H
#define VIREO_VMM_CONSOLE_H

#include "vmm/config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

/* Hands input to the guest; returns how many bytes were taken. */
typedef size_t (*console_input_fn)(void *ctx, const uint8_t *buf, size_t len);

enum console_action { CONSOLE_NOTHING, CONSOLE_QUIT };

struct console {
	const char *label; /* in messages: "serial console", "virtio console (hvc0)" */
	enum serial_kind kind;
	int out_fd;	      /* guest output goes here; -1: dropped */
	int in_fd;	      /* input comes from here; -1: none */
	int listen_fd;	      /* socket: the listening socket */
	int pty_slave;	      /* pty: kept open so output buffers until a client attaches */
	bool out_nonblocking; /* pty/socket: drop output nobody reads */
	bool raw_tty;	      /* stdin was a terminal we put in raw mode */
	bool escapes;	      /* Ctrl-A commands are active (interactive terminal) */
	bool escape_pending;
	struct termios saved_termios;
	char pty_name[64];
	const char *socket_path;
	pthread_mutex_t out_lock;
	console_input_fn input_fn;
	void *input_ctx;
	uint8_t pending[512]; /* read from the host, not yet taken by the UART */
	size_t pending_len, pending_off;
	bool in_eof;
};

/* Open the backend chosen by cfg->serial.  Returns 0 or -1 (err set). */
int console_open(struct console *c, const struct vmm_config *cfg, char *err, size_t errlen);

/* The same for another console (--console): `label` names it in messages. */
int console_open_labeled(struct console *c, const struct vmm_config *cfg, const char *label,
			 char *err, size_t errlen);

/* Restore the terminal, close fds, remove the socket file. */
void console_close(struct console *c);

void console_set_input(struct console *c, console_input_fn fn, void *ctx);

/* Write guest output (any thread). */
void console_output(struct console *c, const uint8_t *buf, size_t len);

/* Write a host-side message (help text) to the console's terminal. */
void console_message(struct console *c, const char *text);

/* The fd the main loop should poll for input now, -1 if none (no input
 * backend, end of file, or pending bytes still waiting for the UART). */
int console_input_poll_fd(const struct console *c);

/* Listening socket to poll for new clients, -1 if none. */
int console_listen_fd(const struct console *c);

/* Read what is available on the input fd and pass it on. */
enum console_action console_read_input(struct console *c);

/* The UART has room again: pass pending bytes on. */
void console_flush_pending(struct console *c);

/* Accept a new socket client (replacing the old one). */
void console_accept(struct console *c);

/* Feed raw input bytes through escape handling (exposed for tests). */
enum console_action console_feed(struct console *c, const uint8_t *buf, size_t len);

#endif
