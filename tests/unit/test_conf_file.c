#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/conf_file.h"
#include "daemon/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct seen {
	char text[1024];
};

static int collect(void *ctx, const char *key, const char *value, char *err, size_t errlen)
{
	struct seen *s = ctx;
	if (strcmp(key, "bad") == 0) {
		snprintf(err, errlen, "bad: no");
		return -1;
	}
	size_t n = strlen(s->text);
	snprintf(s->text + n, sizeof(s->text) - n, "[%s=%s]", key, value);
	return 0;
}

static void test_syntax(void **state)
{
	struct seen s = {""};
	char err[256];
	const char *text = "# comment\n"
			   "\n"
			   "  a = 1\n"
			   "b=\"two words\" # trailing comment\n"
			   "c = \"q\\\"uote\"\r\n"
			   "d_e.f-g = /x/y\n";
	assert_int_equal(conf_parse_text(text, "t.conf", collect, &s, err, sizeof(err)), 0);
	assert_string_equal(s.text, "[a=1][b=two words][c=q\"uote][d_e.f-g=/x/y]");
}

static void test_errors_name_line(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"a = 1\nb 2\n", "t.conf:2: 'b': expected '='"},
		{"a = \"open\n", "t.conf:1: 'a': unterminated quoted value"},
		{"a = x y\n", "t.conf:1: 'a': unexpected text after the value"},
		{"= 3\n", "t.conf:1: expected a setting name"},
		{"\n\nbad = 1\n", "t.conf:3: bad: no"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct seen s = {""};
		char err[256] = "";
		assert_int_equal(
			conf_parse_text(cases[i].text, "t.conf", collect, &s, err, sizeof(err)),
			-1);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
	}
}

static void test_vireod_config(void **state)
{
	char dir[] = "/tmp/vireo-conf-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct vireod_config cfg;
	vireod_config_defaults(&cfg, dir);
	char p[512];
	snprintf(p, sizeof(p), "%s/run/vireo/vireod.sock", dir);
	assert_string_equal(cfg.socket_path, p);
	snprintf(p, sizeof(p), "%s/var/lib/vireo/images", dir);
	assert_string_equal(cfg.image_dir, p);
	/* A missing file is fine: defaults apply. */
	char err[512];
	assert_int_equal(vireod_config_load(&cfg, err, sizeof(err)), 0);
	snprintf(cfg.config_file, sizeof(cfg.config_file), "%s/vireod.conf", dir);
	FILE *f = fopen(cfg.config_file, "w");
	assert_non_null(f);
	fputs("log_level = debug\ndefault_driver = qemu\nautostart = no\nstate_dir = /state\n", f);
	fclose(f);
	assert_int_equal(vireod_config_load(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.log_level, LOG_DEBUG);
	assert_int_equal(cfg.default_driver, DOMAIN_TYPE_QEMU);
	assert_false(cfg.autostart);
	snprintf(p, sizeof(p), "%s/state", dir); /* under --root, paths are inside the root */
	assert_string_equal(cfg.state_dir, p);
	f = fopen(cfg.config_file, "w");
	fputs("log_level = loud\n", f);
	fclose(f);
	assert_int_equal(vireod_config_load(&cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "vireod.conf:1: log_level: 'loud'"));
	f = fopen(cfg.config_file, "w");
	fputs("\nsocket_path = /x\n", f);
	fclose(f);
	assert_int_equal(vireod_config_load(&cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: unknown setting 'socket_path'"));
	f = fopen(cfg.config_file, "w");
	fputs("log_dir = relative/dir\n", f);
	fclose(f);
	assert_int_equal(vireod_config_load(&cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not an absolute path"));
	unlink(cfg.config_file);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_errors_name_line),
		cmocka_unit_test(test_vireod_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
