/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests of fs/virt.c's caches against libvirt's test driver. */
#include <errno.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <string.h>

#include "../common/error.h"
#include "../common/strvec.h"
#include "../fs/virt-int.h"
#include "../fs/virt.h"
#include "suites.h"

static void quiet(void *data, virErrorPtr e)
{
	(void)data;
	(void)e;
}

static const char guest_xml[] =
    "<domain type='test'><name>gone1</name><memory>65536</memory>"
    "<os><type>hvm</type></os></domain>";

/* A guest undefined behind the daemon's back: once a listing no longer
 * shows it, a lookup does not find it either, even while the snapshot a
 * lookup made before is still fresh (mkdir of that name would otherwise
 * meet a cached entry and fail with EEXIST). */
START_TEST(test_listing_drops_snapshot)
{
	struct host_config cfg = { .name = "t",
				   .libvirt_uri = "test:///default",
				   .pool = "default-pool" };
	struct vhost *vh = vhost_new(&cfg, 10000, 60000);
	virConnectPtr conn = virConnectOpen("test:///default");
	struct strvec names = STRVEC_INIT;
	virDomainPtr dom;
	struct guest *g;

	virSetErrorFunc(NULL, quiet);
	ck_assert_ptr_nonnull(vh);
	ck_assert_ptr_nonnull(conn);
	dom = virDomainDefineXML(conn, guest_xml);
	ck_assert_ptr_nonnull(dom);

	ck_assert_int_eq(vhost_list(vh, &names), 0);
	ck_assert_int_ge(strvec_find(&names, "gone1"), 0);
	strvec_release(&names);
	g = vhost_guest(vh, "gone1");
	ck_assert_ptr_nonnull(g);
	guest_put(g);

	ck_assert_int_eq(virDomainUndefine(dom), 0);
	virDomainFree(dom);
	/* The listing's time is up, the snapshot's is not. */
	pthread_mutex_lock(&vh->lock);
	vh->names_ms = 0;
	pthread_mutex_unlock(&vh->lock);
	ck_assert_int_eq(vhost_list(vh, &names), 0);
	ck_assert_int_lt(strvec_find(&names, "gone1"), 0);
	strvec_release(&names);

	g = vhost_guest(vh, "gone1");
	ck_assert_ptr_null(g);
	ck_assert_int_eq(error_errno(), ENOENT);

	virConnectClose(conn);
	vhost_free(vh);
}
END_TEST

Suite *virt_suite(void)
{
	Suite *s = suite_create("virt");
	TCase *tc = tcase_create("cache");

	tcase_add_test(tc, test_listing_drops_snapshot);
	suite_add_tcase(s, tc);
	return s;
}
