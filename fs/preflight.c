/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Pre-flight checks of a guest's domain XML against a host: preflight.h. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "../common/error.h"
#include "domxml.h"
#include "log.h"
#include "preflight.h"
#include "virt.h"

static int check_devices(struct vhost *vh, const struct domxml_needs *n,
			 int (*path_exists)(void *opaque, const char *path),
			 void *opaque)
{
	const char *host = vhost_config(vh)->name;

	if (n->hostdevs.n) {
		error_set(ENODEV,
			  "the guest has a host device (%s), which cannot "
			  "move",
			  n->hostdevs.v[0]);
		return -1;
	}
	for (size_t i = 0; i < n->networks.n; i++) {
		int r = vhost_network(vh, n->networks.v[i]);

		if (r < 0)
			return -1;
		if (r == 0) {
			error_set(ENXIO, "network '%s' not defined on %s",
				  n->networks.v[i], host);
			return -1;
		}
		if (r == 2)
			log_warning("%s: network '%s' is defined but not "
				    "active",
				    host, n->networks.v[i]);
	}
	for (size_t i = 0; i < n->bridges.n; i++) {
		char path[PATH_MAX];
		int r;

		snprintf(path, sizeof path, "/sys/class/net/%s/bridge",
			 n->bridges.v[i]);
		r = path_exists(opaque, path);
		if (r < 0)
			return -1;
		if (r == 0) {
			error_set(ENXIO, "bridge '%s' not found on %s",
				  n->bridges.v[i], host);
			return -1;
		}
	}
	return 0;
}

int preflight_xml(struct vhost *vh, const char *xml, size_t len,
		  bool check_uuid,
		  int (*path_exists)(void *opaque, const char *path),
		  void *opaque)
{
	const char *host = vhost_config(vh)->name;
	struct domxml_needs n;
	char other[256];
	int r;

	if (domxml_needs(xml, len, &n) < 0)
		return -1;
	r = check_devices(vh, &n, path_exists, opaque);
	if (r == 0)
		r = vhost_can_run(vh, &n);
	if (r == 0 && check_uuid && n.uuid) {
		int u = vhost_guest_by_uuid(vh, n.uuid, other, sizeof other);

		if (u < 0) {
			r = -1;
		} else if (u) {
			/* Not EEXIST: mv takes that for "the target name
			 * exists". */
			error_set(ENOTUNIQ,
				  "%s has a guest with this guest's UUID %s "
				  "already: %s",
				  host, n.uuid, other);
			r = -1;
		}
	}
	domxml_needs_release(&n);
	return r;
}
