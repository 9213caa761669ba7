/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs/rewrite.c: vetting a domain.xml written into a staging folder and
 * rewriting it for the guest's new host.  Assertions read the output back
 * with libxml2 XPath.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "../common/error.h"
#include "../fs/domxml.h"
#include "../fs/rewrite.h"
#include "suites.h"

static const char guest_xml[] =
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

static const struct rewrite_disk new_disks[] = {
	{ "vda", "/pool/new1-vda.raw", "raw", 0 },
	{ "vdb", "/pool/new1-vdb.qcow2", "qcow2", 0 },
	{ "vdc", "/pool/new1-vdc.raw", "raw", 0 },
	{ "vdd", "/dev/vg/new1-vdd", "raw", 1 },
};

/* The target has /iso/here.iso only; "/fail" makes the check fail. */
static int media(void *opaque, const char *path)
{
	(void)opaque;
	if (strcmp(path, "/iso/fail.iso") == 0) {
		error_set(ETIMEDOUT, "no answer");
		return -1;
	}
	return strcmp(path, "/iso/here.iso") == 0;
}

/* The string value of an XPath expression on doc. */
static char *xp(const char *xml, const char *expr)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "t.xml", NULL,
				      XML_PARSE_NONET);
	xmlXPathContextPtr ctx;
	xmlXPathObjectPtr obj;
	xmlChar *v;
	char *s;

	ck_assert_ptr_nonnull(doc);
	ctx = xmlXPathNewContext(doc);
	obj = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	ck_assert_ptr_nonnull(obj);
	v = xmlXPathCastToString(obj);
	s = strdup((const char *)v);
	xmlFree(v);
	xmlXPathFreeObject(obj);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return s;
}

#define XP_EQ(xml, expr, want)                                                 \
	do {                                                                   \
		char *got_ = xp(xml, expr);                                    \
		ck_assert_msg(strcmp(got_, want) == 0, "%s: '%s', want '%s'",  \
			      expr, got_, want);                               \
		free(got_);                                                    \
	} while (0)

static char *rewrite(const char *name, const struct rewrite_disk *d, size_t n,
		     int *cloned)
{
	struct rewrite_spec spec = { name, d, n, media, NULL };

	return rewrite_domain(guest_xml, strlen(guest_xml), &spec, cloned);
}

START_TEST(test_check_lists_disks)
{
	struct strvec devs = STRVEC_INIT;
	char *name = NULL;

	ck_assert_int_eq(
	    rewrite_check(guest_xml, strlen(guest_xml), &devs, &name), 0);
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

START_TEST(test_same_name)
{
	int cloned = -1;
	char *out = rewrite("web1", new_disks, 4, &cloned);

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

START_TEST(test_clone)
{
	int cloned = -1;
	char *out = rewrite("new1", new_disks, 4, &cloned);

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
START_TEST(test_sizes_removed)
{
	const char *devs[] = { "vda" };
	unsigned long long sizes[] = { 4096 };
	char *served = domxml_with_sizes(guest_xml, strlen(guest_xml), devs,
					 sizes, NULL, 1);
	struct rewrite_spec spec = { "web1", new_disks, 4, media, NULL };
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

START_TEST(test_conversion_and_no_driver)
{
	struct rewrite_disk d[] = {
		{ "vda", "/p/a.qcow2", "qcow2", 0 },
		{ "vdb", "/p/b.raw", "raw", 0 },
		{ "vdc", "/p/c.qcow2", "qcow2", 0 },
		{ "vdd", "/p/d.raw", "raw", 0 },
	};
	int cloned;
	char *out = rewrite("web1", d, 4, &cloned);

	ck_assert_ptr_nonnull(out);
	XP_EQ(out, "string(//disk[target/@dev='vda']/driver/@type)", "qcow2");
	XP_EQ(out, "string(//disk[target/@dev='vdb']/driver/@type)", "raw");
	/* vdc had no <driver>: one is made. */
	XP_EQ(out, "string(//disk[target/@dev='vdc']/driver/@name)", "qemu");
	XP_EQ(out, "string(//disk[target/@dev='vdc']/driver/@type)", "qcow2");
	free(out);
}
END_TEST

START_TEST(test_missing_volume)
{
	int cloned;

	ck_assert_ptr_null(rewrite("web1", new_disks, 3, &cloned));
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_ptr_nonnull(strstr(error_msg(), "vdd"));
}
END_TEST

START_TEST(test_media_error)
{
	static const char xml[] =
	    "<domain><name>g</name><devices><disk type='file' device='cdrom'>"
	    "<source file='/iso/fail.iso'/><target dev='hdc'/></disk>"
	    "</devices></domain>";
	struct rewrite_spec spec = { "g", NULL, 0, media, NULL };
	int cloned;

	ck_assert_ptr_null(rewrite_domain(xml, strlen(xml), &spec, &cloned));
	ck_assert_int_eq(error_errno(), ETIMEDOUT);
}
END_TEST

static void refused(const char *xml, const char *why)
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

START_TEST(test_refusals)
{
	refused("<domain><name>x</name>", "not well-formed");
	refused("<?xml version='1.0'?><!DOCTYPE d [<!ENTITY x SYSTEM "
		"'file:///etc/passwd'>]><domain><name>&x;</name></domain>",
		"DOCTYPE");
	refused("<vm><name>x</name></vm>", "not <domain>");
	refused("<domain><devices/></domain>", "no <name>");
	refused("<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/"
		"1.0'><name>x</name><qemu:commandline><qemu:arg value='-x'/>"
		"</qemu:commandline></domain>",
		"qemu:commandline");
	refused("<domain><name>x</name><devices><hostdev mode='subsystem' "
		"type='pci'/></devices></domain>",
		"hostdev");
	refused("<domain><name>x</name><devices><disk type='block' "
		"device='cdrom'><source dev='/dev/sr0'/><target dev='hdc'/>"
		"</disk></devices></domain>",
		"host block devices");
	refused("<domain><name>x</name><devices><disk type='dir' "
		"device='disk'><source dir='/tmp'/><target dev='vda'/></disk>"
		"</devices></domain>",
		"type 'dir'");
	refused("<domain><name>x</name><devices><disk type='file'>"
		"<source file='/a'/><target dev='vda'/></disk><disk "
		"type='file'><source file='/b'/><target dev='vda'/></disk>"
		"</devices></domain>",
		"vda appears twice");
	refused("<domain><name>x</name><devices><disk type='file'>"
		"<source file='/a'/><target dev='../x'/></disk></devices>"
		"</domain>",
		"target dev");
}
END_TEST

START_TEST(test_billion_laughs)
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
	refused(xml, "domain XML");
}
END_TEST

/* Many disks: all listed, all rewritten; the output vets again. */
START_TEST(test_many_disks)
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
	spec = (struct rewrite_spec){ "m", d, n, media, NULL };
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

Suite *xmlrewrite_suite(void)
{
	Suite *s = suite_create("xmlrewrite");
	TCase *tc = tcase_create("rewrite");

	tcase_add_test(tc, test_check_lists_disks);
	tcase_add_test(tc, test_same_name);
	tcase_add_test(tc, test_clone);
	tcase_add_test(tc, test_sizes_removed);
	tcase_add_test(tc, test_conversion_and_no_driver);
	tcase_add_test(tc, test_missing_volume);
	tcase_add_test(tc, test_media_error);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_billion_laughs);
	tcase_add_test(tc, test_many_disks);
	suite_add_tcase(s, tc);
	return s;
}
