#include "cli/client.h"

#include "common/json_util.h"

#include <curl/curl.h>
#include <errno.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_MAX (64u << 20)

static char socket_path[4096] = "/run/vireo/vireod.sock";

void client_set_socket(const char *path)
{
	snprintf(socket_path, sizeof(socket_path), "%s", path);
}

const char *client_socket(void)
{
	return socket_path;
}

struct buf {
	char *data;
	size_t len;
	bool overflow;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;
	if (b->len + len > REPLY_MAX) {
		b->overflow = true;
		return 0;
	}
	char *d = realloc(b->data, b->len + len + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, ptr, len);
	b->data = d;
	b->len += len;
	d[b->len] = '\0';
	return len;
}

static CURL *make_handle(const char *method, const char *path, struct curl_slist **hdrs)
{
	CURL *c = curl_easy_init();
	if (!c)
		return NULL;
	char url[1024];
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	*hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	*hdrs = curl_slist_append(*hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
	return c;
}

static int unreachable(CURLcode rc)
{
	fprintf(stderr,
		"vireo: cannot talk to vireod at %s: %s (is vireod running? -c SOCKET "
		"chooses another socket)\n",
		socket_path, curl_easy_strerror(rc));
	return EXIT_UNREACHABLE;
}

int api_call(const char *method, const char *path, struct json_object *body,
	     struct json_object **out)
{
	struct curl_slist *hdrs = NULL;
	CURL *c = make_handle(method, path, &hdrs);
	if (!c) {
		fprintf(stderr, "vireo: cannot initialise libcurl\n");
		return EXIT_FAILED;
	}
	struct buf b = {0};
	char *text = NULL;
	if (body) {
		text = json_to_malloc_string(body, false);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	free(text);
	int ret = EXIT_OK;
	if (rc != CURLE_OK) {
		ret = b.overflow
			      ? (fprintf(stderr, "vireo: reply larger than %u bytes\n", REPLY_MAX),
				 EXIT_FAILED)
			      : unreachable(rc);
		goto out;
	}
	char err[256];
	struct json_object *o = b.len ? json_parse_buffer(b.data, b.len, err, sizeof(err)) : NULL;
	if (b.len && !o) {
		fprintf(stderr, "vireo: vireod sent a reply that is not JSON (HTTP %ld): %s\n",
			status, err);
		ret = EXIT_FAILED;
		goto out;
	}
	if (status >= 400) {
		struct json_object *e = NULL;
		const char *msg = NULL;
		if (o && json_object_object_get_ex(o, "error", &e))
			msg = json_get_string(e, "message");
		fprintf(stderr, "vireo: %s\n", msg ? msg : "request failed");
		ret = status == 404 && msg && strstr(msg, "not found") ? EXIT_NOT_FOUND
								       : EXIT_FAILED;
		json_object_put(o);
		goto out;
	}
	if (out)
		*out = o;
	else
		json_object_put(o);
out:
	free(b.data);
	return ret;
}

struct stream {
	struct buf line;
	bool (*fn)(void *ctx, const char *data);
	void *ctx;
	bool stop;
	long status;
};

static size_t on_stream(char *ptr, size_t size, size_t n, void *arg)
{
	struct stream *s = arg;
	size_t len = size * n;
	for (size_t i = 0; i < len; i++) {
		if (ptr[i] != '\n') {
			if (s->line.len < 65536 && on_data(&ptr[i], 1, 1, &s->line) != 1)
				return 0;
			continue;
		}
		if (s->line.len > 6 && strncmp(s->line.data, "data: ", 6) == 0 &&
		    !s->fn(s->ctx, s->line.data + 6)) {
			s->stop = true;
			return 0;
		}
		s->line.len = 0;
	}
	return len;
}

int api_stream(const char *path, bool (*fn)(void *ctx, const char *data), void *ctx)
{
	struct curl_slist *hdrs = NULL;
	CURL *c = make_handle("GET", path, &hdrs);
	if (!c)
		return EXIT_FAILED;
	struct stream s = {.fn = fn, .ctx = ctx};
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	free(s.line.data);
	if (rc != CURLE_OK && !s.stop)
		return unreachable(rc);
	return EXIT_OK;
}

/* The error body of a failed transfer, printed like api_call's. */
static int transfer_error(long status, struct buf *b)
{
	char err[256];
	struct json_object *o =
		b->len ? json_parse_buffer(b->data, b->len, err, sizeof(err)) : NULL;
	struct json_object *e = NULL;
	const char *msg = NULL;
	if (o && json_object_object_get_ex(o, "error", &e))
		msg = json_get_string(e, "message");
	fprintf(stderr, "vireo: %s (HTTP %ld)\n", msg ? msg : "transfer failed", status);
	int ret = status == 404 ? EXIT_NOT_FOUND : EXIT_FAILED;
	json_object_put(o);
	return ret;
}

int api_upload(const char *path, const char *file, struct json_object **out)
{
	FILE *f = fopen(file, "rb");
	if (!f) {
		fprintf(stderr, "vireo: %s: %s\n", file, strerror(errno));
		return EXIT_FAILED;
	}
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	rewind(f);
	struct curl_slist *hdrs = NULL;
	CURL *c = make_handle("PUT", path, &hdrs);
	struct buf b = {0};
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READDATA, f);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	fclose(f);
	int ret = EXIT_OK;
	if (rc != CURLE_OK)
		ret = unreachable(rc);
	else if (status >= 400)
		ret = transfer_error(status, &b);
	else if (out) {
		char err[256];
		*out = json_parse_buffer(b.data ? b.data : "{}", b.len ? b.len : 2, err,
					 sizeof(err));
	}
	free(b.data);
	return ret;
}

struct download {
	FILE *f;
	long status;
	struct buf err;
	CURL *c;
};

static size_t on_download(char *ptr, size_t size, size_t n, void *arg)
{
	struct download *d = arg;
	if (!d->status)
		curl_easy_getinfo(d->c, CURLINFO_RESPONSE_CODE, &d->status);
	if (d->status >= 400)
		return on_data(ptr, size, n, &d->err);
	return fwrite(ptr, size, n, d->f) * size;
}

int api_download(const char *path, const char *file)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.part", file);
	struct download d = {0};
	d.f = fopen(tmp, "wb");
	if (!d.f) {
		fprintf(stderr, "vireo: %s: %s\n", tmp, strerror(errno));
		return EXIT_FAILED;
	}
	struct curl_slist *hdrs = NULL;
	d.c = make_handle("GET", path, &hdrs);
	curl_easy_setopt(d.c, CURLOPT_WRITEFUNCTION, on_download);
	curl_easy_setopt(d.c, CURLOPT_WRITEDATA, &d);
	CURLcode rc = curl_easy_perform(d.c);
	long status = 0;
	curl_easy_getinfo(d.c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(d.c);
	curl_slist_free_all(hdrs);
	bool ok = fclose(d.f) == 0;
	int ret = EXIT_OK;
	if (rc != CURLE_OK && status < 400)
		ret = unreachable(rc);
	else if (status >= 400)
		ret = transfer_error(status, &d.err);
	else if (!ok || rename(tmp, file) < 0) {
		fprintf(stderr, "vireo: %s: %s\n", file, strerror(errno));
		ret = EXIT_FAILED;
	}
	if (ret)
		unlink(tmp);
	free(d.err.data);
	return ret;
}
