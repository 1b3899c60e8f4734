#include "console.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ESCAPE_CHAR 0x01 /* Ctrl-A */

static const char escape_help[] = "\r\nvireo-vmm console keys:\r\n"
				  "  Ctrl-A x    quit (the VM stops at once)\r\n"
				  "  Ctrl-A h    this help\r\n"
				  "  Ctrl-A Ctrl-A  send Ctrl-A to the guest\r\n";

static int open_socket(struct console *c, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "--serial socket:%s: path too long (max %zu bytes)", path,
			 sizeof(sa.sun_path) - 1);
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "--serial socket:%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	/* A stale socket from an earlier run may be replaced; anything else
	 * at that path is the user's and is left alone. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		snprintf(err, errlen, "--serial socket:%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	c->listen_fd = fd;
	c->socket_path = path;
	return 0;
}

int console_open(struct console *c, const struct vmm_config *cfg, char *err, size_t errlen)
{
	return console_open_labeled(c, cfg, "serial console", err, errlen);
}

int console_open_labeled(struct console *c, const struct vmm_config *cfg, const char *label,
			 char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->label = label;
	c->kind = cfg->serial;
	c->out_fd = c->in_fd = c->listen_fd = c->pty_slave = -1;
	pthread_mutex_init(&c->out_lock, NULL);
	switch (cfg->serial) {
	case SERIAL_NONE: return 0;
	case SERIAL_STDIO:
		c->out_fd = STDOUT_FILENO;
		c->in_fd = STDIN_FILENO;
		if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &c->saved_termios) == 0) {
			struct termios t = c->saved_termios;
			/* Raw: every key, Ctrl-C included, goes to the guest. */
			cfmakeraw(&t);
			if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
				c->raw_tty = true;
			c->escapes = true;
		}
		return 0;
	case SERIAL_FILE: {
		c->out_fd = open(cfg->serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->out_fd < 0) {
			snprintf(err, errlen, "--serial file:%s: %s", cfg->serial_path,
				 strerror(errno));
			return -1;
		}
		return 0;
	}
	case SERIAL_PTY: {
		int master, slave;
		if (openpty(&master, &slave, c->pty_name, NULL, NULL) < 0) {
			snprintf(err, errlen, "--serial pty: cannot open a pseudo-terminal: %s",
				 strerror(errno));
			return -1;
		}
		struct termios t;
		if (tcgetattr(slave, &t) == 0) {
			cfmakeraw(&t);
			tcsetattr(slave, TCSANOW, &t);
		}
		/* Keep the slave open so output is buffered (not EIO) until a
		 * client attaches; drop output when the buffer is full. */
		fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
		fcntl(master, F_SETFD, FD_CLOEXEC);
		fcntl(slave, F_SETFD, FD_CLOEXEC);
		c->out_fd = c->in_fd = master;
		c->pty_slave = slave;
		c->out_nonblocking = true;
		log_info("%s on %s", c->label, c->pty_name);
		return 0;
	}
	case SERIAL_SOCKET:
		c->out_nonblocking = true;
		if (open_socket(c, cfg->serial_path, err, errlen) < 0)
			return -1;
		log_info("%s on unix socket %s", c->label, cfg->serial_path);
		return 0;
	}
	return 0;
}

void console_close(struct console *c)
{
	if (c->raw_tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &c->saved_termios);
	c->raw_tty = false;
	if (c->kind == SERIAL_FILE || c->kind == SERIAL_PTY) {
		if (c->out_fd >= 0)
			close(c->out_fd);
		if (c->pty_slave >= 0)
			close(c->pty_slave);
	} else if (c->kind == SERIAL_SOCKET) {
		if (c->in_fd >= 0)
			close(c->in_fd);
		if (c->listen_fd >= 0)
			close(c->listen_fd);
		if (c->socket_path)
			unlink(c->socket_path);
	}
	c->out_fd = c->in_fd = c->listen_fd = -1;
}

void console_set_input(struct console *c, console_input_fn fn, void *ctx)
{
	c->input_fn = fn;
	c->input_ctx = ctx;
}

void console_output(struct console *c, const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&c->out_lock);
	int fd = c->out_fd;
	if (fd < 0) {
		pthread_mutex_unlock(&c->out_lock);
		return;
	}
	if (c->out_nonblocking) {
		ssize_t w;
		do
			w = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (w < 0 && errno == EINTR);
		/* A pty master is no socket; what nobody reads is dropped either way. */
		if (w < 0 && errno == ENOTSOCK)
			w = write(fd, buf, len);
		(void)w;
	} else {
		write_all(fd, buf, len);
	}
	pthread_mutex_unlock(&c->out_lock);
}

void console_message(struct console *c, const char *text)
{
	int fd = c->kind == SERIAL_STDIO ? STDERR_FILENO : c->out_fd;
	if (fd >= 0)
		write_all(fd, text, strlen(text));
}

int console_input_poll_fd(const struct console *c)
{
	if (c->in_fd < 0 || c->in_eof || c->pending_off < c->pending_len)
		return -1;
	return c->in_fd;
}

int console_listen_fd(const struct console *c)
{
	return c->listen_fd;
}

void console_flush_pending(struct console *c)
{
	while (c->pending_off < c->pending_len && c->input_fn) {
		size_t n = c->input_fn(c->input_ctx, c->pending + c->pending_off,
				       c->pending_len - c->pending_off);
		if (n == 0)
			break;
		c->pending_off += n;
	}
	if (c->pending_off == c->pending_len)
		c->pending_off = c->pending_len = 0;
}

static void queue_byte(struct console *c, uint8_t b)
{
	if (c->pending_len < sizeof(c->pending))
		c->pending[c->pending_len++] = b;
}

enum console_action console_feed(struct console *c, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t b = buf[i];
		if (!c->escapes) {
			queue_byte(c, b);
			continue;
		}
		if (c->escape_pending) {
			c->escape_pending = false;
			switch (b) {
			case 'x':
			case 'X': return CONSOLE_QUIT;
			case 'h':
			case 'H':
			case '?': console_message(c, escape_help); continue;
			case ESCAPE_CHAR: queue_byte(c, b); continue;
			default: continue; /* unknown command: swallowed, as QEMU does */
			}
		}
		if (b == ESCAPE_CHAR)
			c->escape_pending = true;
		else
			queue_byte(c, b);
	}
	return CONSOLE_NOTHING;
}

enum console_action console_read_input(struct console *c)
{
	if (c->in_fd < 0)
		return CONSOLE_NOTHING;
	/* Read no more than the pending buffer can hold after escapes. */
	uint8_t buf[sizeof(c->pending)];
	size_t room = sizeof(c->pending) - c->pending_len;
	if (room == 0)
		return CONSOLE_NOTHING;
	ssize_t n = read(c->in_fd, buf, room);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return CONSOLE_NOTHING;
	if (n <= 0) {
		if (c->kind == SERIAL_SOCKET) {
			/* The client went away; wait for the next one. */
			pthread_mutex_lock(&c->out_lock);
			close(c->in_fd);
			c->in_fd = c->out_fd = -1;
			pthread_mutex_unlock(&c->out_lock);
		} else if (c->kind == SERIAL_PTY && n < 0 && errno == EIO) {
			/* pty: nobody attached; keep polling later is pointless
			 * (EIO repeats), stay quiet until output resumes. */
			return CONSOLE_NOTHING;
		} else {
			c->in_eof = true;
		}
		return CONSOLE_NOTHING;
	}
	enum console_action a = console_feed(c, buf, (size_t)n);
	console_flush_pending(c);
	return a;
}

void console_accept(struct console *c)
{
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	pthread_mutex_lock(&c->out_lock);
	if (c->in_fd >= 0)
		close(c->in_fd);
	c->in_fd = c->out_fd = fd;
	pthread_mutex_unlock(&c->out_lock);
}
