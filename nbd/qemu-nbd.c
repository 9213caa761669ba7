/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Formats other than raw: qemu-nbd, which reads backing chains flattened.
 * qemu-nbd cannot serve on stdin/stdout, so nbdkit's nbd plugin runs it
 * (socket activation) and relays it over "nbdkit -s".
 */
#include "endpoint.h"

static int qemu_server_argv(const struct endpoint_spec *spec,
			    struct strvec *argv)
{
	if (strvec_push(argv, "nbdkit") < 0 || strvec_push(argv, "-s") < 0 ||
	    strvec_push(argv, "--exit-with-parent") < 0 ||
	    (spec->readonly && strvec_push(argv, "-r") < 0) ||
	    strvec_push(argv, "nbd") < 0 ||
	    strvec_push(argv, "command=qemu-nbd") < 0 ||
	    strvec_pushf(argv, "arg=--format=%s", spec->format) < 0 ||
	    (spec->readonly && strvec_push(argv, "arg=--read-only") < 0) ||
	    (spec->shared && strvec_push(argv, "arg=--force-share") < 0) ||
	    strvec_pushf(argv, "arg=%s", spec->path) < 0)
		return -1;
	return 0;
}

const struct endpoint_ops endpoint_qemu_nbd = {
	.kind = "qemu-nbd",
	.server_argv = qemu_server_argv,
};
