/* The control socket's protocol (control.c) with a fake command table:
 * greeting, replies with ids, every kind of bad request, an oversized
 * line, pipelined requests, events, many clients, a client that leaves
 * mid-line, and the socket file's mode and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/json_util.h"
#include "vmm/control.h"

static int calls;

static int cmd_echo(void *opaque, struct json_object *args, struct json_object **ret,
		    struct control_error *e)
{
	calls++;
	struct json_object *o = json_object_new_object();
	json_add_string(o, "who", opaque);
	if (args)
		json_object_object_add(o, "args", json_object_get(args));
	*ret = o;
	return 0;
}

static int cmd_empty(void *opaque, struct json_object *args, struct json_object **ret,
		     struct control_error *e)
{
	calls++;
	return 0;
}

static int cmd_fail(void *opaque, struct json_object *args, struct json_object **ret,
		    struct control_error *e)
{
	e->cls = "DeviceNotActive";
	snprintf(e->desc, sizeof(e->desc), "nothing to do");
	return -1;
}

static const struct control_command cmds[] = {
	{"echo", cmd_echo},
	{"empty", cmd_empty},
	{"fail", cmd_fail},
	{NULL, NULL},
};

struct fixture {
	char dir[64], path[128];
	struct control *c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/vireo-ctl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/c.sock", f->dir);
	char err[256];
	f->c = control_open(f->path, cmds, "me", err, sizeof(err));
	assert_non_null(f->c);
	calls = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	control_close(f->c);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Let the server handle whatever is pending. */
static void pump(struct control *c)
{
	for (int i = 0; i < 20; i++) {
		struct pollfd pfd[1 + CONTROL_MAX_CLIENTS];
		unsigned n = control_poll_fds(c, pfd, 1 + CONTROL_MAX_CLIENTS);
		if (poll(pfd, n, 5) <= 0)
			return;
		control_handle(c, pfd, n);
	}
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* One line from the server (pumping it meanwhile), parsed. */
static struct json_object *read_line(struct control *c, int fd)
{
	char buf[8192];
	size_t len = 0;
	for (int tries = 0; tries < 200 && len < sizeof(buf); tries++) {
		pump(c);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10) <= 0)
			continue;
		while (len < sizeof(buf)) {
			ssize_t n = recv(fd, buf + len, 1, MSG_DONTWAIT);
			if (n <= 0)
				break;
			if (buf[len++] == '\n') {
				char err[128];
				struct json_object *o =
					json_parse_buffer(buf, len - 1, err, sizeof(err));
				assert_non_null(o);
				return o;
			}
		}
	}
	fail_msg("no line from the control socket");
	return NULL;
}

static void send_str(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static struct json_object *request(struct control *c, int fd, const char *line)
{
	send_str(fd, line);
	return read_line(c, fd);
}

static int client(struct fixture *f)
{
	int fd = connect_to(f->path);
	struct json_object *g = read_line(f->c, fd);
	struct json_object *q;
	assert_true(json_object_object_get_ex(g, "QMP", &q));
	json_object_put(g);
	return fd;
}

static const char *error_class(struct json_object *o)
{
	struct json_object *e;
	assert_true(json_object_object_get_ex(o, "error", &e));
	return json_get_string(e, "class");
}

static const char *error_desc(struct json_object *o)
{
	struct json_object *e;
	assert_true(json_object_object_get_ex(o, "error", &e));
	return json_get_string(e, "desc");
}

static void socket_is_private_and_removed_at_close(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	control_close(f->c);
	assert_int_not_equal(lstat(f->path, &st), 0);
	char err[256];
	f->c = control_open(f->path, cmds, "me", err, sizeof(err));
	assert_non_null(f->c);
}

static void refuses_a_non_socket_and_replaces_a_stale_socket(void **state)
{
	struct fixture *f = *state;
	char p[160], err[256];
	snprintf(p, sizeof(p), "%s/file", f->dir);
	FILE *x = fopen(p, "w");
	fputs("keep me", x);
	fclose(x);
	assert_null(control_open(p, cmds, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "not a socket"));
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 7);
	unlink(p);
	/* A second server on the same path takes it over (a stale socket). */
	struct control *c2 = control_open(f->path, cmds, "two", err, sizeof(err));
	assert_non_null(c2);
	control_close(c2);
}

static void replies_carry_return_and_id(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	struct json_object *r = request(f->c, fd, "{\"execute\":\"echo\",\"id\":7}\n"), *v;
	assert_true(json_object_object_get_ex(r, "return", &v));
	assert_string_equal(json_get_string(v, "who"), "me");
	int64_t id = 0;
	assert_int_equal(json_get_int64(r, "id", &id), 1);
	assert_int_equal(id, 7);
	json_object_put(r);
	r = request(f->c, fd, "{\"execute\":\"empty\",\"arguments\":{}}\r\n");
	assert_true(json_object_object_get_ex(r, "return", &v));
	assert_true(json_object_is_type(v, json_type_object));
	assert_int_equal(json_object_object_length(v), 0);
	json_object_put(r);
	/* QMP clients negotiate first; that works and is not a command of ours. */
	r = request(f->c, fd, "{\"execute\":\"qmp_capabilities\"}\n");
	assert_true(json_object_object_get_ex(r, "return", &v));
	json_object_put(r);
	assert_int_equal(calls, 2);
	close(fd);
}

static void bad_requests_get_errors_naming_the_fault(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	static const struct {
		const char *line, *cls, *says;
	} bad[] = {
		{"not json\n", "GenericError", "not JSON"},
		{"{\"execute\":\n", "GenericError", "not JSON"},
		{"[1,2]\n", "GenericError", "JSON object"},
		{"\"status\"\n", "GenericError", "JSON object"},
		{"{}\n", "GenericError", "\"execute\""},
		{"{\"execute\":5}\n", "GenericError", "\"execute\""},
		{"{\"execute\":\"echo\",\"arguments\":[]}\n", "GenericError", "\"arguments\""},
		{"{\"execute\":\"nosuch\"}\n", "CommandNotFound", "'nosuch'"},
		{"{\"execute\":\"fail\"}\n", "DeviceNotActive", "fail: nothing to do"},
		{"{\"execute\":\"echo\"}{\"x\":1}\n", "GenericError", "not JSON"},
		{"\x01\x02\xff\n", "GenericError", "not JSON"},
		{"{\"execute\":\"ec\\u0000ho\"}\n", "CommandNotFound", "unknown command"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_object *r = request(f->c, fd, bad[i].line);
		assert_string_equal(error_class(r), bad[i].cls);
		if (!strstr(error_desc(r), bad[i].says))
			fail_msg("'%s': '%s' does not say '%s'", bad[i].line, error_desc(r),
				 bad[i].says);
		json_object_put(r);
	}
	assert_int_equal(calls, 0);
	/* The connection still works. */
	struct json_object *r = request(f->c, fd, "{\"execute\":\"empty\"}\n");
	assert_true(json_object_object_get_ex(r, "return", NULL));
	json_object_put(r);
	close(fd);
}

static void an_oversized_line_is_refused_once_and_skipped(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	size_t big = 3 * CONTROL_LINE_MAX;
	char *junk = malloc(big + 1);
	memset(junk, 'x', big);
	junk[big] = '\0';
	memcpy(junk, "{\"execute\":\"echo\",\"pad\":\"", 25);
	/* Written in pieces while the server reads: the socket buffer is smaller. */
	for (size_t off = 0; off < big; off += 4096) {
		size_t n = big - off < 4096 ? big - off : 4096;
		assert_int_equal(write(fd, junk + off, n), (ssize_t)n);
		pump(f->c);
	}
	free(junk);
	send_str(fd, "\"}\n{\"execute\":\"empty\"}\n");
	struct json_object *r = read_line(f->c, fd);
	assert_non_null(strstr(error_desc(r), "longer than"));
	json_object_put(r);
	r = read_line(f->c, fd);
	assert_true(json_object_object_get_ex(r, "return", NULL));
	json_object_put(r);
	assert_int_equal(calls, 1); /* the long line never ran */
	close(fd);
}

static void pipelined_requests_answer_in_order(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	send_str(fd, "{\"execute\":\"echo\",\"id\":1}\n\n{\"execute\":\"nosuch\",\"id\":2}\n"
		     "{\"execute\":\"echo\",\"id\":3}\n");
	for (int want = 1; want <= 3; want++) {
		struct json_object *r = read_line(f->c, fd);
		int64_t id = 0;
		assert_int_equal(json_get_int64(r, "id", &id), 1);
		assert_int_equal(id, want);
		assert_int_equal(json_object_object_get_ex(r, "error", NULL), want == 2);
		json_object_put(r);
	}
	close(fd);
}

static void events_reach_every_client(void **state)
{
	struct fixture *f = *state;
	int a = client(f), b = client(f);
	assert_int_equal(control_clients(f->c), 2);
	struct json_object *d = json_object_new_object();
	json_add_string(d, "reason", "test");
	control_event(f->c, "PAUSED", d);
	int fds[2] = {a, b};
	for (int i = 0; i < 2; i++) {
		struct json_object *r = read_line(f->c, fds[i]), *t, *data;
		assert_string_equal(json_get_string(r, "event"), "PAUSED");
		assert_true(json_object_object_get_ex(r, "timestamp", &t));
		assert_true(json_object_object_get_ex(r, "data", &data));
		assert_string_equal(json_get_string(data, "reason"), "test");
		json_object_put(r);
	}
	close(a);
	close(b);
	pump(f->c);
	assert_int_equal(control_clients(f->c), 0);
}

static void a_client_leaving_mid_line_is_harmless(void **state)
{
	struct fixture *f = *state;
	int a = client(f), b = client(f);
	send_str(a, "{\"execute\":\"ec");
	pump(f->c);
	close(a);
	pump(f->c);
	assert_int_equal(control_clients(f->c), 1);
	assert_int_equal(calls, 0);
	struct json_object *r = request(f->c, b, "{\"execute\":\"echo\"}\n");
	assert_true(json_object_object_get_ex(r, "return", NULL));
	json_object_put(r);
	close(b);
}

static void too_many_clients_are_told_and_refused(void **state)
{
	struct fixture *f = *state;
	int fds[CONTROL_MAX_CLIENTS];
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		fds[i] = client(f);
	int extra = connect_to(f->path);
	struct json_object *r = read_line(f->c, extra);
	assert_non_null(strstr(error_desc(r), "too many"));
	json_object_put(r);
	assert_int_equal(control_clients(f->c), CONTROL_MAX_CLIENTS);
	close(extra);
	/* A socketpair adopted when there is room again. */
	close(fds[0]);
	pump(f->c);
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(control_adopt(f->c, sp[0]), 0);
	struct json_object *g = read_line(f->c, sp[1]);
	assert_true(json_object_object_get_ex(g, "QMP", NULL));
	json_object_put(g);
	r = request(f->c, sp[1], "{\"execute\":\"echo\"}\n");
	assert_true(json_object_object_get_ex(r, "return", NULL));
	json_object_put(r);
	close(sp[1]);
	for (int i = 1; i < CONTROL_MAX_CLIENTS; i++)
		close(fds[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(socket_is_private_and_removed_at_close, setup,
						teardown),
		cmocka_unit_test_setup_teardown(refuses_a_non_socket_and_replaces_a_stale_socket,
						setup, teardown),
		cmocka_unit_test_setup_teardown(replies_carry_return_and_id, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_requests_get_errors_naming_the_fault, setup,
						teardown),
		cmocka_unit_test_setup_teardown(an_oversized_line_is_refused_once_and_skipped,
						setup, teardown),
		cmocka_unit_test_setup_teardown(pipelined_requests_answer_in_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(events_reach_every_client, setup, teardown),
		cmocka_unit_test_setup_teardown(a_client_leaving_mid_line_is_harmless, setup,
						teardown),
		cmocka_unit_test_setup_teardown(too_many_clients_are_told_and_refused, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
