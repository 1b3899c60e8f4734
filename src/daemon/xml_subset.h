/* Strict subsets of XML vocabularies (libvirt's domain, pool, volume XML): a table of the
 * element paths, their attributes and whether they hold text; everything else is refused
 * with its XPath.  Plus the small helpers the parsers and formatters share. */
#ifndef VIREO_DAEMON_XML_SUBSET_H
#define VIREO_DAEMON_XML_SUBSET_H

#include <libxml/tree.h>
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

struct xml_rule {
	const char *path; /* "/domain/devices/disk" */
	const char *attrs[5];
	bool text;
};

struct xml_schema {
	const struct xml_rule *rules;
	size_t nrules;
	const char *const *singletons; /* paths that may appear once under their parent */
	size_t nsingletons;
};

/* Where error messages go. */
struct xml_err {
	char *buf;
	size_t len;
};

/* Write "XPATH: message" (or the message alone when node is NULL); returns -1. */
int xml_fail_at(struct xml_err *e, xmlNodePtr node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Every element, attribute and text node under root must be in the schema. */
int xml_validate(struct xml_err *e, xmlNodePtr root, const struct xml_schema *s);

/* Parse an untrusted document of at most `max` bytes: no network, no entities, no DTD. */
xmlDocPtr xml_read_untrusted(const char *xml, size_t len, size_t max, const char *what, char *err,
			     size_t errlen);

/* Trimmed text content / attribute value (malloc'd; attribute NULL when absent). */
char *xml_text(xmlNodePtr node);
char *xml_attr(xmlNodePtr node, const char *name);
xmlAttrPtr xml_attr_node(xmlNodePtr node, const char *name);

/* The node's text as a UUID into uuid; "XPATH: 'text' is not a UUID" and -1
 * otherwise. */
int xml_uuid(struct xml_err *e, xmlNodePtr node, uint8_t uuid[16]);

/* "XPATH/@name: unsupported value 'v' (supported: ...)"; returns -1. */
int xml_bad_attr(struct xml_err *e, xmlNodePtr node, const char *name, const char *value,
		 const char *allowed);

xmlNodePtr xml_add(xmlNodePtr parent, const char *name, const char *text);
void xml_set(xmlNodePtr node, const char *name, const char *value);

/* The document as text without the XML declaration (malloc'd). */
char *xml_dump(xmlDocPtr doc);

#endif
