/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Tests of fs/rewrite.c: vetting a domain.xml written into a staging
 * folder (rewrite_check) and rewriting it for the target (rewrite_domain).
 * Outputs are read back with domxml_parse() and libxml2 XPath.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "../common/error.h"
#include "../fs/domxml.h"
#include "../fs/rewrite.h"
#include "suites.h"

/* As virsh dumpxml writes a guest, trimmed. */
static const char guest[] =
    "<domain type='kvm' id='7'>\n"
    "  <name>db1</name>\n"
    "  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>\n"
    "  <title>Database</title>\n"
    "  <description>primary &amp; only</description>\n"
    "  <metadata>\n"
    "    <libosinfo:libosinfo "
    "xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>\n"
    "      <libosinfo:os id='http://debian.org/debian/12'/>\n"
    "    </libosinfo:libosinfo>\n"
    "  </metadata>\n"
    "  <memory unit='KiB'>2097152</memory>\n"
    "  <vcpu placement='static'>2</vcpu>\n"
    "  <os>\n"
    "    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n"
    "    <boot dev='hd'/>\n"
    "  </os>\n"
    "  <features><acpi/><apic/></features>\n"
    "  <cpu mode='host-passthrough' check='none' migratable='on'/>\n"
    "  <devices>\n"
    "    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw' cache='none' io='native' "
    "discard='unmap'/>\n"
    "      <source file='/var/lib/libvirt/images/db1.raw' index='4'/>\n"
    "      <backingStore/>\n"
    "      <target dev='vda' bus='virtio'/>\n"
    "      <alias name='virtio-disk0'/>\n"
    "      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' "
    "function='0x0'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='qcow2'/>\n"
    "      <source file='/var/lib/libvirt/images/db1-data.qcow2' "
    "index='3'>\n"
    "        <seclabel model='dac' relabel='no'/>\n"
    "      </source>\n"
    "      <backingStore type='file' index='2'>\n"
    "        <format type='raw'/>\n"
    "        <source file='/x/base.raw'/>\n"
    "        <backingStore/>\n"
    "      </backingStore>\n"
    "      <target dev='vdb' bus='virtio'/>\n"
    "      <address type='pci' domain='0x0000' bus='0x05' slot='0x00' "
    "function='0x0'/>\n"
    "    </disk>\n"
    "    <disk type='block' device='disk'>\n"
    "      <driver name='qemu' type='raw' cache='directsync'/>\n"
    "      <source dev='/dev/loop3'/>\n"
    "      <mirror type='file' file='/x/mirror.raw' format='raw' "
    "job='copy' ready='yes'><format type='raw'/>"
    "<source file='/x/mirror.raw'/></mirror>\n"
    "      <target dev='vdc' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='volume' device='disk'>\n"
    "      <source pool='default' volume='x' startupPolicy='optional'/>\n"
    "      <target dev='vdd' bus='virtio'/>\n"
    "      <serial>vol-x</serial>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/iso/debian-12.iso'/>\n"
    "      <target dev='sda' bus='sata'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/iso/drivers.iso'/>\n"
    "      <target dev='hdc' bus='ide'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <target dev='sdb' bus='sata'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "    <disk type='network' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source protocol='nbd' name='export1'>\n"
    "        <host name='nbd.example.org' port='10809'/>\n"
    "      </source>\n"
    "      <target dev='vde' bus='virtio'/>\n"
    "    </disk>\n"
    "    <controller type='usb' index='0' model='qemu-xhci'/>\n"
    "    <interface type='user'>\n"
    "      <mac address='52:54:00:6b:3c:58'/>\n"
    "      <model type='virtio'/>\n"
    "    </interface>\n"
    "    <interface type='user'>\n"
    "      <mac address='52:54:00:6b:3c:59'/>\n"
    "      <model type='e1000e'/>\n"
    "    </interface>\n"
    "    <serial type='pty'><target port='0'/></serial>\n"
    "  </devices>\n"
    "</domain>\n";

static const struct rewrite_disk new_disks[] = {
	{ "vda", "/var/lib/libvirt/images/db1-vda.raw", "raw", 0 },
	{ "vdb", "/var/lib/libvirt/images/db1-vdb.qcow2", "qcow2", 0 },
	{ "vdc", "/dev/vg0/db1-vdc", "raw", 1 },
	{ "vdd", "/var/lib/libvirt/images/db1-vdd.raw", "raw", 0 },
};

#define N_NEW (sizeof new_disks / sizeof new_disks[0])

/* A fake target: the paths it has, and the paths asked about. */
struct target {
	const char *const *have;
	const char *fail; /* asking about this path fails */
	char asked[512];
	int calls;
};

static int fake_media_exists(void *opaque, const char *path)
{
	struct target *t = opaque;
	size_t len = strlen(t->asked);

	t->calls++;
	snprintf(t->asked + len, sizeof t->asked - len, "%s;", path);
	if (t->fail && strcmp(path, t->fail) == 0) {
		error_set(EIO, "cannot ask the target about %s", path);
		return -1;
	}
	for (const char *const *h = t->have; h && *h; h++)
		if (strcmp(*h, path) == 0)
			return 1;
	return 0;
}

static const char *const target_isos[] = { "/iso/debian-12.iso", NULL };

static char *rewrite_guest(const char *name, const struct rewrite_disk *d,
			   size_t n, struct target *t, int *cloned)
{
	struct rewrite_spec spec = { name, d, n, fake_media_exists, t };

	*cloned = -1;
	return rewrite_domain(guest, strlen(guest), &spec, cloned);
}

/* The string value of an XPath expression on a document: malloc'd. */
static char *xp(const char *xml, const char *expr)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "out.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR);
	xmlXPathContextPtr ctx;
	xmlXPathObjectPtr obj;
	xmlChar *v;
	char *s;

	ck_assert_msg(doc != NULL, "output does not parse: %s", xml);
	ctx = xmlXPathNewContext(doc);
	ck_assert_ptr_nonnull(ctx);
	obj = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	ck_assert_msg(obj != NULL, "bad XPath %s", expr);
	v = xmlXPathCastToString(obj);
	s = strdup((const char *)v);
	ck_assert_ptr_nonnull(s);
	xmlFree(v);
	xmlXPathFreeObject(obj);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return s;
}

#define XP_EQ(xml, expr, want)                                                 \
	do {                                                                   \
		char *got_ = xp(xml, expr);                                    \
		ck_assert_msg(strcmp(got_, want) == 0, "%s is '%s', not '%s'", \
			      expr, got_, want);                               \
		free(got_);                                                    \
	} while (0)

/* The serialized subtree of the first match of an XPath (malloc'd). */
static char *xp_dump(const char *xml, const char *expr)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "out.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR);
	xmlXPathContextPtr ctx;
	xmlXPathObjectPtr obj;
	xmlBufferPtr buf = xmlBufferCreate();
	char *s;

	ck_assert_ptr_nonnull(doc);
	ctx = xmlXPathNewContext(doc);
	obj = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	ck_assert_msg(obj && obj->nodesetval && obj->nodesetval->nodeNr == 1,
		      "%s: not one node", expr);
	xmlNodeDump(buf, doc, obj->nodesetval->nodeTab[0], 0, 0);
	s = strdup((const char *)xmlBufferContent(buf));
	xmlBufferFree(buf);
	xmlXPathFreeObject(obj);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return s;
}

static void expect_refused_msg(const char *xml, size_t len, const char *why)
{
	struct strvec devs = STRVEC_INIT;
	char *name = (char *)"unset";
	struct rewrite_spec spec = { "g", new_disks, N_NEW, NULL, NULL };
	int cloned;

	ck_assert_int_eq(rewrite_check(xml, len, &devs, &name), -1);
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_msg(strstr(error_msg(), why) != NULL,
		      "message '%s' lacks '%s'", error_msg(), why);
	ck_assert_ptr_null(name);
	ck_assert_int_eq((int)devs.n, 0);
	/* rewrite_domain runs the same checks. */
	ck_assert_ptr_null(rewrite_domain(xml, len, &spec, &cloned));
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_msg(strstr(error_msg(), why) != NULL,
		      "message '%s' lacks '%s'", error_msg(), why);
	strvec_release(&devs);
}

static void expect_refused(const char *xml, const char *why)
{
	expect_refused_msg(xml, strlen(xml), why);
}

/* A minimal domain with these devices. */
static char *with_devices(const char *devices)
{
	char *xml = NULL;

	ck_assert_int_ge(asprintf(&xml,
				  "<domain type='kvm'><name>g</name><devices>"
				  "%s</devices></domain>",
				  devices),
			 0);
	return xml;
}

static void expect_devices_refused(const char *devices, const char *why)
{
	char *xml = with_devices(devices);

	expect_refused(xml, why);
	free(xml);
}

START_TEST(test_check_devs_and_name)
{
	struct strvec devs = STRVEC_INIT;
	char *name = NULL;

	ck_assert_int_eq(strvec_push(&devs, "before"), 0);
	ck_assert_int_eq(rewrite_check(guest, strlen(guest), &devs, &name), 0);
	ck_assert_str_eq(name, "db1");
	/* Appended, in document order; media and network disks not. */
	ck_assert_int_eq((int)devs.n, 5);
	ck_assert_str_eq(devs.v[0], "before");
	ck_assert_str_eq(devs.v[1], "vda");
	ck_assert_str_eq(devs.v[2], "vdb");
	ck_assert_str_eq(devs.v[3], "vdc");
	ck_assert_str_eq(devs.v[4], "vdd");
	ck_assert_ptr_null(devs.v[5]);
	strvec_release(&devs);
	free(name);
}
END_TEST

/* What rewrite_check lists is what the source serves (domxml_parse). */
START_TEST(test_check_agrees_with_domxml)
{
	struct strvec devs = STRVEC_INIT;
	struct domxml_info info;
	char *name = NULL;

	ck_assert_int_eq(rewrite_check(guest, strlen(guest), &devs, &name), 0);
	ck_assert_int_eq(domxml_parse(guest, strlen(guest), &info, NULL, NULL),
			 0);
	ck_assert_int_eq((int)devs.n, (int)info.disks.n);
	for (size_t i = 0; i < devs.n; i++)
		ck_assert_str_eq(devs.v[i], info.disks.v[i].dev);
	ck_assert_str_eq(name, info.name);
	domxml_release(&info);
	strvec_release(&devs);
	free(name);
}
END_TEST

START_TEST(test_retarget)
{
	struct target t = { target_isos, NULL, "", 0 };
	struct domxml_info info;
	const char *vdc = "//disk[target/@dev='vdc']";
	int cloned;
	char *out = rewrite_guest("db1", new_disks, N_NEW, &t, &cloned);

	ck_assert_msg(out != NULL, "%s", error_msg());
	ck_assert_int_eq(cloned, 0);
	/* The source side's parser lists exactly the new disks. */
	ck_assert_int_eq(domxml_parse(out, strlen(out), &info, NULL, NULL), 0);
	ck_assert_str_eq(info.name, "db1");
	ck_assert_int_eq((int)info.disks.n, (int)N_NEW);
	for (size_t i = 0; i < N_NEW; i++) {
		const struct disk *d = &info.disks.v[i];

		ck_assert_str_eq(d->dev, new_disks[i].dev);
		ck_assert_str_eq(d->path, new_disks[i].path);
		ck_assert_str_eq(d->format, new_disks[i].format);
		ck_assert_int_eq(d->source_type,
				 new_disks[i].block ? DISK_BLOCK : DISK_FILE);
	}
	domxml_release(&info);
	/* Whole disks: no backing chain, no mirror. */
	XP_EQ(out, "count(//disk/backingStore)", "0");
	XP_EQ(out, "count(//disk/mirror)", "0");
	XP_EQ(out, "count(//disk[target/@dev='vdb']/source)", "1");
	XP_EQ(out, "count(//disk[target/@dev='vdb']/source/@*)", "1");
	XP_EQ(out, "count(//disk[target/@dev='vdb']/source/*)", "0");
	/* The driver's other attributes are kept. */
	XP_EQ(out, "string(//disk[target/@dev='vda']/driver/@cache)", "none");
	XP_EQ(out, "string(//disk[target/@dev='vda']/driver/@io)", "native");
	XP_EQ(out, "string(//disk[target/@dev='vda']/driver/@discard)",
	      "unmap");
	XP_EQ(out, "string(//disk[target/@dev='vda']/driver/@name)", "qemu");
	XP_EQ(out, "string(//disk[target/@dev='vda']/address/@bus)", "0x04");
	/* A block volume: type block, <source dev>. */
	{
		char e[128];

		snprintf(e, sizeof e, "string(%s/@type)", vdc);
		XP_EQ(out, e, "block");
		snprintf(e, sizeof e, "string(%s/source/@dev)", vdc);
		XP_EQ(out, e, "/dev/vg0/db1-vdc");
		snprintf(e, sizeof e, "count(%s/source/@file)", vdc);
		XP_EQ(out, e, "0");
		snprintf(e, sizeof e, "string(%s/driver/@cache)", vdc);
		XP_EQ(out, e, "directsync");
	}
	/* A pool volume becomes a file; pool, volume and startupPolicy go;
	 * it had no <driver>: one is made. */
	XP_EQ(out, "string(//disk[target/@dev='vdd']/@type)", "file");
	XP_EQ(out, "count(//disk[target/@dev='vdd']/source/@*)", "1");
	XP_EQ(out, "string(//disk[target/@dev='vdd']/driver/@name)", "qemu");
	XP_EQ(out, "string(//disk[target/@dev='vdd']/driver/@type)", "raw");
	XP_EQ(out, "string(//disk[target/@dev='vdd']/serial)", "vol-x");
	/* Not a clone: identity kept. */
	XP_EQ(out, "string(/domain/uuid)",
	      "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
	XP_EQ(out, "count(//interface/mac)", "2");
	XP_EQ(out, "string(//interface[1]/mac/@address)", "52:54:00:6b:3c:58");
	XP_EQ(out, "string(//interface[2]/mac/@address)", "52:54:00:6b:3c:59");
	/* The rest is kept. */
	XP_EQ(out, "string(/domain/title)", "Database");
	XP_EQ(out, "string(/domain/description)", "primary & only");
	XP_EQ(out, "string(/domain/@type)", "kvm");
	XP_EQ(out, "string(//cpu/@mode)", "host-passthrough");
	XP_EQ(out, "count(/domain/metadata/*)", "1");
	XP_EQ(out, "count(//controller)", "1");
	XP_EQ(out, "count(//serial[@type='pty'])", "1");
	XP_EQ(out, "count(//disk)", "8");
	ck_assert_ptr_null(strstr(out, "/var/lib/libvirt/images/db1.raw"));
	ck_assert_ptr_null(strstr(out, "/x/base.raw"));
	ck_assert_ptr_null(strstr(out, "/dev/loop3"));
	free(out);
}
END_TEST

START_TEST(test_media)
{
	struct target t = { target_isos, NULL, "", 0 };
	int cloned;
	char *out = rewrite_guest("db1", new_disks, N_NEW, &t, &cloned);

	ck_assert_msg(out != NULL, "%s", error_msg());
	/* Asked once per medium, never about disks or empty drives. */
	ck_assert_int_eq(t.calls, 2);
	ck_assert_str_eq(t.asked, "/iso/debian-12.iso;/iso/drivers.iso;");
	/* On the target: kept. */
	XP_EQ(out, "string(//disk[target/@dev='sda']/source/@file)",
	      "/iso/debian-12.iso");
	/* Not on the target: ejected, the drive stays. */
	XP_EQ(out, "count(//disk[target/@dev='hdc']/source)", "0");
	XP_EQ(out, "string(//disk[target/@dev='hdc']/@device)", "cdrom");
	XP_EQ(out, "count(//disk[target/@dev='hdc']/readonly)", "1");
	XP_EQ(out, "string(//disk[target/@dev='hdc']/target/@bus)", "ide");
	ck_assert_ptr_null(strstr(out, "drivers.iso"));
	/* Empty stays empty. */
	XP_EQ(out, "count(//disk[target/@dev='sdb'])", "1");
	XP_EQ(out, "count(//disk[target/@dev='sdb']/source)", "0");
	free(out);
}
END_TEST

/* Without a callback nothing is known to exist: every medium ejected. */
START_TEST(test_media_without_callback)
{
	struct rewrite_spec spec = { "db1", new_disks, N_NEW, NULL, NULL };
	int cloned;
	char *out = rewrite_domain(guest, strlen(guest), &spec, &cloned);

	ck_assert_msg(out != NULL, "%s", error_msg());
	XP_EQ(out, "count(//disk[@device='cdrom'])", "3");
	XP_EQ(out, "count(//disk[@device='cdrom']/source)", "0");
	free(out);
}
END_TEST

START_TEST(test_media_error)
{
	struct target t = { target_isos, "/iso/drivers.iso", "", 0 };
	int cloned;

	ck_assert_ptr_null(rewrite_guest("db1", new_disks, N_NEW, &t, &cloned));
	/* The callback's error, untouched. */
	ck_assert_int_eq(error_errno(), EIO);
	ck_assert_str_eq(error_msg(),
			 "cannot ask the target about /iso/drivers.iso");
}
END_TEST

/* Network disks, and media that are not files, stay as they are. */
START_TEST(test_network_untouched)
{
	static const char xml[] =
	    "<domain><name>n</name><devices>\n"
	    "  <disk type='network' device='cdrom'>\n"
	    "    <source protocol='https' name='/isos/a.iso'>"
	    "<host name='mirror.example.org' port='443'/></source>\n"
	    "    <target dev='sdc' bus='sata'/><readonly/>\n"
	    "  </disk>\n"
	    "  <disk type='volume' device='cdrom'>\n"
	    "    <source pool='isos' volume='b.iso'/>\n"
	    "    <target dev='sdd' bus='sata'/><readonly/>\n"
	    "  </disk>\n"
	    "</devices></domain>";
	struct target t = { NULL, NULL, "", 0 };
	struct rewrite_spec spec = { "n", NULL, 0, fake_media_exists, &t };
	struct target t2 = { target_isos, NULL, "", 0 };
	const char *exprs[] = { "//disk[target/@dev='vde']",
				"//disk[target/@dev='sdc']",
				"//disk[target/@dev='sdd']" };
	char *out, *out2, *before, *after;
	int cloned;

	out = rewrite_domain(xml, strlen(xml), &spec, &cloned);
	ck_assert_msg(out != NULL, "%s", error_msg());
	ck_assert_int_eq(t.calls, 0);
	for (int i = 1; i < 3; i++) {
		before = xp_dump(xml, exprs[i]);
		after = xp_dump(out, exprs[i]);
		ck_assert_str_eq(after, before);
		free(before);
		free(after);
	}
	out2 = rewrite_guest("db1", new_disks, N_NEW, &t2, &cloned);
	ck_assert_msg(out2 != NULL, "%s", error_msg());
	before = xp_dump(guest, exprs[0]);
	after = xp_dump(out2, exprs[0]);
	ck_assert_str_eq(after, before);
	ck_assert_ptr_nonnull(strstr(after, "nbd.example.org"));
	free(before);
	free(after);
	free(out);
	free(out2);
}
END_TEST

START_TEST(test_clone)
{
	struct target t = { target_isos, NULL, "", 0 };
	struct domxml_info info;
	int cloned;
	char *out = rewrite_guest("db2", new_disks, N_NEW, &t, &cloned);

	ck_assert_msg(out != NULL, "%s", error_msg());
	ck_assert_int_eq(cloned, 1);
	XP_EQ(out, "string(/domain/name)", "db2");
	XP_EQ(out, "count(/domain/name)", "1");
	XP_EQ(out, "count(//uuid)", "0");
	XP_EQ(out, "count(//mac)", "0");
	ck_assert_ptr_null(strstr(out, "52:54:00"));
	ck_assert_ptr_null(strstr(out, "4dea22b3"));
	/* The interfaces themselves stay. */
	XP_EQ(out, "count(//interface[@type='user'])", "2");
	XP_EQ(out, "string(//interface[2]/model/@type)", "e1000e");
	/* Title and description are kept; disks retargeted as ever. */
	XP_EQ(out, "string(/domain/title)", "Database");
	XP_EQ(out, "string(/domain/description)", "primary & only");
	ck_assert_int_eq(domxml_parse(out, strlen(out), &info, NULL, NULL), 0);
	ck_assert_str_eq(info.name, "db2");
	ck_assert_ptr_null(info.uuid);
	ck_assert_int_eq((int)info.disks.n, (int)N_NEW);
	ck_assert_str_eq(info.disks.v[1].path, new_disks[1].path);
	domxml_release(&info);
	free(out);
}
END_TEST

/* A name with XML's special characters is text, not markup. */
START_TEST(test_clone_name_escaped)
{
	struct target t = { target_isos, NULL, "", 0 };
	int cloned;
	char *out = rewrite_guest("a&b<c>'\"", new_disks, N_NEW, &t, &cloned);

	ck_assert_msg(out != NULL, "%s", error_msg());
	ck_assert_int_eq(cloned, 1);
	XP_EQ(out, "string(/domain/name)", "a&b<c>'\"");
	XP_EQ(out, "count(/domain/name/*)", "0");
	free(out);
}
END_TEST

START_TEST(test_conversion)
{
	struct rewrite_disk d[] = {
		{ "vda", "/p/db1-vda.qcow2", "qcow2", 0 },
		{ "vdb", "/p/db1-vdb.raw", "raw", 0 },
		{ "vdc", "/p/db1-vdc.qcow2", "qcow2", 0 },
		{ "vdd", "/dev/vg0/db1-vdd", "raw", 1 },
	};
	struct target t = { target_isos, NULL, "", 0 };
	struct domxml_info info;
	int cloned;
	char *out = rewrite_guest("db1", d, 4, &t, &cloned);

	ck_assert_msg(out != NULL, "%s", error_msg());
	/* raw file to qcow2 file, options kept. */
	XP_EQ(out, "string(//disk[target/@dev='vda']/driver/@type)", "qcow2");
	XP_EQ(out, "string(//disk[target/@dev='vda']/driver/@cache)", "none");
	XP_EQ(out, "count(//disk[target/@dev='vda']/driver)", "1");
	/* qcow2 with a backing file to a flat raw file. */
	XP_EQ(out, "string(//disk[target/@dev='vdb']/driver/@type)", "raw");
	/* block device to file. */
	XP_EQ(out, "string(//disk[target/@dev='vdc']/@type)", "file");
	XP_EQ(out, "string(//disk[target/@dev='vdc']/source/@file)",
	      "/p/db1-vdc.qcow2");
	XP_EQ(out, "count(//disk[target/@dev='vdc']/source/@dev)", "0");
	/* pool volume to block device. */
	XP_EQ(out, "string(//disk[target/@dev='vdd']/@type)", "block");
	XP_EQ(out, "string(//disk[target/@dev='vdd']/source/@dev)",
	      "/dev/vg0/db1-vdd");
	ck_assert_int_eq(domxml_parse(out, strlen(out), &info, NULL, NULL), 0);
	ck_assert_int_eq((int)info.disks.n, 4);
	ck_assert_str_eq(info.disks.v[0].format, "qcow2");
	ck_assert_int_eq(info.disks.v[2].source_type, DISK_FILE);
	ck_assert_int_eq(info.disks.v[3].source_type, DISK_BLOCK);
	ck_assert_str_eq(info.disks.v[3].path, "/dev/vg0/db1-vdd");
	domxml_release(&info);
	free(out);
}
END_TEST

START_TEST(test_missing_volume)
{
	struct rewrite_disk d[] = { new_disks[0], new_disks[1], new_disks[3] };
	struct target t = { target_isos, NULL, "", 0 };
	int cloned;

	ck_assert_ptr_null(rewrite_guest("db1", d, 3, &t, &cloned));
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_str_eq(error_msg(), "no volume for disk vdc");
	ck_assert_ptr_null(rewrite_guest("db1", NULL, 0, &t, &cloned));
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_str_eq(error_msg(), "no volume for disk vda");
}
END_TEST

/* Volumes the XML does not name are ignored. */
START_TEST(test_extra_volume_ignored)
{
	struct rewrite_disk d[] = { new_disks[0],
				    { "vdz", "/p/vdz.raw", "raw", 0 },
				    new_disks[1],
				    new_disks[2],
				    new_disks[3] };
	struct target t = { target_isos, NULL, "", 0 };
	int cloned;
	char *out = rewrite_guest("db1", d, 5, &t, &cloned);

	ck_assert_msg(out != NULL, "%s", error_msg());
	ck_assert_ptr_null(strstr(out, "vdz"));
	XP_EQ(out, "count(//disk)", "8");
	free(out);
}
END_TEST

/* An empty disk (no source) is not listed, nor copied, and stays. */
START_TEST(test_empty_disk)
{
	static const char devices[] =
	    "<disk type='file' device='disk'><source file='/a.raw'/>"
	    "<target dev='vda'/></disk>"
	    "<disk type='file' device='disk'><target dev='vdb'/></disk>"
	    "<disk type='block' device='lun'><source/><target dev='sda'/>"
	    "</disk>";
	char *xml = with_devices(devices), *name = NULL, *out;
	struct strvec devs = STRVEC_INIT;
	struct domxml_info info;
	struct rewrite_spec spec = { "g", new_disks, 1, NULL, NULL };
	int cloned;

	ck_assert_int_eq(rewrite_check(xml, strlen(xml), &devs, &name), 0);
	ck_assert_int_eq((int)devs.n, 1);
	ck_assert_str_eq(devs.v[0], "vda");
	ck_assert_int_eq(domxml_parse(xml, strlen(xml), &info, NULL, NULL), 0);
	ck_assert_int_eq((int)info.disks.n, 1);
	domxml_release(&info);
	out = rewrite_domain(xml, strlen(xml), &spec, &cloned);
	ck_assert_msg(out != NULL, "%s", error_msg());
	XP_EQ(out, "count(//disk[target/@dev='vdb']/source)", "0");
	XP_EQ(out, "string(//disk[target/@dev='sda']/@type)", "block");
	XP_EQ(out, "string(//disk[target/@dev='vda']/source/@file)",
	      new_disks[0].path);
	free(out);
	free(name);
	free(xml);
	strvec_release(&devs);
}
END_TEST

START_TEST(test_refuse_qemu_commandline)
{
	static const char xml[] =
	    "<domain type='kvm' "
	    "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
	    "  <name>g</name>\n"
	    "  <devices/>\n"
	    "  <qemu:commandline>\n"
	    "    <qemu:arg value='-set'/>\n"
	    "    <qemu:arg value='device.x.y=z'/>\n"
	    "  </qemu:commandline>\n"
	    "</domain>\n";

	expect_refused(xml, "qemu:commandline");
	expect_refused(xml, "http://libvirt.org/schemas/domain/qemu/1.0");
}
END_TEST

START_TEST(test_refuse_namespaces)
{
	/* QEMU's namespace anywhere, even in <metadata>. */
	expect_refused("<domain xmlns:q='http://libvirt.org/schemas/domain/"
		       "qemu/1.0'><name>g</name><metadata><q:capabilities>"
		       "<q:del capability='x'/></q:capabilities></metadata>"
		       "</domain>",
		       "q:capabilities");
	expect_refused("<domain><name>g</name><devices><disk type='file'>"
		       "<source file='/a'/><target dev='vda'/>"
		       "<qemu:override xmlns:qemu='http://libvirt.org/schemas/"
		       "domain/qemu/1.0'/></disk></devices></domain>",
		       "qemu:override");
	/* Any other namespace outside <metadata>, even a default one. */
	expect_refused("<domain><name>g</name><devices><x xmlns='urn:x'/>"
		       "</devices></domain>",
		       "urn:x");
	expect_refused("<domain xmlns:lxc='http://libvirt.org/schemas/domain/"
		       "lxc/1.0'><name>g</name><lxc:namespace/></domain>",
		       "lxc:namespace");
	expect_refused("<d:domain xmlns:d='urn:d'><d:name>g</d:name>"
		       "</d:domain>",
		       "not <domain>");
}
END_TEST

/* Applications' elements in <metadata> are fine and kept. */
START_TEST(test_metadata_kept)
{
	static const char xml[] =
	    "<domain><name>g</name><metadata><app:cfg xmlns:app='urn:app'>"
	    "<app:k v='1'/></app:cfg></metadata><devices/></domain>";
	struct strvec devs = STRVEC_INIT;
	struct rewrite_spec spec = { "g", NULL, 0, NULL, NULL };
	char *name = NULL, *out;
	int cloned;

	ck_assert_int_eq(rewrite_check(xml, strlen(xml), &devs, &name), 0);
	ck_assert_int_eq((int)devs.n, 0);
	out = rewrite_domain(xml, strlen(xml), &spec, &cloned);
	ck_assert_msg(out != NULL, "%s", error_msg());
	ck_assert_int_eq(cloned, 0);
	ck_assert_ptr_nonnull(strstr(out, "<app:k v=\"1\"/>"));
	free(out);
	free(name);
}
END_TEST

/* Written to a file so that a leak of its content can be looked for. */
static char secret_path[64];
static const char secret[] = "kvmmigfs-secret-a8f3e1";

static void secret_setup(void)
{
	int fd;
	FILE *f;

	snprintf(secret_path, sizeof secret_path, "/tmp/rewrite-xxe-XXXXXX");
	fd = mkstemp(secret_path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", secret);
	fclose(f);
}

static void secret_teardown(void)
{
	unlink(secret_path);
}

/* tmpl with its first "@" replaced by the secret file's path. */
static char *with_secret(const char *tmpl)
{
	const char *at = strchr(tmpl, '@');
	char *xml = NULL;

	ck_assert_int_ge(asprintf(&xml, "%.*s%s%s",
				  at ? (int)(at - tmpl) : (int)strlen(tmpl),
				  tmpl, at ? secret_path : "",
				  at ? at + 1 : ""),
			 0);
	return xml;
}

/* Refused, and neither the secret file nor /etc/passwd shows anywhere. */
static void expect_no_leak(const char *tmpl)
{
	struct strvec devs = STRVEC_INIT;
	struct rewrite_spec spec = { "g", NULL, 0, NULL, NULL };
	char *xml = with_secret(tmpl), *name = NULL, *out;
	int cloned;

	ck_assert_int_eq(rewrite_check(xml, strlen(xml), &devs, &name), -1);
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_ptr_null(strstr(error_msg(), secret));
	ck_assert_ptr_null(strstr(error_msg(), "root:"));
	ck_assert_ptr_null(name);
	ck_assert_int_eq((int)devs.n, 0);
	out = rewrite_domain(xml, strlen(xml), &spec, &cloned);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_ptr_null(strstr(error_msg(), secret));
	ck_assert_ptr_null(strstr(error_msg(), "root:"));
	free(xml);
}

START_TEST(test_refuse_doctype_xxe)
{
	expect_refused("<!DOCTYPE domain><domain><name>g</name></domain>",
		       "DOCTYPE");
	expect_refused("<?xml version='1.0'?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "
		       "'file:///etc/passwd'>]>\n<domain><name>&x;</name>"
		       "<description>&x;</description></domain>",
		       "DOCTYPE");
	/* General, parameter and external-subset entities. */
	expect_no_leak("<!DOCTYPE d [<!ENTITY x SYSTEM 'file://@'>]>"
		       "<domain><name>&x;</name></domain>");
	expect_no_leak("<!DOCTYPE d [<!ENTITY % p SYSTEM 'file://@'> %p;]>"
		       "<domain><name>g</name></domain>");
	expect_no_leak("<!DOCTYPE d SYSTEM '@'><domain><name>g</name>"
		       "</domain>");
	expect_no_leak("<!DOCTYPE d [<!ENTITY x SYSTEM '@'>]><domain><name>"
		       "g</name><devices><disk type='file'><source file="
		       "'/a&x;'/><target dev='vda'/></disk></devices>"
		       "</domain>");
	/* Without a DOCTYPE an entity is undefined: not well-formed. */
	expect_no_leak("<domain><name>&x;</name></domain>");
}
END_TEST

START_TEST(test_refuse_billion_laughs)
{
	static const char xml[] =
	    "<?xml version='1.0'?>\n<!DOCTYPE lolz [\n"
	    "<!ENTITY a 'lollollollollollollollollollol'>\n"
	    "<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>\n"
	    "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>\n"
	    "<!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>\n"
	    "<!ENTITY e '&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;'>\n"
	    "<!ENTITY f '&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;'>\n"
	    "<!ENTITY g '&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;'>\n"
	    "<!ENTITY h '&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;'>\n"
	    "<!ENTITY i '&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;'>\n"
	    "]>\n<domain><name>&i;</name><title>&i;&i;&i;&i;</title>"
	    "</domain>\n";
	struct timespec t0, t1;
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 10; i++)
		expect_refused(xml, "domain XML");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	     (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	/* Expanded, it would be gigabytes: 20 parses take milliseconds
	 * (generous for valgrind). */
	ck_assert_msg(ms < 2000, "20 parses took %.0f ms", ms);
}
END_TEST

START_TEST(test_refuse_hostdev)
{
	expect_devices_refused(
	    "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
	    "<address domain='0x0000' bus='0x03' slot='0x00' "
	    "function='0x0'/></source></hostdev>",
	    "<hostdev>");
	expect_devices_refused(
	    "<hostdev mode='subsystem' type='usb'><source><vendor "
	    "id='0x046d'/><product id='0xc52b'/></source></hostdev>",
	    "host devices");
	expect_devices_refused(
	    "<interface type='hostdev' managed='yes'><source><address "
	    "type='pci' domain='0x0000' bus='0x03' slot='0x10' "
	    "function='0x1'/></source></interface>",
	    "interface type='hostdev'");
}
END_TEST

START_TEST(test_refuse_cdrom_block)
{
	expect_devices_refused(
	    "<disk type='block' device='cdrom'><driver name='qemu' "
	    "type='raw'/><source dev='/dev/sr0'/><target dev='hdc' "
	    "bus='ide'/><readonly/></disk>",
	    "host block devices as removable media are not migrated");
	expect_devices_refused("<disk type='block' device='floppy'><source "
			       "dev='/dev/fd0'/><target dev='fda'/></disk>",
			       "host block devices as removable media");
}
END_TEST

START_TEST(test_refuse_disk_types)
{
	expect_devices_refused("<disk type='dir' device='disk'><driver "
			       "name='qemu' type='fat'/><source dir='/srv/x'/>"
			       "<target dev='vda'/></disk>",
			       "type 'dir'");
	expect_devices_refused("<disk type='nvme' device='disk'><source "
			       "type='pci' managed='yes' namespace='1'>"
			       "<address domain='0x0000' bus='0x01' "
			       "slot='0x00' function='0x0'/></source>"
			       "<target dev='vda'/></disk>",
			       "type 'nvme'");
	expect_devices_refused("<disk type='vhostuser' device='disk'><source "
			       "type='unix' path='/tmp/vhost.sock'/>"
			       "<target dev='vda'/></disk>",
			       "type 'vhostuser'");
	expect_devices_refused("<disk type='dir' device='floppy'><source "
			       "dir='/srv/x'/><target dev='fda'/></disk>",
			       "type 'dir'");
}
END_TEST

START_TEST(test_refuse_duplicate_dev)
{
	expect_devices_refused(
	    "<disk type='file'><source file='/a'/><target dev='vda'/></disk>"
	    "<disk type='block'><source dev='/dev/b'/><target dev='vda'/>"
	    "</disk>",
	    "disk vda appears twice");
	expect_devices_refused(
	    "<disk type='file'><source file='/a'/><target dev='sda'/></disk>"
	    "<disk type='file' device='cdrom'><target dev='sda'/></disk>",
	    "disk sda appears twice");
}
END_TEST

START_TEST(test_refuse_bad_disks)
{
	/* Target dev missing or unsafe as a file name. */
	expect_devices_refused("<disk type='file'><source file='/a'/></disk>",
			       "target dev");
	expect_devices_refused("<disk type='file'><source file='/a'/><target "
			       "dev='../vda'/></disk>",
			       "target dev");
	expect_devices_refused("<disk type='volume'><source pool='p' "
			       "volume='v'/><target dev=''/></disk>",
			       "target dev");
	/* What the source side would not serve is refused, not waited
	 * for forever. */
	expect_devices_refused("<disk type='file'><source file='a.raw'/>"
			       "<target dev='vda'/></disk>",
			       "disk vda: source path is not absolute");
	expect_devices_refused("<disk type='volume'><source pool='p'/>"
			       "<target dev='vda'/></disk>",
			       "disk vda: a volume disk needs a pool");
	expect_devices_refused("<disk type='file'><driver type='qcow2/x'/>"
			       "<source file='/a'/><target dev='vda'/></disk>",
			       "disk vda: unusable <driver type>");
}
END_TEST

START_TEST(test_refuse_document)
{
	expect_refused("<domain><name>g</name>", "not well-formed");
	expect_refused("", "not well-formed");
	expect_refused("<vm><name>g</name></vm>", "root element is not");
	expect_refused("<domain><devices/></domain>", "no <name>");
	expect_refused("<domain><name></name></domain>", "no <name>");
	/* len counts, not a NUL. */
	expect_refused_msg("<domain><name>g</name></domain>", 10,
			   "not well-formed");
}
END_TEST

static char *padded(size_t len)
{
	static const char head[] = "<domain><name>big</name><!--";
	static const char tail[] = "--></domain>";
	char *xml = malloc(len + 1);

	ck_assert_ptr_nonnull(xml);
	memcpy(xml, head, sizeof head - 1);
	memset(xml + sizeof head - 1, 'x', len - (sizeof head - 1));
	memcpy(xml + len - (sizeof tail - 1), tail, sizeof tail);
	return xml;
}

START_TEST(test_refuse_oversize)
{
	char *xml = padded(DOMXML_MAX_SIZE + 1);
	struct strvec devs = STRVEC_INIT;
	char *name = NULL;

	expect_refused(xml, "larger than");
	free(xml);
	/* The limit itself is fine. */
	xml = padded(DOMXML_MAX_SIZE);
	ck_assert_int_eq(strlen(xml), DOMXML_MAX_SIZE);
	ck_assert_int_eq(rewrite_check(xml, DOMXML_MAX_SIZE, &devs, &name), 0);
	ck_assert_str_eq(name, "big");
	free(name);
	free(xml);
}
END_TEST

/* A refusal leaves the caller's vector as it was. */
START_TEST(test_refusal_keeps_devs)
{
	char *xml = with_devices(
	    "<disk type='file'><source file='/a'/><target dev='vda'/></disk>"
	    "<disk type='file'><source file='/b'/><target dev='vdb'/></disk>"
	    "<hostdev mode='subsystem' type='pci'/>");
	struct strvec devs = STRVEC_INIT;
	char *name = NULL;

	ck_assert_int_eq(strvec_push(&devs, "x"), 0);
	ck_assert_int_eq(rewrite_check(xml, strlen(xml), &devs, &name), -1);
	ck_assert_int_eq((int)devs.n, 1);
	ck_assert_str_eq(devs.v[0], "x");
	ck_assert_ptr_null(devs.v[1]);
	ck_assert_ptr_null(name);
	strvec_release(&devs);
	free(xml);
}
END_TEST

START_TEST(test_many_disks)
{
	enum { N = 300 };
	static char paths[N][32], devnames[N][16];
	struct rewrite_disk d[N];
	struct strvec devs = STRVEC_INIT, again = STRVEC_INIT;
	struct domxml_info info;
	struct rewrite_spec spec = { "many", d, N, NULL, NULL };
	size_t cap = 64 + (size_t)N * 160, len;
	char *xml = malloc(cap), *name = NULL, *name2 = NULL, *out;
	int cloned;

	ck_assert_ptr_nonnull(xml);
	len =
	    (size_t)snprintf(xml, cap, "<domain><name>many</name><devices>\n");
	for (int i = 0; i < N; i++) {
		/* A qcow2 file, a block device, a pool volume in turn. */
		if (i % 3 == 0)
			len += (size_t)snprintf(
			    xml + len, cap - len,
			    "<disk type='file' device='disk'><driver "
			    "name='qemu' type='qcow2'/><source "
			    "file='/o/d%d.qcow2'/><target "
			    "dev='vd%d'/></disk>\n",
			    i, i);
		else if (i % 3 == 1)
			len += (size_t)snprintf(
			    xml + len, cap - len,
			    "<disk type='block' device='disk'><source "
			    "dev='/dev/o%d'/><target dev='vd%d'/></disk>\n",
			    i, i);
		else
			len += (size_t)snprintf(
			    xml + len, cap - len,
			    "<disk type='volume' device='disk'><source "
			    "pool='p' "
			    "volume='v%d'/><target dev='vd%d'/></disk>\n",
			    i, i);
		snprintf(devnames[i], sizeof devnames[i], "vd%d", i);
		snprintf(paths[i], sizeof paths[i], "/n/many-vd%d.raw", i);
		d[i] = (struct rewrite_disk){ devnames[i], paths[i],
					      i % 2 ? "raw" : "qcow2", 0 };
	}
	snprintf(xml + len, cap - len, "</devices></domain>\n");
	ck_assert_int_eq(rewrite_check(xml, strlen(xml), &devs, &name), 0);
	ck_assert_int_eq((int)devs.n, N);
	for (int i = 0; i < N; i++)
		ck_assert_str_eq(devs.v[i], devnames[i]);
	out = rewrite_domain(xml, strlen(xml), &spec, &cloned);
	ck_assert_msg(out != NULL, "%s", error_msg());
	ck_assert_int_eq(cloned, 0);
	ck_assert_int_eq(domxml_parse(out, strlen(out), &info, NULL, NULL), 0);
	ck_assert_int_eq((int)info.disks.n, N);
	for (int i = 0; i < N; i++) {
		ck_assert_str_eq(info.disks.v[i].dev, devnames[i]);
		ck_assert_str_eq(info.disks.v[i].path, paths[i]);
		ck_assert_str_eq(info.disks.v[i].format, d[i].format);
		ck_assert_int_eq(info.disks.v[i].source_type, DISK_FILE);
	}
	domxml_release(&info);
	/* The output passes the check again, with the same disks. */
	ck_assert_int_eq(rewrite_check(out, strlen(out), &again, &name2), 0);
	ck_assert_int_eq((int)again.n, N);
	strvec_release(&again);
	strvec_release(&devs);
	free(name);
	free(name2);
	free(out);
	free(xml);
}
END_TEST

/*
 * A second guest, web1 (every kind of disk: file, qcow2 on a backing file,
 * block, pool volume, CD-ROMs present, gone and empty, network), with a
 * media callback that answers by path alone.
 */
static const char web1_xml[] =
    "<domain type='kvm'>\n"
    "  <name>web1</name>\n"
    "  <uuid>9fa3360a-87cb-49b6-1218-e6783b0b0f93</uuid>\n"
    "  <memory unit='KiB'>65536</memory>\n"
    "  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n"
    "  <devices>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/var/lib/libvirt/images/web1-vda.raw'/>\n"
    "      <target dev='vda' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='qcow2' cache='none' discard='unmap'/>\n"
    "      <source file='/var/lib/libvirt/images/web1-vdb.qcow2'/>\n"
    "      <backingStore type='file'><format type='raw'/>"
    "<source file='/x/base.raw'/><backingStore/></backingStore>\n"
    "      <target dev='vdb' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='block' device='disk'>\n"
    "      <source dev='/dev/loop3'/>\n"
    "      <target dev='vdc' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='volume' device='disk'>\n"
    "      <driver name='qemu' type='qcow2'/>\n"
    "      <source pool='default' volume='x.qcow2'/>\n"
    "      <target dev='vdd' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <source file='/iso/here.iso'/><target dev='sda' bus='sata'/>"
    "<readonly/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <source file='/iso/gone.iso'/><target dev='hdc' bus='ide'/>"
    "<readonly/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'><target dev='sdb' bus='sata'/>"
    "</disk>\n"
    "    <disk type='network' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source protocol='nbd' name='x'><host name='10.0.0.1' "
    "port='10809'/></source>\n"
    "      <target dev='vde' bus='virtio'/>\n"
    "    </disk>\n"
    "    <interface type='user'><mac address='52:54:00:01:02:03'/>"
    "<model type='virtio'/></interface>\n"
    "    <interface type='user'><mac address='52:54:00:01:02:04'/>"
    "</interface>\n"
    "  </devices>\n"
    "  <metadata><app:x xmlns:app='urn:app'/></metadata>\n"
    "</domain>\n";

static const struct rewrite_disk web1_disks[] = {
	{ "vda", "/pool/new1-vda.raw", "raw", 0 },
	{ "vdb", "/pool/new1-vdb.qcow2", "qcow2", 0 },
	{ "vdc", "/pool/new1-vdc.raw", "raw", 0 },
	{ "vdd", "/dev/vg/new1-vdd", "raw", 1 },
};

/* The target has /iso/here.iso only; "/fail" makes the check fail. */
static int web1_media(void *opaque, const char *path)
{
	(void)opaque;
	if (strcmp(path, "/iso/fail.iso") == 0) {
		error_set(ETIMEDOUT, "no answer");
		return -1;
	}
	return strcmp(path, "/iso/here.iso") == 0;
}

static char *rewrite_web1(const char *name, const struct rewrite_disk *d,
			  size_t n, int *cloned)
{
	struct rewrite_spec spec = { name, d, n, web1_media, NULL };

	return rewrite_domain(web1_xml, strlen(web1_xml), &spec, cloned);
}

START_TEST(test_web1_check_lists_disks)
{
	struct strvec devs = STRVEC_INIT;
	char *name = NULL;

	ck_assert_int_eq(
	    rewrite_check(web1_xml, strlen(web1_xml), &devs, &name), 0);
	ck_assert_str_eq(name, "web1");
	ck_assert_int_eq((int)devs.n, 4);
	ck_assert_str_eq(devs.v[0], "vda");
	ck_assert_str_eq(devs.v[1], "vdb");
	ck_assert_str_eq(devs.v[2], "vdc");
	ck_assert_str_eq(devs.v[3], "vdd");
	strvec_release(&devs);
	free(name);
}
END_TEST

START_TEST(test_web1_same_name)
{
	int cloned = -1;
	char *out = rewrite_web1("web1", web1_disks, 4, &cloned);

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(cloned, 0);
	XP_EQ(out, "string(/domain/name)", "web1");
	XP_EQ(out, "string(/domain/uuid)",
	      "9fa3360a-87cb-49b6-1218-e6783b0b0f93");
	XP_EQ(out, "count(//interface/mac)", "2");
	/* Disks point at the new volumes. */
	XP_EQ(out, "string(//disk[target/@dev='vda']/source/@file)",
	      "/pool/new1-vda.raw");
	XP_EQ(out, "string(//disk[target/@dev='vdb']/source/@file)",
	      "/pool/new1-vdb.qcow2");
	XP_EQ(out, "string(//disk[target/@dev='vdb']/driver/@type)", "qcow2");
	XP_EQ(out, "string(//disk[target/@dev='vdb']/driver/@cache)", "none");
	XP_EQ(out, "string(//disk[target/@dev='vdb']/driver/@discard)",
	      "unmap");
	XP_EQ(out, "count(//disk[target/@dev='vdb']/backingStore)", "0");
	/* A block source becomes a file; a volume becomes a block device. */
	XP_EQ(out, "string(//disk[target/@dev='vdc']/@type)", "file");
	XP_EQ(out, "string(//disk[target/@dev='vdc']/driver/@type)", "raw");
	XP_EQ(out, "count(//disk[target/@dev='vdc']/source/@dev)", "0");
	XP_EQ(out, "string(//disk[target/@dev='vdd']/@type)", "block");
	XP_EQ(out, "string(//disk[target/@dev='vdd']/source/@dev)",
	      "/dev/vg/new1-vdd");
	XP_EQ(out, "count(//disk[target/@dev='vdd']/source/@pool)", "0");
	/* Media: kept where present, ejected where not, empty stays so. */
	XP_EQ(out, "string(//disk[target/@dev='sda']/source/@file)",
	      "/iso/here.iso");
	XP_EQ(out, "count(//disk[target/@dev='hdc']/source)", "0");
	XP_EQ(out, "count(//disk[target/@dev='hdc'])", "1");
	XP_EQ(out, "count(//disk[target/@dev='sdb']/source)", "0");
	/* The network disk is untouched; other metadata stays. */
	XP_EQ(out, "string(//disk[target/@dev='vde']/source/host/@name)",
	      "10.0.0.1");
	XP_EQ(out, "string(//disk[target/@dev='vde']/@type)", "network");
	XP_EQ(out, "count(/domain/metadata/*)", "1");
	free(out);
}
END_TEST

START_TEST(test_web1_clone)
{
	int cloned = -1;
	char *out = rewrite_web1("new1", web1_disks, 4, &cloned);

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(cloned, 1);
	XP_EQ(out, "string(/domain/name)", "new1");
	XP_EQ(out, "count(/domain/uuid)", "0");
	XP_EQ(out, "count(//interface)", "2");
	XP_EQ(out, "count(//interface/mac)", "0");
	XP_EQ(out, "string(//interface/model/@type)", "virtio");
	free(out);
}
END_TEST

/* The sizes kvmmigfs serves for the copy are removed at define. */
START_TEST(test_web1_sizes_removed)
{
	const char *devs[] = { "vda" };
	unsigned long long sizes[] = { 4096 };
	char *served =
	    domxml_with_sizes(web1_xml, strlen(web1_xml), devs, sizes, NULL, 1);
	struct rewrite_spec spec = { "web1", web1_disks, 4, web1_media, NULL };
	int cloned;
	char *out;

	ck_assert_ptr_nonnull(served);
	out = rewrite_domain(served, strlen(served), &spec, &cloned);
	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_null(strstr(out, DOMXML_NS));
	XP_EQ(out, "count(/domain/metadata/*)", "1"); /* app:x stays */
	free(out);
	free(served);
}
END_TEST

START_TEST(test_web1_conversion_and_no_driver)
{
	struct rewrite_disk d[] = {
		{ "vda", "/p/a.qcow2", "qcow2", 0 },
		{ "vdb", "/p/b.raw", "raw", 0 },
		{ "vdc", "/p/c.qcow2", "qcow2", 0 },
		{ "vdd", "/p/d.raw", "raw", 0 },
	};
	int cloned;
	char *out = rewrite_web1("web1", d, 4, &cloned);

	ck_assert_ptr_nonnull(out);
	XP_EQ(out, "string(//disk[target/@dev='vda']/driver/@type)", "qcow2");
	XP_EQ(out, "string(//disk[target/@dev='vdb']/driver/@type)", "raw");
	/* vdc had no <driver>: one is made. */
	XP_EQ(out, "string(//disk[target/@dev='vdc']/driver/@name)", "qemu");
	XP_EQ(out, "string(//disk[target/@dev='vdc']/driver/@type)", "qcow2");
	free(out);
}
END_TEST

START_TEST(test_web1_missing_volume)
{
	int cloned;

	ck_assert_ptr_null(rewrite_web1("web1", web1_disks, 3, &cloned));
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_ptr_nonnull(strstr(error_msg(), "vdd"));
}
END_TEST

START_TEST(test_web1_media_error)
{
	static const char xml[] =
	    "<domain><name>g</name><devices><disk type='file' device='cdrom'>"
	    "<source file='/iso/fail.iso'/><target dev='hdc'/></disk>"
	    "</devices></domain>";
	struct rewrite_spec spec = { "g", NULL, 0, web1_media, NULL };
	int cloned;

	ck_assert_ptr_null(rewrite_domain(xml, strlen(xml), &spec, &cloned));
	ck_assert_int_eq(error_errno(), ETIMEDOUT);
}
END_TEST

static void web1_refused(const char *xml, const char *why)
{
	struct strvec devs = STRVEC_INIT;
	char *name = NULL;

	ck_assert_int_eq(rewrite_check(xml, strlen(xml), &devs, &name), -1);
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_msg(strstr(error_msg(), why) != NULL, "'%s' lacks '%s'",
		      error_msg(), why);
	ck_assert_ptr_null(strstr(error_msg(), "root:"));
	strvec_release(&devs);
	free(name);
}

START_TEST(test_web1_refusals)
{
	web1_refused("<domain><name>x</name>", "not well-formed");
	web1_refused("<?xml version='1.0'?><!DOCTYPE d [<!ENTITY x SYSTEM "
		     "'file:///etc/passwd'>]><domain><name>&x;</name></domain>",
		     "DOCTYPE");
	web1_refused("<vm><name>x</name></vm>", "not <domain>");
	web1_refused("<domain><devices/></domain>", "no <name>");
	web1_refused(
	    "<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/"
	    "1.0'><name>x</name><qemu:commandline><qemu:arg value='-x'/>"
	    "</qemu:commandline></domain>",
	    "qemu:commandline");
	web1_refused("<domain><name>x</name><devices><hostdev mode='subsystem' "
		     "type='pci'/></devices></domain>",
		     "hostdev");
	web1_refused(
	    "<domain><name>x</name><devices><disk type='block' "
	    "device='cdrom'><source dev='/dev/sr0'/><target dev='hdc'/>"
	    "</disk></devices></domain>",
	    "host block devices");
	web1_refused(
	    "<domain><name>x</name><devices><disk type='dir' "
	    "device='disk'><source dir='/tmp'/><target dev='vda'/></disk>"
	    "</devices></domain>",
	    "type 'dir'");
	web1_refused("<domain><name>x</name><devices><disk type='file'>"
		     "<source file='/a'/><target dev='vda'/></disk><disk "
		     "type='file'><source file='/b'/><target dev='vda'/></disk>"
		     "</devices></domain>",
		     "vda appears twice");
	web1_refused("<domain><name>x</name><devices><disk type='file'>"
		     "<source file='/a'/><target dev='../x'/></disk></devices>"
		     "</domain>",
		     "target dev");
}
END_TEST

START_TEST(test_web1_billion_laughs)
{
	static const char xml[] =
	    "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'>"
	    "<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>"
	    "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>"
	    "<!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>"
	    "<!ENTITY e '&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;'>]>"
	    "<domain><name>&e;&e;&e;&e;&e;&e;&e;&e;</name></domain>";

	/* libxml2 may stop at the entity loop before the DOCTYPE check:
	 * either way it is refused, fast (the suite's timeout). */
	web1_refused(xml, "domain XML");
}
END_TEST

/* Many disks: all listed, all rewritten; the output vets again. */
START_TEST(test_web1_many_disks)
{
	size_t n = 300, len = 0, cap = n * 200 + 100;
	char *xml = malloc(cap), name[16];
	struct rewrite_disk *d = calloc(n, sizeof *d);
	char(*paths)[32] = calloc(n, sizeof *paths);
	char(*devs)[16] = calloc(n, sizeof *devs);
	struct strvec got = STRVEC_INIT;
	struct rewrite_spec spec;
	char *out, *nm = NULL;
	int cloned;

	len += (size_t)snprintf(xml + len, cap - len,
				"<domain><name>m</name><devices>");
	for (size_t i = 0; i < n; i++) {
		snprintf(devs[i], sizeof devs[i], "vd%zu", i);
		snprintf(paths[i], sizeof paths[i], "/p/m-vd%zu.raw", i);
		d[i] = (struct rewrite_disk){ devs[i], paths[i], "raw", 0 };
		len +=
		    (size_t)snprintf(xml + len, cap - len,
				     "<disk type='file'><source file='/o%zu'/>"
				     "<target dev='vd%zu'/></disk>",
				     i, i);
	}
	snprintf(xml + len, cap - len, "</devices></domain>");
	spec = (struct rewrite_spec){ "m", d, n, web1_media, NULL };
	out = rewrite_domain(xml, strlen(xml), &spec, &cloned);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(rewrite_check(out, strlen(out), &got, &nm), 0);
	ck_assert_int_eq((int)got.n, (int)n);
	snprintf(name, sizeof name, "vd%zu", n - 1);
	ck_assert_str_eq(got.v[n - 1], name);
	XP_EQ(out, "string(//disk[target/@dev='vd299']/source/@file)",
	      "/p/m-vd299.raw");
	strvec_release(&got);
	free(nm);
	free(out);
	free(xml);
	free(d);
	free(paths);
	free(devs);
}
END_TEST

Suite *rewrite_suite(void)
{
	Suite *s = suite_create("rewrite");
	TCase *tc = tcase_create("rewrite");
	TCase *refuse = tcase_create("refusals");
	TCase *web1 = tcase_create("web1");

	tcase_add_test(tc, test_check_devs_and_name);
	tcase_add_test(tc, test_check_agrees_with_domxml);
	tcase_add_test(tc, test_retarget);
	tcase_add_test(tc, test_media);
	tcase_add_test(tc, test_media_without_callback);
	tcase_add_test(tc, test_media_error);
	tcase_add_test(tc, test_network_untouched);
	tcase_add_test(tc, test_clone);
	tcase_add_test(tc, test_clone_name_escaped);
	tcase_add_test(tc, test_conversion);
	tcase_add_test(tc, test_missing_volume);
	tcase_add_test(tc, test_extra_volume_ignored);
	tcase_add_test(tc, test_empty_disk);
	tcase_add_test(tc, test_metadata_kept);
	tcase_add_test(tc, test_many_disks);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(refuse, secret_setup, secret_teardown);
	tcase_add_test(refuse, test_refuse_qemu_commandline);
	tcase_add_test(refuse, test_refuse_namespaces);
	tcase_add_test(refuse, test_refuse_doctype_xxe);
	tcase_add_test(refuse, test_refuse_billion_laughs);
	tcase_add_test(refuse, test_refuse_hostdev);
	tcase_add_test(refuse, test_refuse_cdrom_block);
	tcase_add_test(refuse, test_refuse_disk_types);
	tcase_add_test(refuse, test_refuse_duplicate_dev);
	tcase_add_test(refuse, test_refuse_bad_disks);
	tcase_add_test(refuse, test_refuse_document);
	tcase_add_test(refuse, test_refuse_oversize);
	tcase_add_test(refuse, test_refusal_keeps_devs);
	suite_add_tcase(s, refuse);

	tcase_add_test(web1, test_web1_check_lists_disks);
	tcase_add_test(web1, test_web1_same_name);
	tcase_add_test(web1, test_web1_clone);
	tcase_add_test(web1, test_web1_sizes_removed);
	tcase_add_test(web1, test_web1_conversion_and_no_driver);
	tcase_add_test(web1, test_web1_missing_volume);
	tcase_add_test(web1, test_web1_media_error);
	tcase_add_test(web1, test_web1_refusals);
	tcase_add_test(web1, test_web1_billion_laughs);
	tcase_add_test(web1, test_web1_many_disks);
	suite_add_tcase(s, web1);
	return s;
}
