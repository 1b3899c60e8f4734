/* Pool XML: <pool type='dir'><name/><uuid/><target><path/></target></pool>. */
#include "common/uuid.h"
#include "daemon/domain_def.h"
#include "daemon/pool_def.h"
#include "daemon/xml_subset.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

static const struct xml_rule rules[] = {
	{"/pool", {"type"}, false},
	{"/pool/name", {0}, true},
	{"/pool/uuid", {0}, true},
	/* Output of pool-dumpxml, accepted back and recomputed (libvirt does the same). */
	{"/pool/capacity", {"unit"}, true},
	{"/pool/allocation", {"unit"}, true},
	{"/pool/available", {"unit"}, true},
	{"/pool/source", {0}, false},
	{"/pool/target", {0}, false},
	{"/pool/target/path", {0}, true},
};

static const char *const singletons[] = {
	"/pool/name",	   "/pool/uuid",   "/pool/capacity", "/pool/allocation",
	"/pool/available", "/pool/source", "/pool/target",   "/pool/target/path",
};

static const struct xml_schema pool_schema = {rules, sizeof(rules) / sizeof(rules[0]), singletons,
					      sizeof(singletons) / sizeof(singletons[0])};

bool volume_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > 200 || name[0] == '.')
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_.+-", *p))
			return false;
	return true;
}

struct pool_def *pool_xml_parse(const char *xml, size_t len, char *err, size_t errlen)
{
	struct xml_err e = {err, errlen};
	xmlDocPtr doc = xml_read_untrusted(xml, len, 64 * 1024, "pool", err, errlen);
	if (!doc)
		return NULL;
	struct pool_def *d = calloc(1, sizeof(*d));
	xmlNodePtr root = xmlDocGetRootElement(doc);
	int r = -1;
	bool have_uuid = false;
	if (!d) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (!root || !xmlStrEqual(root->name, (const xmlChar *)"pool")) {
		xml_fail_at(&e, root, "the root element must be <pool>");
		goto out;
	}
	if (xml_validate(&e, root, &pool_schema) < 0)
		goto out;
	char *type = xml_attr(root, "type");
	if (!type || strcmp(type, "dir") != 0) {
		if (type)
			xml_bad_attr(&e, root, "type", type, "dir");
		else
			xml_fail_at(&e, root, "missing attribute 'type' (dir)");
		free(type);
		goto out;
	}
	free(type);
	for (xmlNodePtr c = root->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		const char *n = (const char *)c->name;
		if (strcmp(n, "name") == 0) {
			d->name = xml_text(c);
			if (!domain_name_valid(d->name)) {
				xml_fail_at(&e, c, "invalid pool name '%s'", d->name);
				goto out;
			}
		} else if (strcmp(n, "uuid") == 0) {
			if (xml_uuid(&e, c, d->uuid) < 0)
				goto out;
			have_uuid = true;
		} else if (strcmp(n, "source") == 0) {
			for (xmlNodePtr s = c->children; s; s = s->next)
				if (s->type == XML_ELEMENT_NODE) {
					xml_fail_at(&e, s, "a dir pool has no source");
					goto out;
				}
		} else if (strcmp(n, "target") == 0) {
			for (xmlNodePtr t = c->children; t; t = t->next) {
				if (t->type != XML_ELEMENT_NODE)
					continue;
				d->path = xml_text(t);
				size_t pl = strlen(d->path);
				if (d->path[0] != '/' || pl > 3000) {
					xml_fail_at(&e, t, "expected an absolute directory path");
					goto out;
				}
				while (pl > 1 && d->path[pl - 1] == '/')
					d->path[--pl] = '\0';
			}
		}
	}
	if (!d->name) {
		xml_fail_at(&e, root, "missing <name>");
		goto out;
	}
	if (!d->path) {
		xml_fail_at(&e, root, "missing <target><path>DIR</path></target>");
		goto out;
	}
	if (!have_uuid && uuid_generate_v4(d->uuid) < 0) {
		snprintf(err, errlen, "cannot generate a UUID");
		goto out;
	}
	r = 0;
out:
	xmlFreeDoc(doc);
	if (r < 0) {
		pool_def_free(d);
		return NULL;
	}
	return d;
}

char *pool_xml_format(const struct pool_def *def, bool with_sizes)
{
	char buf[64];
	xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlNodePtr root = xmlNewNode(NULL, (const xmlChar *)"pool");
	xmlDocSetRootElement(doc, root);
	xml_set(root, "type", "dir");
	xml_add(root, "name", def->name);
	char u[UUID_STR_LEN];
	uuid_to_string(def->uuid, u);
	xml_add(root, "uuid", u);
	struct statvfs st;
	if (with_sizes && statvfs(def->path, &st) == 0) {
		uint64_t cap = (uint64_t)st.f_blocks * st.f_frsize;
		uint64_t avail = (uint64_t)st.f_bavail * st.f_frsize;
		uint64_t used = cap - (uint64_t)st.f_bfree * st.f_frsize;
		snprintf(buf, sizeof(buf), "%" PRIu64, cap);
		xml_set(xml_add(root, "capacity", buf), "unit", "bytes");
		snprintf(buf, sizeof(buf), "%" PRIu64, used);
		xml_set(xml_add(root, "allocation", buf), "unit", "bytes");
		snprintf(buf, sizeof(buf), "%" PRIu64, avail);
		xml_set(xml_add(root, "available", buf), "unit", "bytes");
	}
	xml_add(xml_add(root, "target", NULL), "path", def->path);
	char *r = xml_dump(doc);
	xmlFreeDoc(doc);
	return r;
}

void pool_def_free(struct pool_def *d)
{
	if (!d)
		return;
	free(d->name);
	free(d->path);
	free(d);
}
