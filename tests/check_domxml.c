/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests of fs/domxml.c: domain XML to the list of disk files. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "../common/error.h"
#include "../fs/domxml.h"
#include "suites.h"

/* The skip callback's calls, as "DEV: WHY" lines. */
struct skips {
	char text[4096];
	int n;
};

static void record_skip(void *opaque, const char *dev, const char *why)
{
	struct skips *s = opaque;
	size_t len = strlen(s->text);

	snprintf(s->text + len, sizeof s->text - len, "%s: %s\n", dev, why);
	s->n++;
}

static int parse(const char *xml, struct domxml_info *out, struct skips *s)
{
	memset(s, 0, sizeof *s);
	return domxml_parse(xml, strlen(xml), out, record_skip, s);
}

static void expect_disk(const struct disk *d, const char *dev,
			const char *format, enum disk_source type,
			const char *path, const char *pool, const char *volume,
			int readonly)
{
	ck_assert_str_eq(d->dev, dev);
	ck_assert_str_eq(d->format, format);
	ck_assert_int_eq(d->source_type, type);
	ck_assert_pstr_eq(d->path, path);
	ck_assert_pstr_eq(d->pool, pool);
	ck_assert_pstr_eq(d->volume, volume);
	ck_assert_int_eq(d->readonly, readonly);
}

/* A guest as libvirt dumps it, with a disk of every kind. */
static const char full_xml[] =
    "<domain type='kvm' id='3'>\n"
    "  <name>web1</name>\n"
    "  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>\n"
    "  <memory unit='KiB'>1048576</memory>\n"
    "  <vcpu placement='static'>2</vcpu>\n"
    "  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>\n"
    "  <devices>\n"
    "    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
    "    <!-- a file disk, raw -->\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw' cache='none' io='native'/>\n"
    "      <source file='/var/lib/libvirt/images/web1.img' index='2'/>\n"
    "      <backingStore/>\n"
    "      <target dev='vda' bus='virtio'/>\n"
    "      <alias name='virtio-disk0'/>\n"
    "      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' "
    "function='0x0'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='qcow2'/>\n"
    "      <source file='/var/lib/libvirt/images/web1-data.qcow2'/>\n"
    "      <target dev='vdb' bus='virtio'/>\n"
    "    </disk>\n"
    "    <controller type='usb' index='0' model='qemu-xhci'/>\n"
    "    <disk type='block' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source dev='/dev/loop3'/>\n"
    "      <target dev='vdc' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='volume' device='disk'>\n"
    "      <driver name='qemu' type='qcow2'/>\n"
    "      <source pool='default' volume='x.qcow2'/>\n"
    "      <target dev='vdd' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='network' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source protocol='nbd' name='export'>\n"
    "        <host name='nbd.example' port='10809'/>\n"
    "      </source>\n"
    "      <target dev='vde' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/var/lib/libvirt/iso/debian-12.iso'/>\n"
    "      <target dev='sda' bus='sata'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <target dev='sdb' bus='sata'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "    <disk type='file' device='floppy'>\n"
    "      <source file='/var/lib/libvirt/images/boot.img'/>\n"
    "      <target dev='fda' bus='fdc'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu'/>\n"
    "      <source file='/srv/untyped.img'/>\n"
    "      <target dev='vdf' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <source file='/srv/nodriver.img'/>\n"
    "      <target dev='vdg' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/srv/notarget.img'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/srv/again.img'/>\n"
    "      <target dev='vda' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='images/relative.img'/>\n"
    "      <target dev='vdh' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/srv/golden &amp; ro.img'/>\n"
    "      <target dev='vdi' bus='virtio'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "    <disk type='block' device='lun'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source dev='/dev/sdx'/>\n"
    "      <target dev='sdc' bus='scsi'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <target dev='vdj' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='dir' device='disk'>\n"
    "      <driver name='qemu' type='fat'/>\n"
    "      <source dir='/srv/share'/>\n"
    "      <target dev='vdk' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='tape'>\n"
    "      <source file='/srv/tape.img'/>\n"
    "      <target dev='vdl' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='QCOW2'/>\n"
    "      <source file='/srv/upper.img'/>\n"
    "      <target dev='vdm' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/srv/dash.img'/>\n"
    "      <target dev='hd-a' bus='ide'/>\n"
    "    </disk>\n"
    "    <disk type='volume' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source pool='default'/>\n"
    "      <target dev='vdn' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk device='disk'>\n"
    "      <source file='/srv/notype.img'/>\n"
    "      <target dev='vdo' bus='virtio'/>\n"
    "    </disk>\n"
    "    <interface type='network'>\n"
    "      <source network='default'/>\n"
    "      <model type='virtio'/>\n"
    "    </interface>\n"
    "  </devices>\n"
    "  <seclabel type='dynamic' model='dac' relabel='yes'/>\n"
    "</domain>\n";

static const char full_skips[] = "vde: network disks are not streamed\n"
				 "sda: removable media are not copied\n"
				 "sdb: empty removable drive\n"
				 "fda: removable media are not copied\n"
				 "?: missing or unusable target dev\n"
				 "vda: duplicate target dev\n"
				 "vdh: no absolute source path\n"
				 "vdj: no absolute source path\n"
				 "vdk: unsupported disk type\n"
				 "vdl: unsupported device kind\n"
				 "vdm: unusable driver type\n"
				 "hd-a: missing or unusable target dev\n"
				 "vdn: volume disk without pool or volume\n";

static void check_full_disks(const struct domxml_info *info)
{
	const struct disk *v = info->disks.v;

	ck_assert_uint_eq(info->disks.n, 9);
	expect_disk(&v[0], "vda", "raw", DISK_FILE,
		    "/var/lib/libvirt/images/web1.img", NULL, NULL, 0);
	expect_disk(&v[1], "vdb", "qcow2", DISK_FILE,
		    "/var/lib/libvirt/images/web1-data.qcow2", NULL, NULL, 0);
	expect_disk(&v[2], "vdc", "raw", DISK_BLOCK, "/dev/loop3", NULL, NULL,
		    0);
	expect_disk(&v[3], "vdd", "qcow2", DISK_VOLUME, NULL, "default",
		    "x.qcow2", 0);
	expect_disk(&v[4], "vdf", "raw", DISK_FILE, "/srv/untyped.img", NULL,
		    NULL, 0);
	expect_disk(&v[5], "vdg", "raw", DISK_FILE, "/srv/nodriver.img", NULL,
		    NULL, 0);
	expect_disk(&v[6], "vdi", "raw", DISK_FILE, "/srv/golden & ro.img",
		    NULL, NULL, 1);
	expect_disk(&v[7], "sdc", "raw", DISK_BLOCK, "/dev/sdx", NULL, NULL, 0);
	expect_disk(&v[8], "vdo", "raw", DISK_FILE, "/srv/notype.img", NULL,
		    NULL, 0);
}

START_TEST(test_full)
{
	struct domxml_info info;
	struct skips s;

	ck_assert_int_eq(parse(full_xml, &info, &s), 0);
	ck_assert_str_eq(info.name, "web1");
	ck_assert_str_eq(info.uuid, "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
	check_full_disks(&info);
	ck_assert_str_eq(s.text, full_skips);
	ck_assert_int_eq(s.n, 13);
	domxml_release(&info);
	ck_assert_ptr_null(info.name);
	ck_assert_ptr_null(info.uuid);
	ck_assert_ptr_null(info.disks.v);
	ck_assert_uint_eq(info.disks.n, 0);
}
END_TEST

START_TEST(test_full_without_callback)
{
	struct domxml_info info;

	ck_assert_int_eq(
	    domxml_parse(full_xml, strlen(full_xml), &info, NULL, NULL), 0);
	check_full_disks(&info);
	domxml_release(&info);
}
END_TEST

START_TEST(test_minimal)
{
	static const char xml[] = "<domain><name>g</name></domain>";
	struct domxml_info info;
	struct skips s;

	ck_assert_int_eq(parse(xml, &info, &s), 0);
	ck_assert_str_eq(info.name, "g");
	ck_assert_ptr_null(info.uuid);
	ck_assert_uint_eq(info.disks.n, 0);
	ck_assert_int_eq(s.n, 0);
	domxml_release(&info);
}
END_TEST

START_TEST(test_disks_outside_devices)
{
	/* Only <devices>' own <disk> children count. */
	static const char xml[] =
	    "<?xml version='1.0' encoding='UTF-8'?>\n"
	    "<domain type='kvm'>\n"
	    "  <name>g</name>\n"
	    "  <disk type='file'><source file='/a'/>"
	    "<target dev='vdx'/></disk>\n"
	    "  <devices>\n"
	    "    <hub><disk type='file'><source file='/b'/>"
	    "<target dev='vdy'/></disk></hub>\n"
	    "    <disk type='file' device='disk'><source file='/c'/>"
	    "<target dev='vdz'/></disk>\n"
	    "  </devices>\n"
	    "</domain>\n";
	struct domxml_info info;
	struct skips s;

	ck_assert_int_eq(parse(xml, &info, &s), 0);
	ck_assert_uint_eq(info.disks.n, 1);
	expect_disk(&info.disks.v[0], "vdz", "raw", DISK_FILE, "/c", NULL, NULL,
		    0);
	ck_assert_int_eq(s.n, 0);
	domxml_release(&info);
}
END_TEST

START_TEST(test_uses_len)
{
	/* The document ends at len, whatever follows it in memory. */
	static const char xml[] = "<domain><name>g</name></domain><garbage";
	struct domxml_info info;

	ck_assert_int_eq(domxml_parse(xml, strlen(xml) - 8, &info, NULL, NULL),
			 0);
	ck_assert_str_eq(info.name, "g");
	domxml_release(&info);
	ck_assert_int_eq(domxml_parse(xml, strlen(xml), &info, NULL, NULL), -1);
	ck_assert_int_eq(error_errno(), EINVAL);
}
END_TEST

/* Parse xml; it must fail with EINVAL, leave *out empty and call no skip.
 * The message must start with want. */
static void expect_refused(const char *xml, size_t len, const char *want)
{
	struct domxml_info info;
	struct skips s;
	int r;

	memset(&s, 0, sizeof s);
	memset(&info, 0x5a, sizeof info);
	errno = 0;
	r = domxml_parse(xml, len, &info, record_skip, &s);
	if (r == 0)
		domxml_release(&info);
	ck_assert_msg(r == -1, "accepted: %.200s", xml);
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_msg(strncmp(error_msg(), want, strlen(want)) == 0,
		      "message \"%s\", expected \"%s...\"", error_msg(), want);
	ck_assert_ptr_null(info.name);
	ck_assert_ptr_null(info.uuid);
	ck_assert_ptr_null(info.disks.v);
	ck_assert_uint_eq(info.disks.n, 0);
	ck_assert_int_eq(s.n, 0);
}

#define REFUSED(xml, want) expect_refused(xml, strlen(xml), want)

START_TEST(test_not_well_formed)
{
	REFUSED("<domain>\n  <name>g</name>\n  <devices>\n  </device>\n"
		"</domain>\n",
		"domain XML is not well-formed (line 4): ");
	REFUSED("<domain><name>g</name>", "domain XML is not well-formed");
	REFUSED("<domain><name>g</name></domain><domain/>",
		"domain XML is not well-formed (line 1): ");
	REFUSED("not xml at all", "domain XML is not well-formed");
	REFUSED("<domain><name>&undefined;</name></domain>",
		"domain XML is not well-formed (line 1): ");
	/* libxml2's message is kept to its first line. */
	ck_assert_ptr_null(strchr(error_msg(), '\n'));
}
END_TEST

START_TEST(test_not_domain)
{
	REFUSED("<network><name>default</name></network>",
		"root element is not <domain>");
	REFUSED("<?xml version='1.0'?><Domain><name>g</name></Domain>",
		"root element is not <domain>");
}
END_TEST

START_TEST(test_no_name)
{
	REFUSED("<domain><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>"
		"</domain>",
		"domain XML has no <name>");
	REFUSED("<domain><name></name></domain>", "domain XML has no <name>");
	REFUSED("<domain><name/></domain>", "domain XML has no <name>");
	REFUSED("<domain><devices><name>g</name></devices></domain>",
		"domain XML has no <name>");
}
END_TEST

/* The first line of /etc/passwd, or "" if there is none. */
static void passwd_line(char *buf, size_t len)
{
	FILE *f = fopen("/etc/passwd", "r");

	buf[0] = '\0';
	if (f) {
		if (!fgets(buf, (int)len, f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
}

/* Refused, and nothing of /etc/passwd leaked into any output. */
static void expect_no_leak(const char *xml)
{
	char line[256];

	REFUSED(xml, "");
	passwd_line(line, sizeof line);
	if (line[0])
		ck_assert_ptr_null(strstr(error_msg(), line));
	ck_assert_ptr_null(strstr(error_msg(), "root:"));
	ck_assert_ptr_null(strstr(error_msg(), "/bin/"));
}

START_TEST(test_doctype)
{
	REFUSED("<!DOCTYPE domain><domain><name>g</name></domain>",
		"domain XML must not have a DOCTYPE");
	REFUSED("<?xml version='1.0'?>\n<!DOCTYPE domain SYSTEM "
		"\"http://127.0.0.1:9/domain.dtd\">\n"
		"<domain><name>g</name></domain>",
		"domain XML must not have a DOCTYPE");
	REFUSED("<!DOCTYPE domain [<!ENTITY n \"g\">]>"
		"<domain><name>&n;</name></domain>",
		"domain XML must not have a DOCTYPE");
}
END_TEST

START_TEST(test_xxe)
{
	expect_no_leak(
	    "<?xml version='1.0'?>\n"
	    "<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
	    "<domain><name>&x;</name></domain>\n");
	expect_no_leak(
	    "<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
	    "<domain><name>g</name><devices>"
	    "<disk type='file' device='disk'>"
	    "<source file='/a'/><target dev='vda'/>&x;</disk>"
	    "</devices><description>&x;</description></domain>");
	expect_no_leak(
	    "<!DOCTYPE d [<!ENTITY % p SYSTEM \"file:///etc/passwd\">"
	    "%p;]><domain><name>g</name></domain>");
	expect_no_leak("<!DOCTYPE d SYSTEM \"file:///etc/passwd\">"
		       "<domain><name>g</name></domain>");
	expect_no_leak(
	    "<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
	    "<domain><name>g</name><devices>"
	    "<disk type='file'><source file='&x;'/>"
	    "<target dev='vda'/></disk></devices></domain>");
}
END_TEST

/* Write text to dir/name; returns the malloc'd path. */
static char *write_file(const char *dir, const char *name, const char *text)
{
	char *path;
	FILE *f;

	ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

START_TEST(test_no_file_loads)
{
	/* Nothing a DOCTYPE names is ever opened: inotify would see it. */
	char dir[] = "/tmp/kvmmigfs-check-domxml-XXXXXX";
	char *ent, *dtd, *xml[5];
	char ev[4096];
	int in;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ent = write_file(dir, "ent.xml", "<leak>ENTITY</leak>");
	dtd = write_file(dir, "ext.dtd", "<!ENTITY y \"DTD\">");
	in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	ck_assert_int_ge(in, 0);
	ck_assert_int_ge(inotify_add_watch(in, ent, IN_OPEN | IN_ACCESS), 0);
	ck_assert_int_ge(inotify_add_watch(in, dtd, IN_OPEN | IN_ACCESS), 0);

	ck_assert_int_ge(asprintf(&xml[0],
				  "<!DOCTYPE domain SYSTEM \"file://%s\">"
				  "<domain><name>&y;</name></domain>",
				  dtd),
			 0);
	ck_assert_int_ge(asprintf(&xml[1],
				  "<!DOCTYPE domain SYSTEM \"%s\">"
				  "<domain><name>g</name></domain>",
				  dtd),
			 0);
	ck_assert_int_ge(
	    asprintf(&xml[2],
		     "<!DOCTYPE d [<!ENTITY x SYSTEM \"file://%s\">]>"
		     "<domain><name>&x;</name></domain>",
		     ent),
	    0);
	ck_assert_int_ge(
	    asprintf(&xml[3],
		     "<!DOCTYPE d [<!ENTITY %% p SYSTEM \"%s\"> %%p;]>"
		     "<domain><name>&y;</name></domain>",
		     dtd),
	    0);
	ck_assert_int_ge(
	    asprintf(&xml[4],
		     "<!DOCTYPE d [<!ENTITY x SYSTEM \"%s\">]>"
		     "<domain><name>g</name><devices><disk>&x;</disk>"
		     "</devices></domain>",
		     ent),
	    0);
	for (int i = 0; i < 5; i++) {
		expect_refused(xml[i], strlen(xml[i]), "domain XML ");
		ck_assert_ptr_null(strstr(error_msg(), "ENTITY"));
		ck_assert_msg(read(in, ev, sizeof ev) < 0 && errno == EAGAIN,
			      "document %d opened a file", i);
		free(xml[i]);
	}
	close(in);
	unlink(ent);
	unlink(dtd);
	free(ent);
	free(dtd);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_no_network)
{
	/* No connection is made to a DTD's or an entity's URL. */
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t salen = sizeof sa;
	char *xml;
	int s, c;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(listen(s, 8), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &salen), 0);
	ck_assert_int_ge(
	    asprintf(&xml,
		     "<!DOCTYPE domain SYSTEM \"http://127.0.0.1:%d/d.dtd\" "
		     "[<!ENTITY x SYSTEM \"http://127.0.0.1:%d/e.xml\">]>"
		     "<domain><name>&x;</name></domain>",
		     ntohs(sa.sin_port), ntohs(sa.sin_port)),
	    0);
	expect_refused(xml, strlen(xml), "domain XML ");
	free(xml);
	c = accept(s, NULL, NULL);
	if (c >= 0)
		close(c);
	close(s);
	ck_assert_msg(c < 0, "the parser connected to the DTD's URL");
}
END_TEST

START_TEST(test_billion_laughs)
{
	static const char xml[] =
	    "<?xml version='1.0'?>\n"
	    "<!DOCTYPE lolz [\n"
	    " <!ENTITY lol \"lol\">\n"
	    " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"
	    "&lol;\">\n"
	    " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"
	    "&lol1;&lol1;&lol1;\">\n"
	    " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"
	    "&lol2;&lol2;&lol2;\">\n"
	    " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;"
	    "&lol3;&lol3;&lol3;\">\n"
	    " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;"
	    "&lol4;&lol4;&lol4;\">\n"
	    " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;"
	    "&lol5;&lol5;&lol5;\">\n"
	    " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;"
	    "&lol6;&lol6;&lol6;\">\n"
	    " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;"
	    "&lol7;&lol7;&lol7;\">\n"
	    " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;"
	    "&lol8;&lol8;&lol8;\">\n"
	    "]>\n"
	    "<domain><name>&lol9;</name><devices><disk type='file'>"
	    "<source file='/&lol9;'/><target dev='vda'/></disk></devices>"
	    "</domain>\n";

	REFUSED(xml, "domain XML ");
	ck_assert_ptr_null(strstr(error_msg(), "lollol"));
}
END_TEST

/* A valid document of exactly len bytes: padded with trailing spaces. */
static char *padded_doc(size_t len)
{
	static const char xml[] = "<domain><name>big</name></domain>";
	char *buf = malloc(len);

	ck_assert_ptr_nonnull(buf);
	memset(buf, ' ', len);
	memcpy(buf, xml, strlen(xml));
	return buf;
}

START_TEST(test_size_limit)
{
	struct domxml_info info;
	char *buf = padded_doc(DOMXML_MAX_SIZE + 1);
	char want[64];
	int r;

	r = domxml_parse(buf, DOMXML_MAX_SIZE, &info, NULL, NULL);
	if (r == 0) {
		r = strcmp(info.name, "big") == 0 ? 0 : -2;
		domxml_release(&info);
	}
	if (r != 0)
		free(buf);
	ck_assert_msg(r == 0, "%d bytes refused", DOMXML_MAX_SIZE);

	snprintf(want, sizeof want, "domain XML larger than %d bytes",
		 DOMXML_MAX_SIZE);
	expect_refused(buf, DOMXML_MAX_SIZE + 1, want);
	free(buf);
}
END_TEST

START_TEST(test_file_name)
{
	struct disk d = { .dev = "vda", .format = "qcow2" };
	char buf[64];
	char small[8];

	ck_assert_int_eq(domxml_file_name(&d, buf, sizeof buf), 9);
	ck_assert_str_eq(buf, "vda.qcow2");
	/* A short buffer is never overrun. */
	memset(small, 'x', sizeof small);
	domxml_file_name(&d, small, 4);
	ck_assert_int_eq(small[3], '\0');
	ck_assert_int_eq(small[4], 'x');
}
END_TEST

START_TEST(test_find_file)
{
	struct domxml_info info;
	const struct disk *v;

	ck_assert_int_eq(
	    domxml_parse(full_xml, strlen(full_xml), &info, NULL, NULL), 0);
	v = info.disks.v;
	ck_assert_ptr_eq(domxml_find_file(&info.disks, "vda.raw"), &v[0]);
	ck_assert_ptr_eq(domxml_find_file(&info.disks, "vdb.qcow2"), &v[1]);
	ck_assert_ptr_eq(domxml_find_file(&info.disks, "vdc.raw"), &v[2]);
	ck_assert_ptr_eq(domxml_find_file(&info.disks, "vdd.qcow2"), &v[3]);
	ck_assert_ptr_eq(domxml_find_file(&info.disks, "sdc.raw"), &v[7]);
	ck_assert_ptr_null(domxml_find_file(&info.disks, "vdb.raw"));
	ck_assert_ptr_null(domxml_find_file(&info.disks, "vda.qcow2"));
	ck_assert_ptr_null(domxml_find_file(&info.disks, "vda"));
	ck_assert_ptr_null(domxml_find_file(&info.disks, "vda."));
	ck_assert_ptr_null(domxml_find_file(&info.disks, "vda.raw.x"));
	ck_assert_ptr_null(domxml_find_file(&info.disks, "vde.raw"));
	ck_assert_ptr_null(domxml_find_file(&info.disks, "sda.raw"));
	ck_assert_ptr_null(domxml_find_file(&info.disks, "domain.xml"));
	ck_assert_ptr_null(domxml_find_file(&info.disks, ""));
	domxml_release(&info);

	ck_assert_ptr_null(domxml_find_file(&info.disks, "vda.raw"));
}
END_TEST

START_TEST(test_disk_free)
{
	struct disk d = {
		.dev = strdup("vda"),
		.format = strdup("raw"),
		.source_type = DISK_VOLUME,
		.path = strdup("/p"),
		.pool = strdup("default"),
		.volume = strdup("v"),
		.readonly = 1,
	};

	domxml_disk_free(&d);
	ck_assert_ptr_null(d.dev);
	ck_assert_ptr_null(d.format);
	ck_assert_ptr_null(d.path);
	ck_assert_ptr_null(d.pool);
	ck_assert_ptr_null(d.volume);
	ck_assert_int_eq(d.readonly, 0);
	ck_assert_int_eq(d.source_type, 0);
}
END_TEST

/* <readonly/> counts on volume disks too. */
START_TEST(test_volume_readonly)
{
	static const char xml[] =
	    "<domain><name>g</name><devices>"
	    "<disk type='volume' device='disk'>"
	    "<driver name='qemu' type='qcow2'/>"
	    "<source pool='default' volume='golden.qcow2'/>"
	    "<target dev='vda' bus='virtio'/><readonly/></disk>"
	    "</devices></domain>";
	struct domxml_info info;
	int r, n = -1, ro = -1;

	r = domxml_parse(xml, strlen(xml), &info, NULL, NULL);
	if (r == 0) {
		n = (int)info.disks.n;
		ro = n == 1 ? info.disks.v[0].readonly : -1;
		domxml_release(&info);
	}
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(ro, 1);
}
END_TEST

/*
 * An empty document (len 0) makes xmlReadMemory() fail without recording
 * an error: the message must not be the one of an earlier parse.
 */
START_TEST(test_empty_document_message)
{
	REFUSED("<domain>\n<name>g</name>\n<devices>\n</device>\n</domain>\n",
		"domain XML is not well-formed (line 4): ");
	expect_refused("", 0, "domain XML is not well-formed");
	ck_assert_msg(strstr(error_msg(), "line 4") == NULL &&
			  strstr(error_msg(), "devices") == NULL,
		      "stale message: %s", error_msg());
}
END_TEST

/* The served XML carries each disk's size; reading it back gives them,
 * the rest of the document is unchanged, and a second call replaces
 * rather than adds. */
START_TEST(test_with_sizes)
{
	static const char xml[] =
	    "<domain type='kvm'><name>g</name><devices>"
	    "<disk type='file' device='disk'><source file='/a.raw'/>"
	    "<target dev='vda'/></disk></devices>"
	    "<metadata><app:x xmlns:app='urn:app'/></metadata></domain>";
	const char *devs[] = { "vda", "vdb" };
	unsigned long long sizes[] = { 268435456ULL, 512ULL }, got = 0;
	unsigned long long allocs[] = { 23068672ULL, 0 }, alloc = 7;
	char *once, *twice;
	struct domxml_info info;

	once = domxml_with_sizes(xml, strlen(xml), devs, sizes, allocs, 2);
	ck_assert_ptr_nonnull(once);
	ck_assert_int_eq(
	    domxml_disk_size(once, strlen(once), "vda", &got, &alloc), 1);
	ck_assert(got == 268435456ULL);
	ck_assert(alloc == 23068672ULL);
	/* An allocation of 0 is not written: unknown. */
	ck_assert_ptr_null(strstr(once, "allocation=\"0\""));
	ck_assert_int_eq(
	    domxml_disk_size(once, strlen(once), "vdb", &got, &alloc), 1);
	ck_assert(got == 512ULL);
	ck_assert(alloc == 0);
	ck_assert_int_eq(
	    domxml_disk_size(once, strlen(once), "vdc", &got, NULL), 0);
	ck_assert_int_eq(domxml_disk_size(xml, strlen(xml), "vda", &got, NULL),
			 0);
	/* Other applications' metadata stays; one <metadata> only. */
	ck_assert_ptr_nonnull(strstr(once, "urn:app"));
	ck_assert_ptr_eq(strstr(strstr(once, "<metadata") + 1, "<metadata"),
			 NULL);
	ck_assert_int_eq(domxml_parse(once, strlen(once), &info, NULL, NULL),
			 0);
	ck_assert_str_eq(info.name, "g");
	ck_assert_int_eq((int)info.disks.n, 1);
	domxml_release(&info);

	sizes[0] = 1024;
	twice = domxml_with_sizes(once, strlen(once), devs, sizes, NULL, 1);
	ck_assert_ptr_nonnull(twice);
	ck_assert_int_eq(
	    domxml_disk_size(twice, strlen(twice), "vda", &got, NULL), 1);
	ck_assert(got == 1024);
	ck_assert_int_eq(
	    domxml_disk_size(twice, strlen(twice), "vdb", &got, NULL), 0);
	ck_assert_ptr_eq(strstr(strstr(twice, DOMXML_NS) + 1, DOMXML_NS), NULL);
	free(once);
	free(twice);

	/* Garbage is refused, not guessed. */
	ck_assert_ptr_null(
	    domxml_with_sizes("<domain>", 8, devs, sizes, NULL, 1));
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_int_eq(domxml_disk_size("<x", 2, "vda", &got, NULL), -1);
}
END_TEST

/* The origin of each disk (host, its UUID, path, format) goes with the
 * sizes and reads back; a sizes element without it gives none. */
START_TEST(test_with_origin)
{
	static const char xml[] =
	    "<domain type='kvm'><name>g</name><devices>"
	    "<disk type='file' device='disk'><source file='/a.raw'/>"
	    "<target dev='vda'/></disk></devices></domain>";
	const char *devs[] = { "vda", "vdb" };
	const char *paths[] = { "/var/lib/libvirt/images/a b&'.raw", "/b" };
	const char *formats[] = { "raw", "qcow2" };
	unsigned long long sizes[] = { 1, 2 };
	struct domxml_origin o;
	char *sized, *x;

	sized = domxml_with_sizes(xml, strlen(xml), devs, sizes, NULL, 2);
	ck_assert_ptr_nonnull(sized);
	ck_assert_int_eq(domxml_disk_origin(sized, strlen(sized), "vda", &o),
			 0);
	x = domxml_with_origin(sized, strlen(sized), "hosta",
			       "4c4c4544-0042-3110-8047-b4c04f4d3132", devs,
			       paths, formats, 2);
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(domxml_disk_origin(x, strlen(x), "vda", &o), 1);
	ck_assert_str_eq(o.host, "hosta");
	ck_assert_str_eq(o.host_uuid, "4c4c4544-0042-3110-8047-b4c04f4d3132");
	ck_assert_str_eq(o.path, paths[0]);
	ck_assert_str_eq(o.format, "raw");
	ck_assert_int_eq(domxml_disk_origin(x, strlen(x), "vdb", &o), 1);
	ck_assert_str_eq(o.path, "/b");
	ck_assert_str_eq(o.format, "qcow2");
	ck_assert_int_eq(domxml_disk_origin(x, strlen(x), "vdc", &o), 0);
	ck_assert_int_eq(domxml_disk_origin("<x", 2, "vda", &o), -1);
	free(x);
	/* No sizes element: refused. */
	ck_assert_ptr_null(domxml_with_origin(xml, strlen(xml), "h", "u", devs,
					      paths, formats, 2));
	free(sized);
}
END_TEST

/* The one rule (domxml_disk_rule) on a <disk> element alone: its verdict
 * and the reason logged for it. */
struct rule_case {
	const char *xml;
	enum disk_verdict verdict;
	const char *why;
};

/* Apply the rule to xml's root element; *view is filled. */
static enum disk_verdict rule_of(const char *xml, struct disk_view *view,
				 xmlDocPtr *doc)
{
	*doc = xmlReadMemory(xml, (int)strlen(xml), "disk.xml", NULL,
			     XML_PARSE_NONET | XML_PARSE_NOERROR |
				 XML_PARSE_NOWARNING);
	ck_assert_msg(*doc != NULL, "bad test XML: %s", xml);
	return domxml_disk_rule(xmlDocGetRootElement(*doc), view);
}

static void expect_rule(const struct rule_case *c)
{
	struct disk_view v;
	xmlDocPtr doc;
	enum disk_verdict r = rule_of(c->xml, &v, &doc);

	ck_assert_msg(r == c->verdict, "%s: verdict %d (%s), expected %d (%s)",
		      c->xml, (int)r, domxml_disk_why(r), (int)c->verdict,
		      c->why);
	ck_assert_str_eq(domxml_disk_why(r), c->why);
	xmlFreeDoc(doc);
}

#define DISK(attrs, body) "<disk " attrs ">" body "</disk>"
#define VDA		  "<target dev='vda' bus='virtio'/>"

START_TEST(test_rule_file)
{
	struct disk_view v;
	xmlDocPtr doc;

	ck_assert_int_eq(rule_of(DISK("type='file' device='disk'",
				      "<driver name='qemu' type='qcow2'/>"
				      "<source file='/i/a.qcow2'/>" VDA),
				 &v, &doc),
			 DISK_LISTED);
	ck_assert_str_eq(domxml_disk_why(DISK_LISTED), "listed");
	ck_assert_str_eq(v.dev, "vda");
	ck_assert_str_eq(v.format, "qcow2");
	ck_assert_int_eq(v.source_type, DISK_FILE);
	ck_assert_str_eq(v.path, "/i/a.qcow2");
	ck_assert_ptr_null(v.pool);
	ck_assert_ptr_null(v.volume);
	ck_assert_int_eq(v.readonly, 0);
	xmlFreeDoc(doc);

	/* type and device default to file and disk; driver type to raw. */
	ck_assert_int_eq(
	    rule_of(DISK("", "<source file='/i/b'/>" VDA "<readonly/>"), &v,
		    &doc),
	    DISK_LISTED);
	ck_assert_int_eq(v.source_type, DISK_FILE);
	ck_assert_str_eq(v.format, "raw");
	ck_assert_str_eq(v.path, "/i/b");
	ck_assert_int_eq(v.readonly, 1);
	xmlFreeDoc(doc);
	ck_assert_int_eq(
	    rule_of(DISK("type='file'", "<driver name='qemu'/>"
					"<source file='/i/c'/>" VDA),
		    &v, &doc),
	    DISK_LISTED);
	ck_assert_str_eq(v.format, "raw");
	xmlFreeDoc(doc);
}
END_TEST

START_TEST(test_rule_block)
{
	struct disk_view v;
	xmlDocPtr doc;

	ck_assert_int_eq(rule_of(DISK("type='block' device='disk'",
				      "<driver name='qemu' type='raw'/>"
				      "<source dev='/dev/vg0/a'/>" VDA),
				 &v, &doc),
			 DISK_LISTED);
	ck_assert_int_eq(v.source_type, DISK_BLOCK);
	ck_assert_str_eq(v.path, "/dev/vg0/a");
	ck_assert_str_eq(v.format, "raw");
	xmlFreeDoc(doc);
}
END_TEST

START_TEST(test_rule_volume)
{
	struct disk_view v;
	xmlDocPtr doc;

	ck_assert_int_eq(rule_of(DISK("type='volume' device='disk'",
				      "<driver name='qemu' type='qcow2'/>"
				      "<source pool='default' "
				      "volume='a.qcow2'/>" VDA),
				 &v, &doc),
			 DISK_LISTED);
	ck_assert_int_eq(v.source_type, DISK_VOLUME);
	ck_assert_ptr_null(v.path); /* resolved through the pool */
	ck_assert_str_eq(v.pool, "default");
	ck_assert_str_eq(v.volume, "a.qcow2");
	ck_assert_str_eq(v.format, "qcow2");
	xmlFreeDoc(doc);
}
END_TEST

/* device='lun' (SCSI passthrough of a block device) is a disk of the
 * guest: streamed as device='disk' is. */
START_TEST(test_rule_lun)
{
	struct disk_view v;
	xmlDocPtr doc;

	ck_assert_int_eq(rule_of(DISK("type='block' device='lun'",
				      "<driver name='qemu' type='raw'/>"
				      "<source dev='/dev/sdx'/>"
				      "<target dev='sda' bus='scsi'/>"),
				 &v, &doc),
			 DISK_LISTED);
	ck_assert_str_eq(v.dev, "sda");
	ck_assert_int_eq(v.source_type, DISK_BLOCK);
	ck_assert_str_eq(v.path, "/dev/sdx");
	xmlFreeDoc(doc);
}
END_TEST

START_TEST(test_rule_not_streamed)
{
	static const struct rule_case cases[] = {
		{ DISK("type='network' device='disk'",
		       "<source protocol='nbd' name='x'>"
		       "<host name='h' port='10809'/></source>" VDA),
		  DISK_NETWORK, "network disks are not streamed" },
		{ DISK("type='file' device='cdrom'",
		       "<source file='/iso/d.iso'/><target dev='sda'/>"
		       "<readonly/>"),
		  DISK_REMOVABLE, "removable media are not copied" },
		{ DISK("type='file' device='cdrom'",
		       "<target dev='sda'/><readonly/>"),
		  DISK_NO_MEDIA, "empty removable drive" },
		{ DISK("type='file' device='floppy'",
		       "<source file='/i/boot.img'/><target dev='fda'/>"),
		  DISK_REMOVABLE, "removable media are not copied" },
		{ DISK("type='file' device='floppy'", "<target dev='fda'/>"),
		  DISK_NO_MEDIA, "empty removable drive" },
		/* Removable first: a volume or block CD-ROM is media too. */
		{ DISK("type='volume' device='cdrom'",
		       "<source pool='iso' volume='d.iso'/>"
		       "<target dev='sda'/>"),
		  DISK_REMOVABLE, "removable media are not copied" },
		{ DISK("type='file' device='tape'",
		       "<source file='/i/t'/>" VDA),
		  DISK_OTHER_DEVICE, "unsupported device kind" },
		{ DISK("type='file' device=''", "<source file='/i/t'/>" VDA),
		  DISK_OTHER_DEVICE, "unsupported device kind" },
		{ DISK("type='dir' device='disk'",
		       "<driver name='qemu' type='fat'/>"
		       "<source dir='/srv/share'/>" VDA),
		  DISK_OTHER_TYPE, "unsupported disk type" },
		{ DISK("type='nvme' device='disk'",
		       "<source type='pci' namespace='1'/>" VDA),
		  DISK_OTHER_TYPE, "unsupported disk type" },
		{ DISK("type='' device='disk'", "<source file='/i/a'/>" VDA),
		  DISK_OTHER_TYPE, "unsupported disk type" },
		/* The kind decides before the target: a network disk
		 * without one is still a network disk. */
		{ DISK("type='network'", "<source protocol='nbd'/>"),
		  DISK_NETWORK, "network disks are not streamed" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect_rule(&cases[i]);
}
END_TEST

/* A disk of a streamed kind without a source path: nothing to copy. */
START_TEST(test_rule_missing_source)
{
	static const struct rule_case cases[] = {
		{ DISK("type='file' device='disk'",
		       "<driver name='qemu' type='raw'/>" VDA),
		  DISK_EMPTY, "no absolute source path" },
		{ DISK("type='file' device='disk'", "<source/>" VDA),
		  DISK_EMPTY, "no absolute source path" },
		{ DISK("type='file' device='disk'", "<source file=''/>" VDA),
		  DISK_EMPTY, "no absolute source path" },
		/* block reads dev=, file reads file=. */
		{ DISK("type='block' device='disk'",
		       "<source file='/dev/sdb'/>" VDA),
		  DISK_EMPTY, "no absolute source path" },
		{ DISK("type='file' device='disk'", "<source dev='/i/a'/>" VDA),
		  DISK_EMPTY, "no absolute source path" },
		/* Empty first: a bad driver type on an empty disk does not
		 * matter (nothing is copied). */
		{ DISK("type='file'", "<driver type='Bad'/>" VDA), DISK_EMPTY,
		  "no absolute source path" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect_rule(&cases[i]);
}
END_TEST

/* A disk kvmmigfs would stream but cannot: not listed by the mount (a
 * staged domain.xml with one is refused, see check_rewrite.c). */
START_TEST(test_rule_unusable)
{
	static const struct rule_case cases[] = {
		{ DISK("type='file' device='disk'",
		       "<source file='images/a.img'/>" VDA),
		  DISK_RELATIVE, "no absolute source path" },
		{ DISK("type='block' device='disk'", "<source dev='sdb'/>" VDA),
		  DISK_RELATIVE, "no absolute source path" },
		{ DISK("type='file' device='disk'", "<source file='/i/a'/>"),
		  DISK_BAD_TARGET, "missing or unusable target dev" },
		{ DISK("type='file' device='disk'",
		       "<source file='/i/a'/><target bus='virtio'/>"),
		  DISK_BAD_TARGET, "missing or unusable target dev" },
		{ DISK("type='file' device='disk'",
		       "<source file='/i/a'/><target dev='hd-a'/>"),
		  DISK_BAD_TARGET, "missing or unusable target dev" },
		{ DISK("type='file' device='disk'",
		       "<source file='/i/a'/><target dev='../x'/>"),
		  DISK_BAD_TARGET, "missing or unusable target dev" },
		/* The target before the source: an empty disk without a
		 * usable target is unusable, not empty. */
		{ DISK("type='file' device='disk'", "<target dev=''/>"),
		  DISK_BAD_TARGET, "missing or unusable target dev" },
		{ DISK("type='file' device='disk'",
		       "<driver name='qemu' type='QCOW2'/>"
		       "<source file='/i/a'/>" VDA),
		  DISK_BAD_FORMAT, "unusable driver type" },
		{ DISK("type='file' device='disk'",
		       "<driver name='qemu' type=''/>"
		       "<source file='/i/a'/>" VDA),
		  DISK_BAD_FORMAT, "unusable driver type" },
		{ DISK("type='file' device='disk'",
		       "<driver name='qemu' type='raw/../x'/>"
		       "<source file='/i/a'/>" VDA),
		  DISK_BAD_FORMAT, "unusable driver type" },
		{ DISK("type='volume' device='disk'",
		       "<source pool='default'/>" VDA),
		  DISK_BAD_VOLUME, "volume disk without pool or volume" },
		{ DISK("type='volume' device='disk'",
		       "<source volume='a.raw'/>" VDA),
		  DISK_BAD_VOLUME, "volume disk without pool or volume" },
		{ DISK("type='volume' device='disk'", VDA), DISK_BAD_VOLUME,
		  "volume disk without pool or volume" },
		/* Empty names are no names (the mount listed this one and
		 * then failed to find the pool; the rewrite refused it). */
		{ DISK("type='volume' device='disk'",
		       "<source pool='' volume='a.raw'/>" VDA),
		  DISK_BAD_VOLUME, "volume disk without pool or volume" },
		{ DISK("type='volume' device='disk'",
		       "<source pool='default' volume=''/>" VDA),
		  DISK_BAD_VOLUME, "volume disk without pool or volume" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect_rule(&cases[i]);
}
END_TEST

/* Every verdict has its own reason (DISK_EMPTY and DISK_RELATIVE share
 * the mount's "no absolute source path"), and the view may be NULL. */
START_TEST(test_rule_reasons)
{
	xmlDocPtr doc;

	for (int a = DISK_LISTED; a <= DISK_BAD_FORMAT; a++) {
		ck_assert_str_ne(domxml_disk_why(a), "unknown");
		for (int b = a + 1; b <= DISK_BAD_FORMAT; b++)
			if (!(a == DISK_EMPTY && b == DISK_RELATIVE))
				ck_assert_str_ne(domxml_disk_why(a),
						 domxml_disk_why(b));
	}
	doc = xmlReadMemory("<disk type='network'/>", 22, "d.xml", NULL, 0);
	ck_assert_ptr_nonnull(doc);
	ck_assert_int_eq(domxml_disk_rule(xmlDocGetRootElement(doc), NULL),
			 DISK_NETWORK);
	xmlFreeDoc(doc);
}
END_TEST

/* domxml_parse lists exactly what the rule lists, and logs its reasons. */
START_TEST(test_parse_follows_rule)
{
	static const char xml[] =
	    "<domain><name>g</name><devices>"
	    "<disk type='volume'><source pool='' volume='a.raw'/>"
	    "<target dev='vda'/></disk>"
	    "<disk type='block' device='lun'><source dev='/dev/sdx'/>"
	    "<target dev='sda'/></disk>"
	    "<disk type='network'><source protocol='nbd'/></disk>"
	    "</devices></domain>";
	struct domxml_info info;
	struct skips s;

	ck_assert_int_eq(parse(xml, &info, &s), 0);
	ck_assert_uint_eq(info.disks.n, 1);
	expect_disk(&info.disks.v[0], "sda", "raw", DISK_BLOCK, "/dev/sdx",
		    NULL, NULL, 0);
	ck_assert_str_eq(s.text, "vda: volume disk without pool or volume\n"
				 "?: network disks are not streamed\n");
	domxml_release(&info);
}
END_TEST

/* What a guest needs of a host, for a move's pre-flight checks. */
static const char needs_xml[] =
    "<domain type='kvm'><name>web1</name>"
    "<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>"
    "<cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model>"
    "<feature policy='require' name='avx512f'/>"
    "<feature policy='disable' name='svm'/>"
    "<feature name='sse4.2'/></cpu>"
    "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>"
    "<disk type='file' device='disk'><source file='/img/a.qcow2'/>"
    "<backingStore type='file'><source file='/img/base.raw'/>"
    "<backingStore/></backingStore>"
    "<target dev='vda'/></disk>"
    "<disk type='block' device='disk'><source dev='/dev/vg/b'/>"
    "<target dev='vdb'/></disk>"
    "<disk type='file' device='cdrom'><source file='/iso/x.iso'/>"
    "<target dev='hdc'/></disk>"
    "<interface type='network'><source network='prod'/></interface>"
    "<interface type='network'><source network='prod'/></interface>"
    "<interface type='bridge'><source bridge='br0'/></interface>"
    "<interface type='user'/>"
    "<hostdev mode='subsystem' type='pci'/>"
    "</devices></domain>";

static void check_list(const struct strvec *sv, const char *want)
{
	char got[1024] = "";

	for (size_t i = 0; i < sv->n; i++)
		snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s",
			 i ? " " : "", sv->v[i]);
	ck_assert_str_eq(got, want);
}

START_TEST(test_needs)
{
	struct domxml_needs n;

	ck_assert_int_eq(domxml_needs(needs_xml, strlen(needs_xml), &n), 0);
	ck_assert_str_eq(n.type, "kvm");
	ck_assert_str_eq(n.arch, "x86_64");
	ck_assert_str_eq(n.machine, "pc-q35-7.2");
	ck_assert_str_eq(n.emulator, "/usr/bin/qemu-system-x86_64");
	ck_assert_ptr_nonnull(n.cpu);
	ck_assert_ptr_nonnull(strstr(n.cpu, "<cpu mode=\"custom\""));
	ck_assert_ptr_nonnull(strstr(n.cpu, "avx512f"));
	/* Required by name: policy require, or no policy (require). */
	check_list(&n.cpu_features, "avx512f sse4.2");
	check_list(&n.networks, "prod");
	check_list(&n.bridges, "br0");
	check_list(&n.hostdevs, "hostdev");
	check_list(&n.sources,
		   "/img/a.qcow2 /img/base.raw /dev/vg/b /iso/x.iso");
	domxml_needs_release(&n);
	ck_assert_ptr_null(n.type);
}
END_TEST

START_TEST(test_needs_cpu_not_checked)
{
	static const char *const cpus[] = {
		/* libvirt's default model: not the guest's demand */
		"<cpu mode='custom' match='exact' check='none'>"
		"<model fallback='forbid'>qemu64</model></cpu>",
		"<cpu mode='host-passthrough'>"
		"<feature policy='require' name='avx512f'/></cpu>",
		"<cpu mode='host-model'/>",
		"",
	};

	for (size_t i = 0; i < sizeof cpus / sizeof *cpus; i++) {
		char xml[1024];
		struct domxml_needs n;

		snprintf(xml, sizeof xml,
			 "<domain type='qemu'><name>a</name>%s</domain>",
			 cpus[i]);
		ck_assert_int_eq(domxml_needs(xml, strlen(xml), &n), 0);
		ck_assert_msg(!n.cpu, "cpu to compare for %s", cpus[i]);
		ck_assert_uint_eq(n.cpu_features.n, 0);
		ck_assert_ptr_null(n.emulator);
		domxml_needs_release(&n);
	}
}
END_TEST

START_TEST(test_needs_refused)
{
	struct domxml_needs n;

	ck_assert_int_eq(domxml_needs("<pool/>", 7, &n), -1);
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_int_eq(domxml_needs("<domain>", 8, &n), -1);
	ck_assert_int_eq(error_errno(), EINVAL);
}
END_TEST

START_TEST(test_with_name)
{
	static const char xml[] =
	    "<domain><name>web1</name><uuid>u</uuid></domain>";
	char *out = domxml_with_name(xml, strlen(xml), "a&b<c");
	struct domxml_info info;

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(domxml_parse(out, strlen(out), &info, NULL, NULL), 0);
	ck_assert_str_eq(info.name, "a&b<c");
	ck_assert_str_eq(info.uuid, "u");
	domxml_release(&info);
	free(out);
	ck_assert_ptr_null(domxml_with_name("<domain/>", 9, "x"));
	ck_assert_int_eq(error_errno(), EINVAL);
}
END_TEST

Suite *domxml_suite(void)
{
	Suite *s = suite_create("domxml");
	TCase *tp = tcase_create("parse");
	TCase *te = tcase_create("refuse");
	TCase *tf = tcase_create("files");
	TCase *tr = tcase_create("rule");

	tcase_add_test(tp, test_full);
	tcase_add_test(tp, test_full_without_callback);
	tcase_add_test(tp, test_minimal);
	tcase_add_test(tp, test_disks_outside_devices);
	tcase_add_test(tp, test_uses_len);
	suite_add_tcase(s, tp);

	tcase_add_test(te, test_not_well_formed);
	tcase_add_test(te, test_not_domain);
	tcase_add_test(te, test_no_name);
	tcase_add_test(te, test_doctype);
	tcase_add_test(te, test_xxe);
	tcase_add_test(te, test_no_file_loads);
	tcase_add_test(te, test_no_network);
	tcase_add_test(te, test_billion_laughs);
	tcase_add_test(te, test_size_limit);
	tcase_set_timeout(te, 30);
	suite_add_tcase(s, te);

	tcase_add_test(tf, test_file_name);
	tcase_add_test(tf, test_find_file);
	tcase_add_test(tf, test_disk_free);
	suite_add_tcase(s, tf);

	tcase_add_test(tp, test_volume_readonly);
	tcase_add_test(tp, test_empty_document_message);
	tcase_add_test(tp, test_with_sizes);
	tcase_add_test(tp, test_with_origin);
	tcase_add_test(tp, test_needs);
	tcase_add_test(tp, test_needs_cpu_not_checked);
	tcase_add_test(tp, test_needs_refused);
	tcase_add_test(tp, test_with_name);

	tcase_add_test(tr, test_rule_file);
	tcase_add_test(tr, test_rule_block);
	tcase_add_test(tr, test_rule_volume);
	tcase_add_test(tr, test_rule_lun);
	tcase_add_test(tr, test_rule_not_streamed);
	tcase_add_test(tr, test_rule_missing_source);
	tcase_add_test(tr, test_rule_unusable);
	tcase_add_test(tr, test_rule_reasons);
	tcase_add_test(tr, test_parse_follows_rule);
	suite_add_tcase(s, tr);
	return s;
}
