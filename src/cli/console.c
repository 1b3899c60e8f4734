/* vireo console: the terminal on the domain's console socket (served by
 * vireod's console relay).  Ctrl-] detaches, as in virsh. */
#include "cli/client.h"
#include "cli/vireo.h"
#include "common/json_util.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define ESCAPE_CHAR 0x1d /* Ctrl-] */

int cmd_console(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/domains/%s", name);
	struct json_object *info = NULL;
	int r = api_call("GET", path, NULL, &info);
	if (r)
		return r;
	const char *sock = json_get_string(info, "console_socket");
	if (!sock) {
		fprintf(stderr, "vireo: domain '%s' is not running (%s): no console\n", name,
			json_get_string(info, "state") ? json_get_string(info, "state") : "?");
		json_object_put(info);
		return EXIT_FAILED;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	json_object_put(info);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "vireo: cannot connect to the console of '%s' (%s): %s\n", name,
			sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_FAILED;
	}
	bool tty = isatty(0);
	struct termios saved, raw;
	if (tty && tcgetattr(0, &saved) == 0) {
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
	} else {
		tty = false;
	}
	fprintf(stderr, "Connected to domain '%s'\r\nEscape character is ^] (Ctrl + ])\r\n", name);
	bool in_open = true;
	char buf[4096];
	for (;;) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
				      {.fd = in_open ? 0 : -1, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				break;
			if (write_all(1, buf, (size_t)n) < 0)
				break;
		}
		if (p[1].revents) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n <= 0) {
				/* End of input: keep showing output until the console closes. */
				in_open = false;
				continue;
			}
			char *esc = memchr(buf, ESCAPE_CHAR, (size_t)n);
			size_t len = esc ? (size_t)(esc - buf) : (size_t)n;
			if (len && write_all(fd, buf, len) < 0)
				break;
			if (esc)
				break;
		}
	}
	if (tty)
		tcsetattr(0, TCSANOW, &saved);
	fprintf(stderr, "\r\n");
	close(fd);
	return 0;
}
