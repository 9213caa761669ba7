/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdbool.h>

#include "../nbd/error.h"
#include "domxml.h"
#include "path.h"
#include "rewrite.h"

#define PARSE_FLAGS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

static bool is(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE &&
	       xmlStrEqual(n->name, (const xmlChar *)name);
}

static xmlNodePtr child(xmlNodePtr node, const char *name)
{
	for (xmlNodePtr c = node->children; c; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

/* The first element child of node, or NULL. */
static xmlNodePtr child_element(xmlNodePtr node)
{
	for (xmlNodePtr c = node->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			return c;
	return NULL;
}

/* An attribute's value, or "" (valid until the node changes). */
static const char *attr(xmlNodePtr node, const char *name)
{
	xmlAttrPtr a = xmlHasProp(node, (const xmlChar *)name);

	if (!a || !a->children || !a->children->content)
		return "";
	return (const char *)a->children->content;
}

static void drop(xmlNodePtr node)
{
	xmlUnlinkNode(node);
	xmlFreeNode(node);
}

/* Disks that arrive as files: device disk/lun of type file/block/volume. */
static bool listed(xmlNodePtr disk)
{
	const char *device = attr(disk, "device"), *type = attr(disk, "type");

	if (*device && strcmp(device, "disk") && strcmp(device, "lun"))
		return false;
	return !*type || !strcmp(type, "file") || !strcmp(type, "block") ||
	       !strcmp(type, "volume");
}

static bool removable(xmlNodePtr disk)
{
	const char *device = attr(disk, "device");

	return !strcmp(device, "cdrom") || !strcmp(device, "floppy");
}

/* Any element outside libvirt's (default, empty) namespace? */
static xmlNodePtr foreign(xmlNodePtr node)
{
	for (xmlNodePtr c = node->children; c; c = c->next) {
		xmlNodePtr f;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (c->ns && c->ns->href) {
			/* <metadata> may hold any application's elements. */
			if (!(node->type == XML_ELEMENT_NODE &&
			      is(node, "metadata")))
				return c;
			continue;
		}
		if (is(c, "metadata"))
			continue;
		f = foreign(c);
		if (f)
			return f;
	}
	return NULL;
}

/* Parse and vet; returns the document or NULL with error_set(). */
static xmlDocPtr parse(const char *xml, size_t len, struct strvec *devs)
{
	xmlDocPtr doc;
	xmlNodePtr root, devices, f;

	if (len > DOMXML_MAX_SIZE) {
		error_set(EINVAL, "domain XML larger than %d bytes",
			  DOMXML_MAX_SIZE);
		return NULL;
	}
	xmlResetLastError();
	doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL, PARSE_FLAGS);
	if (!doc) {
		const xmlError *e = xmlGetLastError();
		const char *m = e && e->message ? e->message : "empty document";

		error_set(EINVAL,
			  "domain XML is not well-formed (line %d): %.*s",
			  e ? e->line : 0, (int)strcspn(m, "\n"), m);
		return NULL;
	}
	if (doc->intSubset || doc->extSubset) {
		error_set(EINVAL, "domain XML must not have a DOCTYPE");
		goto err;
	}
	root = xmlDocGetRootElement(doc);
	if (!root || !is(root, "domain") || root->ns) {
		error_set(EINVAL, "root element is not <domain>");
		goto err;
	}
	if (!child(root, "name")) {
		error_set(EINVAL, "domain XML has no <name>");
		goto err;
	}
	f = foreign(root);
	if (f) {
		error_set(EINVAL,
			  "<%s%s%s> (namespace %s) is not migrated: only "
			  "libvirt's own elements are",
			  f->ns->prefix ? (const char *)f->ns->prefix : "",
			  f->ns->prefix ? ":" : "", (const char *)f->name,
			  (const char *)f->ns->href);
		goto err;
	}
	devices = child(root, "devices");
	for (xmlNodePtr d = devices ? devices->children : NULL; d;
	     d = d->next) {
		const char *type, *dev;
		xmlNodePtr target;

		if (is(d, "hostdev")) {
			error_set(EINVAL, "<hostdev>: host devices cannot "
					  "move to another host");
			goto err;
		}
		if (!is(d, "disk"))
			continue;
		type = attr(d, "type");
		if (removable(d) && !strcmp(type, "block")) {
			error_set(EINVAL, "host block devices as removable "
					  "media are not migrated");
			goto err;
		}
		if (!strcmp(type, "dir") || !strcmp(type, "nvme") ||
		    !strcmp(type, "vhostuser")) {
			error_set(EINVAL, "disks of type '%s' are not migrated",
				  type);
			goto err;
		}
		if (!listed(d))
			continue;
		target = child(d, "target");
		dev = target ? attr(target, "dev") : "";
		if (!path_word_ok(dev)) {
			error_set(EINVAL, "a disk has no usable <target dev>");
			goto err;
		}
		if (strvec_find(devs, dev) >= 0) {
			error_set(EINVAL, "disk %s appears twice", dev);
			goto err;
		}
		if (strvec_push(devs, dev) < 0)
			goto err;
	}
	return doc;
err:
	xmlFreeDoc(doc);
	return NULL;
}

int rewrite_check(const char *xml, size_t len, struct strvec *devs, char **name)
{
	xmlDocPtr doc = parse(xml, len, devs);
	xmlChar *n;

	*name = NULL;
	if (!doc)
		return -1;
	n = xmlNodeGetContent(child(xmlDocGetRootElement(doc), "name"));
	*name = n ? strdup((const char *)n) : NULL;
	xmlFree(n);
	xmlFreeDoc(doc);
	if (!*name) {
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	return 0;
}

static const struct rewrite_disk *find_disk(const struct rewrite_spec *spec,
					    const char *dev)
{
	for (size_t i = 0; i < spec->ndisks; i++)
		if (!strcmp(spec->disks[i].dev, dev))
			return &spec->disks[i];
	return NULL;
}

/* Point a listed disk at its new volume. */
static int retarget(xmlNodePtr d, const struct rewrite_disk *rd)
{
	xmlNodePtr src, drv = child(d, "driver"), c, next;

	for (c = d->children; c; c = next) {
		next = c->next;
		if (is(c, "source") || is(c, "backingStore") || is(c, "mirror"))
			drop(c);
	}
	xmlSetProp(d, (const xmlChar *)"type",
		   (const xmlChar *)(rd->block ? "block" : "file"));
	if (!drv) {
		drv = xmlNewNode(NULL, (const xmlChar *)"driver");
		if (!drv)
			return -1;
		xmlSetProp(drv, (const xmlChar *)"name",
			   (const xmlChar *)"qemu");
		if (d->children)
			xmlAddPrevSibling(d->children, drv);
		else
			xmlAddChild(d, drv);
	}
	xmlSetProp(drv, (const xmlChar *)"type", (const xmlChar *)rd->format);
	src = xmlNewNode(NULL, (const xmlChar *)"source");
	if (!src)
		return -1;
	xmlSetProp(src, (const xmlChar *)(rd->block ? "dev" : "file"),
		   (const xmlChar *)rd->path);
	xmlAddNextSibling(drv, src);
	return 0;
}

char *rewrite_domain(const char *xml, size_t len,
		     const struct rewrite_spec *spec, int *cloned)
{
	struct strvec devs = STRVEC_INIT;
	xmlDocPtr doc = parse(xml, len, &devs);
	xmlNodePtr root, name, devices, uuid;
	xmlChar *old = NULL, *out = NULL;
	char *result = NULL;
	int size = 0;

	*cloned = 0;
	strvec_release(&devs);
	if (!doc)
		return NULL;
	root = xmlDocGetRootElement(doc);
	name = child(root, "name");
	old = xmlNodeGetContent(name);
	if (!old || strcmp((const char *)old, spec->name)) {
		*cloned = 1;
		xmlNodeSetContent(name, NULL);
		xmlNodeAddContent(name, (const xmlChar *)spec->name);
		uuid = child(root, "uuid");
		if (uuid)
			drop(uuid);
	}
	/* The sizes kvmmigfs added for the copy are not the guest's. */
	{
		xmlNodePtr meta = child(root, "metadata"), c, next;

		for (c = meta ? meta->children : NULL; c; c = next) {
			next = c->next;
			if (c->type == XML_ELEMENT_NODE && c->ns &&
			    xmlStrEqual(c->ns->href,
					(const xmlChar *)DOMXML_NS))
				drop(c);
		}
		if (meta && !child_element(meta))
			drop(meta);
	}
	devices = child(root, "devices");
	for (xmlNodePtr d = devices ? devices->children : NULL; d;
	     d = d->next) {
		if (*cloned && is(d, "interface")) {
			xmlNodePtr mac;

			while ((mac = child(d, "mac")))
				drop(mac);
			continue;
		}
		if (!is(d, "disk"))
			continue;
		if (listed(d)) {
			const char *dev = attr(child(d, "target"), "dev");
			const struct rewrite_disk *rd = find_disk(spec, dev);

			if (!rd) {
				error_set(EINVAL, "no volume for disk %s", dev);
				goto out;
			}
			if (retarget(d, rd) < 0) {
				error_set(ENOMEM, "out of memory");
				goto out;
			}
		} else if (removable(d) && child(d, "source")) {
			xmlNodePtr src = child(d, "source");
			const char *file = attr(src, "file");
			int r =
			    *file ? spec->media_exists(spec->opaque, file) : 0;

			if (r < 0)
				goto out;
			if (r == 0)
				drop(src);
		}
	}
	xmlDocDumpMemory(doc, &out, &size);
	if (!out || !(result = strdup((const char *)out)))
		error_set(ENOMEM, "out of memory");
out:
	xmlFree(out);
	xmlFree(old);
	xmlFreeDoc(doc);
	return result;
}
