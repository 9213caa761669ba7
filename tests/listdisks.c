/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The disks kvmmigfs lists for a guest, for the end-to-end tests
 * (tests/e2e/lib.sh host_disks): reads a libvirt domain XML on stdin and
 * prints "DEV FORMAT PATH" for every disk the mount shows as DEV.FORMAT,
 * in document order.  The decision is the mount's own (domxml_parse, so
 * domxml_disk_rule); a volume disk's path is resolved through its pool as
 * the mount does (virt_volume_path), on the host of the libvirt URI given
 * with -c.
 *
 *	tests/listdisks [-c URI] <domain.xml
 *
 * Exit status 0; 1 if the XML is refused, a volume disk comes without -c
 * or the host cannot be reached; 2 for bad usage.  A volume the pool does
 * not have is left out with a line on stderr, as the mount leaves it out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "../fs/domxml.h"
#include "../fs/virt.h"
#include "../common/error.h"

/* Read all of f, up to one byte more than domxml_parse takes (so that it
 * refuses a larger document).  Returns a malloc'd buffer or NULL. */
static char *read_all(FILE *f, size_t *len)
{
	size_t cap = DOMXML_MAX_SIZE + 1;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	*len = fread(buf, 1, cap, f);
	if (ferror(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void quiet(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

int main(int argc, char **argv)
{
	const char *uri = NULL;
	virConnectPtr conn = NULL;
	struct domxml_info info;
	size_t len;
	char *xml;
	int opt, ret = 1;

	while ((opt = getopt(argc, argv, "c:h")) != -1) {
		switch (opt) {
		case 'c':
			uri = optarg;
			break;
		case 'h':
			printf("usage: %s [-c URI] <domain.xml\n", argv[0]);
			return 0;
		default:
			fprintf(stderr, "usage: %s [-c URI] <domain.xml\n",
				argv[0]);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: %s [-c URI] <domain.xml\n", argv[0]);
		return 2;
	}
	xml = read_all(stdin, &len);
	if (!xml) {
		perror("listdisks: reading stdin");
		return 1;
	}
	if (domxml_parse(xml, len, &info, NULL, NULL) < 0) {
		fprintf(stderr, "listdisks: %s\n", error_msg());
		free(xml);
		return 1;
	}
	virSetErrorFunc(NULL, quiet);
	for (size_t i = 0; i < info.disks.n; i++) {
		struct disk *d = &info.disks.v[i];

		if (d->source_type == DISK_VOLUME && !d->path) {
			if (!uri) {
				fprintf(stderr,
					"listdisks: %s is a volume disk: "
					"give the host's libvirt URI with -c\n",
					d->dev);
				goto out;
			}
			if (!conn)
				conn = virConnectOpenReadOnly(uri);
			if (!conn) {
				fprintf(stderr, "listdisks: %s: %s\n", uri,
					virGetLastErrorMessage());
				goto out;
			}
			d->path =
			    virt_volume_path(conn, d->pool, d->volume, NULL);
			if (!d->path) {
				fprintf(stderr,
					"listdisks: %s: not listed: %s\n",
					d->dev, error_msg());
				continue;
			}
		}
		printf("%s %s %s\n", d->dev, d->format, d->path);
	}
	ret = fflush(stdout) == 0 ? 0 : 1;
out:
	if (conn)
		virConnectClose(conn);
	domxml_release(&info);
	free(xml);
	return ret;
}
