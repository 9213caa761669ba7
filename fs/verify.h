/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Verify before define: a staged disk's new volume against the disk it was
 * copied from, by CRC32 computed on both hosts at the same time
 * (diskcrc.h).  Staging calls it (stage_options.verify) with the mount as
 * ctx.
 */
#ifndef KVMMIGFS_VERIFY_H
#define KVMMIGFS_VERIFY_H

#include "stage.h"

/* 0 the same (logged with the CRC) or nothing to compare with (logged:
 * the source host is not in this mount, or is another machine now); -1
 * with error_set(): EIO for a difference (both CRCs and the first block
 * that differs), else why a CRC could not be computed. */
int verify_disk(void *ctx, const struct stage_verify *v);

#endif
