/* Strict XML subsets: see xml_subset.h. */
#include "daemon/xml_subset.h"

#include "common/uuid.h"

#include <ctype.h>
#include <libxml/parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int xml_fail_at(struct xml_err *e, xmlNodePtr node, const char *fmt, ...)
{
	char msg[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	xmlChar *path = node ? xmlGetNodePath(node) : NULL;
	if (path)
		snprintf(e->buf, e->len, "%s: %s", (char *)path, msg);
	else
		snprintf(e->buf, e->len, "%s", msg);
	xmlFree(path);
	return -1;
}

static const struct xml_rule *find_rule(const struct xml_schema *s, const char *path)
{
	for (size_t i = 0; i < s->nrules; i++)
		if (strcmp(s->rules[i].path, path) == 0)
			return &s->rules[i];
	return NULL;
}

static bool is_singleton(const struct xml_schema *s, const char *path)
{
	for (size_t i = 0; i < s->nsingletons; i++)
		if (strcmp(s->singletons[i], path) == 0)
			return true;
	return false;
}

static int validate_node(struct xml_err *e, const struct xml_schema *s, xmlNodePtr node,
			 const char *parent_path)
{
	char path[256];
	if (node->ns)
		return xml_fail_at(e, node, "XML namespaces are not supported");
	int n = snprintf(path, sizeof(path), "%s/%s", parent_path, (const char *)node->name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return xml_fail_at(e, node, "element nested too deep");
	const struct xml_rule *rule = find_rule(s, path);
	if (!rule)
		return xml_fail_at(e, node, "unsupported element <%s>", (const char *)node->name);
	if (is_singleton(s, path)) {
		for (xmlNodePtr p = node->prev; p; p = p->prev)
			if (p->type == XML_ELEMENT_NODE && xmlStrEqual(p->name, node->name))
				return xml_fail_at(e, node, "<%s> given more than once",
						   (const char *)node->name);
	}
	for (xmlAttrPtr a = node->properties; a; a = a->next) {
		bool ok = false;
		for (size_t i = 0; i < 5 && rule->attrs[i]; i++)
			ok |= strcmp(rule->attrs[i], (const char *)a->name) == 0;
		if (!ok || a->ns)
			return xml_fail_at(e, (xmlNodePtr)a, "unsupported attribute '%s' of <%s>",
					   (const char *)a->name, (const char *)node->name);
	}
	for (xmlNodePtr c = node->children; c; c = c->next) {
		switch (c->type) {
		case XML_ELEMENT_NODE:
			if (validate_node(e, s, c, path) < 0)
				return -1;
			break;
		case XML_TEXT_NODE:
		case XML_CDATA_SECTION_NODE:
			if (!rule->text) {
				for (const xmlChar *p = c->content; p && *p; p++)
					if (!isspace(*p))
						return xml_fail_at(e, node, "<%s> takes no text",
								   (const char *)node->name);
			}
			break;
		case XML_COMMENT_NODE: break;
		default: return xml_fail_at(e, c, "unsupported XML node (type %d)", (int)c->type);
		}
	}
	return 0;
}

int xml_validate(struct xml_err *e, xmlNodePtr root, const struct xml_schema *s)
{
	return validate_node(e, s, root, "");
}

char *xml_text(xmlNodePtr node)
{
	xmlChar *t = xmlNodeGetContent(node);
	if (!t)
		return strdup("");
	/* Trim surrounding white space. */
	char *s = (char *)t, *end = s + strlen(s);
	while (*s && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	char *r = strndup(s, (size_t)(end - s));
	xmlFree(t);
	return r;
}

char *xml_attr(xmlNodePtr node, const char *name)
{
	xmlChar *v = xmlGetNoNsProp(node, (const xmlChar *)name);
	if (!v)
		return NULL;
	char *r = strdup((char *)v);
	xmlFree(v);
	return r;
}

xmlAttrPtr xml_attr_node(xmlNodePtr node, const char *name)
{
	return xmlHasProp(node, (const xmlChar *)name);
}

int xml_uuid(struct xml_err *e, xmlNodePtr node, uint8_t uuid[16])
{
	char *t = xml_text(node);
	int r = uuid_from_string(t, uuid);
	if (r < 0)
		xml_fail_at(e, node, "'%s' is not a UUID", t);
	free(t);
	return r < 0 ? -1 : 0;
}

int xml_bad_attr(struct xml_err *e, xmlNodePtr node, const char *name, const char *value,
		 const char *allowed)
{
	return xml_fail_at(e, (xmlNodePtr)xml_attr_node(node, name),
			   "unsupported value '%s' (supported: %s)", value, allowed);
}

xmlDocPtr xml_read_untrusted(const char *xml, size_t len, size_t max, const char *what, char *err,
			     size_t errlen)
{
	if (len > max) {
		snprintf(err, errlen, "%s XML of %zu bytes is larger than the %zu allowed", what,
			 len, max);
		return NULL;
	}
	if (len == 0) {
		snprintf(err, errlen, "empty %s XML", what);
		return NULL;
	}
	/* No network, no entity expansion, no DTD loading: the document is untrusted. */
	xmlDocPtr doc = xmlReadMemory(xml, (int)len, "input.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *xe = xmlGetLastError();
		if (xe && xe->message) {
			char msg[256];
			snprintf(msg, sizeof(msg), "%s", xe->message);
			msg[strcspn(msg, "\n")] = '\0';
			snprintf(err, errlen, "malformed XML at line %d: %s", xe->line, msg);
		} else {
			snprintf(err, errlen, "malformed XML");
		}
		xmlResetLastError();
		return NULL;
	}
	if (doc->intSubset || doc->extSubset) {
		snprintf(err, errlen, "a <!DOCTYPE> is not allowed in %s XML", what);
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

xmlNodePtr xml_add(xmlNodePtr parent, const char *name, const char *text)
{
	return xmlNewTextChild(parent, NULL, (const xmlChar *)name, (const xmlChar *)text);
}

void xml_set(xmlNodePtr node, const char *name, const char *value)
{
	xmlNewProp(node, (const xmlChar *)name, (const xmlChar *)value);
}

char *xml_dump(xmlDocPtr doc)
{
	xmlChar *out = NULL;
	int size = 0;
	xmlDocDumpFormatMemoryEnc(doc, &out, &size, "UTF-8", 1);
	/* Drop the "<?xml ...?>" declaration, as libvirt's dumpxml does. */
	char *s = (char *)out, *body = s;
	if (s && strncmp(s, "<?xml", 5) == 0) {
		char *nl = strchr(s, '\n');
		body = nl ? nl + 1 : s;
	}
	char *r = strdup(body ? body : "");
	xmlFree(out);
	return r;
}
