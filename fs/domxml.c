/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <libxml/xpath.h>

#include "../common/error.h"
#include "domxml-int.h"
#include "domxml.h"
#include "path.h"

static char *prop(xmlNodePtr node, const char *name)
{
	xmlChar *v = xmlGetProp(node, (const xmlChar *)name);
	char *s = v ? strdup((const char *)v) : NULL;

	xmlFree(v);
	return s;
}

static xmlNodePtr child(xmlNodePtr node, const char *name)
{
	for (xmlNodePtr c = node->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE &&
		    xmlStrEqual(c->name, (const xmlChar *)name))
			return c;
	return NULL;
}

static char *child_text(xmlNodePtr node, const char *name)
{
	xmlNodePtr c = child(node, name);
	xmlChar *v;
	char *s;

	if (!c)
		return NULL;
	v = xmlNodeGetContent(c);
	s = v ? strdup((const char *)v) : NULL;
	xmlFree(v);
	return s;
}

void domxml_disk_free(struct disk *d)
{
	free(d->dev);
	free(d->format);
	free(d->path);
	free(d->pool);
	free(d->volume);
	memset(d, 0, sizeof *d);
}

/* An attribute's value in the document, NULL when absent.  The value is
 * the attribute's one text node: without a DTD there are no entity
 * references left in it. */
static const char *attr(const xmlNode *node, const char *name)
{
	xmlAttrPtr a = node ? xmlHasProp(node, (const xmlChar *)name) : NULL;

	if (!a)
		return NULL;
	if (!a->children || !a->children->content)
		return "";
	return (const char *)a->children->content;
}

static bool attr_is(const xmlNode *node, const char *name, const char *value)
{
	const char *v = attr(node, name);

	return v && strcmp(v, value) == 0;
}

static const xmlNode *first_child(const xmlNode *node, const char *name)
{
	for (const xmlNode *c = node->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE &&
		    xmlStrEqual(c->name, (const xmlChar *)name))
			return c;
	return NULL;
}

enum disk_verdict domxml_disk_rule(const xmlNode *node, struct disk_view *view)
{
	const xmlNode *source = first_child(node, "source"),
		      *target = first_child(node, "target"),
		      *driver = first_child(node, "driver");
	const char *device = attr(node, "device"), *type = attr(node, "type");
	struct disk_view v = { .readonly =
				   first_child(node, "readonly") != NULL };
	enum disk_verdict r;

	v.dev = attr(target, "dev");
	if (attr_is(node, "device", "cdrom") ||
	    attr_is(node, "device", "floppy")) {
		r = source ? DISK_REMOVABLE : DISK_NO_MEDIA;
		goto out;
	}
	if (device && strcmp(device, "disk") != 0 &&
	    strcmp(device, "lun") != 0) {
		r = DISK_OTHER_DEVICE;
		goto out;
	}
	if (!type || strcmp(type, "file") == 0) {
		v.source_type = DISK_FILE;
		v.path = attr(source, "file");
	} else if (strcmp(type, "block") == 0) {
		v.source_type = DISK_BLOCK;
		v.path = attr(source, "dev");
	} else if (strcmp(type, "volume") == 0) {
		v.source_type = DISK_VOLUME;
		v.pool = attr(source, "pool");
		v.volume = attr(source, "volume");
	} else {
		r = strcmp(type, "network") == 0 ? DISK_NETWORK
						 : DISK_OTHER_TYPE;
		goto out;
	}
	v.format = driver ? attr(driver, "type") : NULL;
	if (!v.format)
		v.format = "raw";
	if (!v.dev || !path_word_ok(v.dev))
		r = DISK_BAD_TARGET;
	else if (v.source_type == DISK_VOLUME)
		r = !v.pool || !*v.pool || !v.volume || !*v.volume
			? DISK_BAD_VOLUME
			: DISK_LISTED;
	else if (!v.path || !*v.path)
		r = DISK_EMPTY;
	else if (v.path[0] != '/')
		r = DISK_RELATIVE;
	else
		r = DISK_LISTED;
	if (r == DISK_LISTED && !path_word_ok(v.format))
		r = DISK_BAD_FORMAT;
out:
	if (view)
		*view = v;
	return r;
}

const char *domxml_disk_why(enum disk_verdict v)
{
	switch (v) {
	case DISK_LISTED:
		return "listed";
	case DISK_REMOVABLE:
		return "removable media are not copied";
	case DISK_NO_MEDIA:
		return "empty removable drive";
	case DISK_OTHER_DEVICE:
		return "unsupported device kind";
	case DISK_NETWORK:
		return "network disks are not streamed";
	case DISK_OTHER_TYPE:
		return "unsupported disk type";
	case DISK_EMPTY:
	case DISK_RELATIVE:
		return "no absolute source path";
	case DISK_BAD_TARGET:
		return "missing or unusable target dev";
	case DISK_BAD_VOLUME:
		return "volume disk without pool or volume";
	case DISK_BAD_FORMAT:
		return "unusable driver type";
	}
	return "unknown";
}

/* A copy of s, or NULL (then *nomem set) when s is not NULL. */
static char *dup_str(const char *s, bool *nomem)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*nomem = true;
	return d;
}

/* Fill d from a <disk> element the rule lists.  Returns 0, or -1 out of
 * memory (d is then the caller's to free). */
static int read_disk(const struct disk_view *v, struct disk *d)
{
	bool nomem = false;

	memset(d, 0, sizeof *d);
	d->dev = dup_str(v->dev, &nomem);
	d->format = dup_str(v->format, &nomem);
	d->source_type = v->source_type;
	d->path = dup_str(v->path, &nomem);
	d->pool = dup_str(v->pool, &nomem);
	d->volume = dup_str(v->volume, &nomem);
	d->readonly = v->readonly;
	return nomem ? -1 : 0;
}

/* Whether l already has a disk of target dev. */
static bool dup_dev(const struct disk_list *l, const char *dev)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].dev, dev) == 0)
			return true;
	return false;
}

int domxml_parse(const char *xml, size_t len, struct domxml_info *out,
		 domxml_skip_fn skip, void *opaque)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr root, devices;
	int ret = -1;

	memset(out, 0, sizeof *out);
	if (len > DOMXML_MAX_SIZE) {
		error_set(EINVAL, "domain XML larger than %d bytes",
			  DOMXML_MAX_SIZE);
		return -1;
	}
	xmlResetLastError(); /* an empty document sets none */
	doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL, PARSE_FLAGS);
	if (!doc) {
		const xmlError *e = xmlGetLastError();
		const char *m = e && e->message ? e->message : "empty document";
		int mlen = (int)strcspn(m, "\n"); /* libxml2 ends it with \n */

		error_set(EINVAL,
			  "domain XML is not well-formed (line %d): %.*s",
			  e ? e->line : 0, mlen, m);
		return -1;
	}
	if (doc->intSubset || doc->extSubset) {
		error_set(EINVAL, "domain XML must not have a DOCTYPE");
		goto out;
	}
	root = xmlDocGetRootElement(doc);
	if (!root || !xmlStrEqual(root->name, (const xmlChar *)"domain")) {
		error_set(EINVAL, "root element is not <domain>");
		goto out;
	}
	out->name = child_text(root, "name");
	out->uuid = child_text(root, "uuid");
	if (!out->name || !out->name[0]) {
		error_set(EINVAL, "domain XML has no <name>");
		goto out;
	}
	devices = child(root, "devices");
	for (xmlNodePtr n = devices ? devices->children : NULL; n;
	     n = n->next) {
		struct disk_view view;
		enum disk_verdict r;
		struct disk d, *v;

		if (n->type != XML_ELEMENT_NODE ||
		    !xmlStrEqual(n->name, (const xmlChar *)"disk"))
			continue;
		r = domxml_disk_rule(n, &view);
		if (r != DISK_LISTED) {
			if (skip)
				skip(opaque, view.dev ? view.dev : "?",
				     domxml_disk_why(r));
			continue;
		}
		if (dup_dev(&out->disks, view.dev)) {
			if (skip)
				skip(opaque, view.dev, "duplicate target dev");
			continue;
		}
		if (read_disk(&view, &d) < 0) {
			domxml_disk_free(&d);
			error_set(ENOMEM, "out of memory");
			goto out;
		}
		v = realloc(out->disks.v, (out->disks.n + 1) * sizeof *v);
		if (!v) {
			domxml_disk_free(&d);
			error_set(ENOMEM, "out of memory");
			goto out;
		}
		out->disks.v = v;
		out->disks.v[out->disks.n++] = d;
	}
	ret = 0;
out:
	xmlFreeDoc(doc);
	if (ret < 0)
		domxml_release(out);
	return ret;
}

void domxml_release(struct domxml_info *info)
{
	for (size_t i = 0; i < info->disks.n; i++)
		domxml_disk_free(&info->disks.v[i]);
	free(info->disks.v);
	free(info->name);
	free(info->uuid);
	memset(info, 0, sizeof *info);
}

int domxml_file_name(const struct disk *d, char *buf, size_t len)
{
	return snprintf(buf, len, "%s.%s", d->dev, d->format);
}

const struct disk *domxml_find_file(const struct disk_list *l, const char *file)
{
	char name[PATH_NAME_MAX + 1];

	for (size_t i = 0; i < l->n; i++) {
		domxml_file_name(&l->v[i], name, sizeof name);
		if (strcmp(name, file) == 0)
			return &l->v[i];
	}
	return NULL;
}

xmlDocPtr domxml_read_doc(const char *xml, size_t len)
{
	xmlDocPtr doc;

	if (len > DOMXML_MAX_SIZE) {
		error_set(EINVAL, "domain XML larger than %d bytes",
			  DOMXML_MAX_SIZE);
		return NULL;
	}
	doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL, PARSE_FLAGS);
	if (!doc) {
		error_set(EINVAL, "domain XML is not well-formed");
		return NULL;
	}
	if (doc->intSubset || doc->extSubset || !xmlDocGetRootElement(doc)) {
		xmlFreeDoc(doc);
		error_set(EINVAL, "domain XML must not have a DOCTYPE");
		return NULL;
	}
	return doc;
}

/* Our element in <metadata>, or NULL. */
static xmlNodePtr sizes_node(xmlNodePtr root)
{
	xmlNodePtr meta = child(root, "metadata");

	for (xmlNodePtr c = meta ? meta->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && c->ns &&
		    xmlStrEqual(c->ns->href, (const xmlChar *)DOMXML_NS))
			return c;
	return NULL;
}

char *domxml_with_sizes(const char *xml, size_t len, const char *const *devs,
			const unsigned long long *sizes,
			const unsigned long long *allocs, size_t n)
{
	xmlDocPtr doc = domxml_read_doc(xml, len);
	xmlNodePtr root, meta, disks, old;
	xmlBufferPtr buf = NULL;
	xmlSaveCtxtPtr save;
	xmlNsPtr ns;
	char *out = NULL;

	if (!doc)
		return NULL;
	root = xmlDocGetRootElement(doc);
	old = sizes_node(root);
	if (old) {
		xmlUnlinkNode(old);
		xmlFreeNode(old);
	}
	meta = child(root, "metadata");
	if (!meta) {
		/* Indented as libvirt writes it. */
		xmlAddChild(root, xmlNewText((const xmlChar *)"  "));
		meta =
		    xmlNewChild(root, NULL, (const xmlChar *)"metadata", NULL);
		xmlAddChild(root, xmlNewText((const xmlChar *)"\n"));
	}
	if (meta) {
		xmlAddChild(meta, xmlNewText((const xmlChar *)"\n    "));
		disks = xmlNewChild(meta, NULL, (const xmlChar *)"disks", NULL);
		xmlAddChild(meta, xmlNewText((const xmlChar *)"\n  "));
	} else {
		disks = NULL;
	}
	ns = disks ? xmlNewNs(disks, (const xmlChar *)DOMXML_NS,
			      (const xmlChar *)DOMXML_NS_PREFIX)
		   : NULL;
	if (!ns)
		goto nomem;
	xmlSetNs(disks, ns);
	for (size_t i = 0; i < n; i++) {
		xmlNodePtr d;
		char num[32];

		xmlAddChild(disks, xmlNewText((const xmlChar *)"\n      "));
		d = xmlNewChild(disks, ns, (const xmlChar *)"disk", NULL);
		if (!d)
			goto nomem;
		snprintf(num, sizeof num, "%llu", sizes[i]);
		xmlSetProp(d, (const xmlChar *)"dev", (const xmlChar *)devs[i]);
		xmlSetProp(d, (const xmlChar *)"size", (const xmlChar *)num);
		if (allocs && allocs[i]) {
			snprintf(num, sizeof num, "%llu", allocs[i]);
			xmlSetProp(d, (const xmlChar *)"allocation",
				   (const xmlChar *)num);
		}
	}
	xmlAddChild(disks, xmlNewText((const xmlChar *)"\n    "));
	buf = xmlBufferCreate();
	save = buf ? xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_NO_DECL) : NULL;
	if (!save)
		goto nomem;
	xmlSaveDoc(save, doc);
	xmlSaveClose(save);
	out = strdup((const char *)xmlBufferContent(buf));
	if (!out)
		goto nomem;
	goto done;
nomem:
	error_set(ENOMEM, "out of memory");
done:
	if (buf)
		xmlBufferFree(buf);
	xmlFreeDoc(doc);
	return out;
}

/* A decimal attribute: 1 set, 0 absent or not a number. */
static int number_prop(xmlNodePtr node, const char *name,
		       unsigned long long *out)
{
	char *v = prop(node, name), *end = NULL;
	int r = 0;

	if (v && *v >= '0' && *v <= '9') {
		errno = 0;
		*out = strtoull(v, &end, 10);
		r = *end == '\0' && errno == 0;
	}
	free(v);
	return r;
}

char *domxml_save_doc(xmlDocPtr doc)
{
	xmlBufferPtr buf = xmlBufferCreate();
	xmlSaveCtxtPtr save =
	    buf ? xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_NO_DECL) : NULL;
	char *out = NULL;

	if (save) {
		xmlSaveDoc(save, doc);
		xmlSaveClose(save);
		out = strdup((const char *)xmlBufferContent(buf));
	}
	if (buf)
		xmlBufferFree(buf);
	if (!out)
		error_set(ENOMEM, "out of memory");
	return out;
}

char *domxml_with_origin(const char *xml, size_t len, const char *host,
			 const char *host_uuid, const char *const *devs,
			 const char *const *paths, const char *const *formats,
			 size_t n)
{
	xmlDocPtr doc = domxml_read_doc(xml, len);
	xmlNodePtr node;
	char *out = NULL;

	if (!doc)
		return NULL;
	node = sizes_node(xmlDocGetRootElement(doc));
	if (!node) {
		error_set(EINVAL, "no disk sizes in the served XML");
		goto done;
	}
	xmlSetProp(node, (const xmlChar *)"host", (const xmlChar *)host);
	xmlSetProp(node, (const xmlChar *)"host-uuid",
		   (const xmlChar *)host_uuid);
	for (xmlNodePtr c = node->children; c; c = c->next) {
		char *d;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		d = prop(c, "dev");
		for (size_t i = 0; d && i < n; i++)
			if (strcmp(d, devs[i]) == 0 && paths[i] && formats[i]) {
				xmlSetProp(c, (const xmlChar *)"path",
					   (const xmlChar *)paths[i]);
				xmlSetProp(c, (const xmlChar *)"format",
					   (const xmlChar *)formats[i]);
			}
		free(d);
	}
	out = domxml_save_doc(doc);
done:
	xmlFreeDoc(doc);
	return out;
}

/* Copy attribute name of node into buf: 1, or 0 if absent or too long. */
static int copy_prop(xmlNodePtr node, const char *name, char *buf, size_t len)
{
	char *v = prop(node, name);
	int ok = v && *v && strlen(v) < len;

	if (ok)
		memcpy(buf, v, strlen(v) + 1);
	free(v);
	return ok;
}

int domxml_disk_origin(const char *xml, size_t len, const char *dev,
		       struct domxml_origin *out)
{
	xmlDocPtr doc = domxml_read_doc(xml, len);
	xmlNodePtr node;
	int r = 0;

	if (!doc)
		return -1;
	memset(out, 0, sizeof *out);
	node = sizes_node(xmlDocGetRootElement(doc));
	if (node && copy_prop(node, "host", out->host, sizeof out->host) &&
	    copy_prop(node, "host-uuid", out->host_uuid,
		      sizeof out->host_uuid)) {
		for (xmlNodePtr c = node->children; c; c = c->next) {
			char *d;

			if (c->type != XML_ELEMENT_NODE)
				continue;
			d = prop(c, "dev");
			if (d && strcmp(d, dev) == 0)
				r = copy_prop(c, "path", out->path,
					      sizeof out->path) &&
				    copy_prop(c, "format", out->format,
					      sizeof out->format);
			free(d);
			if (r)
				break;
		}
	}
	xmlFreeDoc(doc);
	return r;
}

int domxml_disk_size(const char *xml, size_t len, const char *dev,
		     unsigned long long *size, unsigned long long *alloc)
{
	xmlDocPtr doc = domxml_read_doc(xml, len);
	xmlNodePtr node;
	int r = 0;

	if (!doc)
		return -1;
	node = sizes_node(xmlDocGetRootElement(doc));
	for (xmlNodePtr c = node ? node->children : NULL; c; c = c->next) {
		char *d;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		d = prop(c, "dev");
		if (d && strcmp(d, dev) == 0 && number_prop(c, "size", size)) {
			r = 1;
			if (alloc && !number_prop(c, "allocation", alloc))
				*alloc = 0;
		}
		free(d);
		if (r)
			break;
	}
	xmlFreeDoc(doc);
	return r;
}
