/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a guest needs of a host to run there (domxml.h: struct
 * domxml_needs), read from its domain XML for a move's pre-flight checks;
 * and the XML under another name.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "../common/error.h"
#include "domxml-int.h"
#include "domxml.h"

static bool is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE &&
	       xmlStrEqual(n->name, (const xmlChar *)name);
}

static const xmlNode *child(const xmlNode *node, const char *name)
{
	for (const xmlNode *c = node->children; c; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

/* A copy of attribute name (NULL if absent); *nomem on failure. */
static char *get(const xmlNode *n, const char *name, bool *nomem)
{
	xmlChar *v = n ? xmlGetProp(n, (const xmlChar *)name) : NULL;
	char *s = NULL;

	if (v) {
		s = strdup((const char *)v);
		*nomem |= !s;
	}
	xmlFree(v);
	return s;
}

static char *text(const xmlNode *n, bool *nomem)
{
	xmlChar *v = n ? xmlNodeGetContent(n) : NULL;
	char *s = NULL;

	if (v) {
		s = strdup((const char *)v);
		*nomem |= !s;
	}
	xmlFree(v);
	return s;
}

static void push(struct strvec *sv, const char *s, bool *nomem)
{
	if (s && *s && strvec_find(sv, s) < 0 && strvec_push(sv, s) < 0)
		*nomem = true;
}

/* The paths a <disk> or one of its <backingStore>s names (recursively). */
static void add_sources(const xmlNode *n, struct strvec *out, bool *nomem)
{
	const xmlNode *src = child(n, "source");
	const xmlNode *bs = child(n, "backingStore");

	if (src) {
		static const char *const attrs[] = { "file", "dev" };

		for (size_t i = 0; i < 2; i++) {
			char *p = get(src, attrs[i], nomem);

			push(out, p, nomem);
			free(p);
		}
	}
	if (bs)
		add_sources(bs, out, nomem);
}

static void read_interface(const xmlNode *n, struct domxml_needs *out,
			   bool *nomem)
{
	char *type = get(n, "type", nomem);
	const xmlNode *src = child(n, "source");

	if (type && strcmp(type, "network") == 0) {
		char *net = get(src, "network", nomem);

		push(&out->networks, net, nomem);
		free(net);
	} else if (type && strcmp(type, "bridge") == 0) {
		char *br = get(src, "bridge", nomem);

		push(&out->bridges, br, nomem);
		free(br);
	} else if (type && strcmp(type, "hostdev") == 0) {
		push(&out->hostdevs, "interface type='hostdev'", nomem);
	}
	free(type);
}

static void read_cpu(const xmlNode *cpu, struct domxml_needs *out, bool *nomem)
{
	char *mode = get(cpu, "mode", nomem), *check = get(cpu, "check", nomem);

	/* A named model (mode custom, the default) whose features are
	 * checked (not check='none', which libvirt gives the model it adds
	 * by default): the features it requires by name are what the host's
	 * CPU must provide.  host-model and host-passthrough take the host's
	 * CPU, whatever it is. */
	if ((!mode || strcmp(mode, "custom") == 0) &&
	    (!check || strcmp(check, "none") != 0) && child(cpu, "model")) {
		xmlBufferPtr buf = xmlBufferCreate();

		for (const xmlNode *c = cpu->children; c; c = c->next) {
			char *policy, *name;

			if (!is(c, "feature"))
				continue;
			policy = get(c, "policy", nomem);
			name = get(c, "name", nomem);
			if (!policy || strcmp(policy, "require") == 0 ||
			    strcmp(policy, "force") == 0)
				push(&out->cpu_features, name, nomem);
			free(policy);
			free(name);
		}
		if (buf &&
		    xmlNodeDump(buf, cpu->doc, (xmlNodePtr)cpu, 0, 0) >= 0)
			out->cpu = strdup((const char *)xmlBufferContent(buf));
		*nomem |= !out->cpu;
		if (buf)
			xmlBufferFree(buf);
	}
	free(mode);
	free(check);
}

int domxml_needs(const char *xml, size_t len, struct domxml_needs *out)
{
	xmlDocPtr doc = domxml_read_doc(xml, len);
	const xmlNode *root, *os, *devs;
	bool nomem = false;

	memset(out, 0, sizeof *out);
	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!is(root, "domain")) {
		xmlFreeDoc(doc);
		error_set(EINVAL,
			  "domain XML: the root element is not <domain>");
		return -1;
	}
	out->type = get(root, "type", &nomem);
	out->name = text(child(root, "name"), &nomem);
	out->uuid = text(child(root, "uuid"), &nomem);
	os = child(root, "os");
	if (os) {
		const xmlNode *t = child(os, "type");

		out->arch = get(t, "arch", &nomem);
		out->machine = get(t, "machine", &nomem);
	}
	if (child(root, "cpu"))
		read_cpu(child(root, "cpu"), out, &nomem);
	devs = child(root, "devices");
	for (const xmlNode *c = devs ? devs->children : NULL; c; c = c->next) {
		if (is(c, "emulator") && !out->emulator)
			out->emulator = text(c, &nomem);
		else if (is(c, "disk"))
			add_sources(c, &out->sources, &nomem);
		else if (is(c, "interface"))
			read_interface(c, out, &nomem);
		else if (is(c, "hostdev"))
			push(&out->hostdevs, "hostdev", &nomem);
	}
	xmlFreeDoc(doc);
	if (nomem) {
		domxml_needs_release(out);
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	return 0;
}

void domxml_needs_release(struct domxml_needs *n)
{
	free(n->name);
	free(n->uuid);
	free(n->type);
	free(n->arch);
	free(n->machine);
	free(n->emulator);
	free(n->cpu);
	strvec_release(&n->cpu_features);
	strvec_release(&n->networks);
	strvec_release(&n->bridges);
	strvec_release(&n->hostdevs);
	strvec_release(&n->sources);
	memset(n, 0, sizeof *n);
}

char *domxml_with_name(const char *xml, size_t len, const char *name)
{
	xmlDocPtr doc = domxml_read_doc(xml, len);
	xmlNodePtr root, n;
	char *out = NULL;

	if (!doc)
		return NULL;
	root = xmlDocGetRootElement(doc);
	n = root ? (xmlNodePtr)child(root, "name") : NULL;
	if (!n) {
		error_set(EINVAL, "domain XML has no <name>");
	} else {
		xmlNodeSetContent(n, NULL);
		xmlNodeAddContent(n, (const xmlChar *)name);
		out = domxml_save_doc(doc);
	}
	xmlFreeDoc(doc);
	return out;
}

int domxml_disk_cache(const char *xml, size_t len, const char *dev, char *out,
		      size_t outlen)
{
	xmlDocPtr doc = domxml_read_doc(xml, len);
	const xmlNode *devs;
	bool nomem = false;
	int r = 0;

	if (!doc)
		return -1;
	out[0] = '\0';
	devs = child(xmlDocGetRootElement(doc), "devices");
	for (const xmlNode *c = devs ? devs->children : NULL; c && !r;
	     c = c->next) {
		char *target, *cache;

		if (!is(c, "disk"))
			continue;
		target = get(child(c, "target"), "dev", &nomem);
		if (target && strcmp(target, dev) == 0) {
			cache = get(child(c, "driver"), "cache", &nomem);
			snprintf(out, outlen, "%s", cache ? cache : "");
			free(cache);
			r = 1;
		}
		free(target);
	}
	xmlFreeDoc(doc);
	if (nomem) {
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	return r;
}
