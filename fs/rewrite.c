/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "../common/error.h"
#include "domxml-int.h"
#include "domxml.h"
#include "path.h"
#include "rewrite.h"

/* libvirt's namespace for QEMU pass-through (qemu:commandline, ...). */
#define QEMU_NS "http://libvirt.org/schemas/domain/qemu/1.0"

static bool is(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && !n->ns &&
	       xmlStrEqual(n->name, (const xmlChar *)name);
}

static xmlNodePtr child(xmlNodePtr node, const char *name)
{
	for (xmlNodePtr c = node ? node->children : NULL; c; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

static bool has_element(xmlNodePtr node)
{
	for (xmlNodePtr c = node->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			return true;
	return false;
}

/* An attribute's value, NULL when absent (valid until the node changes). */
static const char *attr(xmlNodePtr node, const char *name)
{
	xmlAttrPtr a = node ? xmlHasProp(node, (const xmlChar *)name) : NULL;

	if (!a)
		return NULL;
	if (!a->children || !a->children->content)
		return "";
	return (const char *)a->children->content;
}

static bool attr_is(xmlNodePtr node, const char *name, const char *value)
{
	const char *v = attr(node, name);

	return v && strcmp(v, value) == 0;
}

/* Unlink and free node, with the indentation before it. */
static void drop(xmlNodePtr node)
{
	xmlNodePtr ws = node->prev;

	if (ws && ws->type == XML_TEXT_NODE && xmlIsBlankNode(ws)) {
		xmlUnlinkNode(ws);
		xmlFreeNode(ws);
	}
	xmlUnlinkNode(node);
	xmlFreeNode(node);
}

/* Insert node before ref, indented as ref is.  Returns 0 or -1 (ENOMEM). */
static int insert_before(xmlNodePtr ref, xmlNodePtr node)
{
	xmlNodePtr ws = ref->prev;

	if (!xmlAddPrevSibling(ref, node))
		return -1;
	if (ws && ws->type == XML_TEXT_NODE && xmlIsBlankNode(ws)) {
		xmlNodePtr indent = xmlNewText(ws->content);

		if (!indent || !xmlAddPrevSibling(ref, indent)) {
			xmlFreeNode(indent);
			return -1;
		}
	}
	return 0;
}

static bool removable(xmlNodePtr disk)
{
	return attr_is(disk, "device", "cdrom") ||
	       attr_is(disk, "device", "floppy");
}

/* First element in another namespace than libvirt's (none): any under
 * <domain>, except that <metadata> holds applications' elements (there,
 * only QEMU's namespace is refused). */
static xmlNodePtr foreign(xmlNodePtr node, bool in_metadata)
{
	for (xmlNodePtr c = node->children; c; c = c->next) {
		xmlNodePtr f;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (c->ns &&
		    (!in_metadata ||
		     xmlStrEqual(c->ns->href, (const xmlChar *)QEMU_NS)))
			return c;
		f = foreign(c, in_metadata ||
				   (node->parent &&
				    node->parent->type == XML_DOCUMENT_NODE &&
				    is(c, "metadata")));
		if (f)
			return f;
	}
	return NULL;
}

/* Vet one child of <devices>; a disk to stream has its dev appended to
 * devs, every disk's dev to seen.  Returns 0, or -1 with error_set(). */
static int vet_device(xmlNodePtr d, struct strvec *devs, struct strvec *seen)
{
	struct disk_view v;
	const char *type, *dev;

	if (is(d, "hostdev")) {
		error_set(EINVAL, "<hostdev>: host devices (PCI, USB, SCSI "
				  "passthrough) cannot move to another host");
		return -1;
	}
	if (is(d, "interface") && attr_is(d, "type", "hostdev")) {
		error_set(EINVAL, "<interface type='hostdev'>: a host PCI "
				  "device cannot move to another host");
		return -1;
	}
	if (!is(d, "disk"))
		return 0;
	type = attr(d, "type");
	if (type && (strcmp(type, "dir") == 0 || strcmp(type, "nvme") == 0 ||
		     strcmp(type, "vhostuser") == 0)) {
		error_set(EINVAL, "disks of type '%s' are not migrated", type);
		return -1;
	}
	if (removable(d) && type && strcmp(type, "block") == 0) {
		error_set(EINVAL, "host block devices as removable media are "
				  "not migrated");
		return -1;
	}
	dev = attr(child(d, "target"), "dev");
	if (dev && *dev) {
		if (strvec_find(seen, dev) >= 0) {
			error_set(EINVAL, "disk %s appears twice",
				  path_word_ok(dev) ? dev : "(target dev)");
			return -1;
		}
		if (strvec_push(seen, dev) < 0)
			return -1;
	}
	/* Whether kvmmigfs streams it is domxml_disk_rule()'s to say; a
	 * disk it would stream but cannot is refused here. */
	switch (domxml_disk_rule(d, &v)) {
	case DISK_LISTED:
		return strvec_push(devs, v.dev);
	case DISK_BAD_TARGET:
		error_set(EINVAL, "a disk has no usable <target dev> (1 to 32 "
				  "of a-z, 0-9, _)");
		return -1;
	case DISK_BAD_VOLUME:
		error_set(EINVAL,
			  "disk %s: a volume disk needs a pool "
			  "and a volume",
			  v.dev);
		return -1;
	case DISK_RELATIVE:
		error_set(EINVAL, "disk %s: source path is not absolute",
			  v.dev);
		return -1;
	case DISK_BAD_FORMAT:
		error_set(EINVAL, "disk %s: unusable <driver type>", v.dev);
		return -1;
	case DISK_REMOVABLE:
	case DISK_NO_MEDIA:
	case DISK_OTHER_DEVICE:
	case DISK_NETWORK:
	case DISK_OTHER_TYPE:
	case DISK_EMPTY:
		break; /* not copied: kept as it is */
	}
	return 0;
}

/* Parse and vet; returns the document, or NULL with error_set() and devs
 * as it was. */
static xmlDocPtr parse(const char *xml, size_t len, struct strvec *devs)
{
	struct strvec seen = STRVEC_INIT;
	size_t n0 = devs->n;
	xmlDocPtr doc;
	xmlNodePtr root, devices, f;
	xmlChar *name;
	bool named;

	if (len > DOMXML_MAX_SIZE) {
		error_set(EINVAL, "domain XML larger than %d bytes",
			  DOMXML_MAX_SIZE);
		return NULL;
	}
	xmlResetLastError(); /* an empty document sets none */
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
	if (!is(root, "domain")) {
		error_set(EINVAL, "root element is not <domain>");
		goto err;
	}
	name =
	    child(root, "name") ? xmlNodeGetContent(child(root, "name")) : NULL;
	named = name && *name;
	xmlFree(name);
	if (!named) {
		error_set(EINVAL, "domain XML has no <name>");
		goto err;
	}
	f = foreign(root, false);
	if (f) {
		error_set(EINVAL,
			  "<%s%s%s> (namespace %s) is not migrated: only "
			  "libvirt's own elements are",
			  f->ns->prefix ? (const char *)f->ns->prefix : "",
			  f->ns->prefix ? ":" : "", (const char *)f->name,
			  f->ns->href ? (const char *)f->ns->href : "");
		goto err;
	}
	devices = child(root, "devices");
	for (xmlNodePtr d = devices ? devices->children : NULL; d; d = d->next)
		if (vet_device(d, devs, &seen) < 0)
			goto err;
	strvec_release(&seen);
	return doc;
err:
	strvec_release(&seen);
	while (devs->n > n0)
		free(devs->v[--devs->n]);
	if (n0 == 0)
		strvec_release(devs); /* as it was: nothing allocated */
	else if (devs->v)
		devs->v[devs->n] = NULL;
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
		if (spec->disks[i].dev && strcmp(spec->disks[i].dev, dev) == 0)
			return &spec->disks[i];
	return NULL;
}

/* Point a disk to stream at its new volume: type, one new <source>, the
 * driver's type; backing chain and mirror dropped.  Returns 0 or -1
 * with error_set(). */
static int retarget(xmlNodePtr d, const char *dev,
		    const struct rewrite_disk *rd)
{
	xmlNodePtr drv = child(d, "driver"), old = child(d, "source"), src, c,
		   next;

	if (!rd->path || rd->path[0] != '/' || !rd->format ||
	    !path_word_ok(rd->format)) {
		error_set(EINVAL,
			  "disk %s: the new volume has no absolute "
			  "path or a bad format",
			  dev);
		return -1;
	}
	src = xmlNewNode(NULL, (const xmlChar *)"source");
	if (!src ||
	    !xmlSetProp(src, (const xmlChar *)(rd->block ? "dev" : "file"),
			(const xmlChar *)rd->path) ||
	    !xmlSetProp(d, (const xmlChar *)"type",
			(const xmlChar *)(rd->block ? "block" : "file")))
		goto nomem;
	/* Streamable disks have a <source>: the new one takes its place. */
	if (old) {
		xmlReplaceNode(old, src);
		xmlFreeNode(old);
	} else if (!xmlAddChild(d, src)) {
		goto nomem;
	}
	for (c = d->children; c; c = next) {
		next = c->next;
		if (c != src && (is(c, "source") || is(c, "backingStore") ||
				 is(c, "mirror")))
			drop(c);
	}
	if (!drv) {
		drv = xmlNewNode(NULL, (const xmlChar *)"driver");
		if (!drv ||
		    !xmlSetProp(drv, (const xmlChar *)"name",
				(const xmlChar *)"qemu") ||
		    insert_before(src, drv) < 0) {
			xmlFreeNode(drv);
			goto nomem_src;
		}
	}
	if (!xmlSetProp(drv, (const xmlChar *)"type",
			(const xmlChar *)rd->format))
		goto nomem_src;
	return 0;
nomem:
	xmlFreeNode(src);
nomem_src:
	error_set(ENOMEM, "out of memory");
	return -1;
}

/* Removable media: keep a file the target has, eject one it has not.
 * Returns 0 or -1 with the callback's error. */
static int check_media(xmlNodePtr d, const struct rewrite_spec *spec)
{
	xmlNodePtr src = child(d, "source");
	const char *type = attr(d, "type"), *file = attr(src, "file");
	int r;

	if ((type && strcmp(type, "file") != 0) || !file || !*file)
		return 0; /* network, volume or empty: as it is */
	r = spec->media_exists ? spec->media_exists(spec->opaque, file) : 0;
	if (r < 0)
		return -1;
	if (r == 0)
		drop(src);
	return 0;
}

/* Drop kvmmigfs's sizes from <metadata> (they describe the copy, not
 * the guest), and <metadata> if nothing else is left in it. */
static void drop_sizes(xmlNodePtr root)
{
	xmlNodePtr meta = child(root, "metadata"), c, next;

	if (!meta)
		return;
	for (c = meta->children; c; c = next) {
		next = c->next;
		if (c->type == XML_ELEMENT_NODE && c->ns &&
		    xmlStrEqual(c->ns->href, (const xmlChar *)DOMXML_NS))
			drop(c);
	}
	if (!has_element(meta))
		drop(meta);
}

char *rewrite_domain(const char *xml, size_t len,
		     const struct rewrite_spec *spec, int *cloned)
{
	struct strvec devs = STRVEC_INIT;
	xmlDocPtr doc;
	xmlNodePtr root, name, devices, uuid;
	xmlChar *old = NULL, *out = NULL;
	char *result = NULL;
	int size = 0;

	*cloned = 0;
	if (!spec->name || !spec->name[0]) {
		error_set(EINVAL, "no name for the new guest");
		return NULL;
	}
	doc = parse(xml, len, &devs);
	strvec_release(&devs);
	if (!doc)
		return NULL;
	root = xmlDocGetRootElement(doc);
	name = child(root, "name");
	old = xmlNodeGetContent(name);
	if (!old || strcmp((const char *)old, spec->name) != 0) {
		*cloned = 1;
		/* Set as text: xmlNodeSetContent would parse '&' in it. */
		xmlNodeSetContent(name, NULL);
		xmlNodeAddContent(name, (const xmlChar *)spec->name);
		uuid = child(root, "uuid");
		if (uuid)
			drop(uuid);
	}
	drop_sizes(root);
	devices = child(root, "devices");
	for (xmlNodePtr d = devices ? devices->children : NULL; d;
	     d = d->next) {
		if (*cloned && is(d, "interface")) {
			xmlNodePtr mac;

			while ((mac = child(d, "mac")))
				drop(mac);
		} else if (is(d, "disk") &&
			   domxml_disk_rule(d, NULL) == DISK_LISTED) {
			/* Vetted: it has a usable dev. */
			const char *dev = attr(child(d, "target"), "dev");
			const struct rewrite_disk *rd = find_disk(spec, dev);

			if (!rd) {
				error_set(EINVAL, "no volume for disk %s", dev);
				goto out;
			}
			if (retarget(d, dev, rd) < 0)
				goto out;
		} else if (is(d, "disk") && removable(d)) {
			if (check_media(d, spec) < 0)
				goto out;
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
