/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Raw files and block devices: nbdkit's file plugin on the host. */
#include "endpoint.h"

static int file_server_argv(const struct endpoint_spec *spec,
			    struct strvec *argv)
{
	if (strvec_push(argv, "nbdkit") < 0 || strvec_push(argv, "-s") < 0 ||
	    strvec_push(argv, "--exit-with-parent") < 0 ||
	    (spec->readonly && strvec_push(argv, "-r") < 0) ||
	    strvec_push(argv, "file") < 0 ||
	    strvec_pushf(argv, "file=%s", spec->path) < 0 ||
	    strvec_push(argv, "fadvise=sequential") < 0)
		return -1;
	return 0;
}

const struct endpoint_ops endpoint_nbdkit_file = {
	.kind = "nbdkit-file",
	.server_argv = file_server_argv,
};
