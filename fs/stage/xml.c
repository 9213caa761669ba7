/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging, the domain.xml buffer.
 * See ../stage.h for the rules, stage-int.h for the locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../nbd/endpoint.h"
#include "../../common/error.h"
#include "../../nbd/extents.h"
#include "../../nbd/hostcmd.h"
#include "../domxml.h"
#include "../log.h"
#include "../path.h"
#include "../record.h"
#include "../rewrite.h"
#include "../../common/cleanup.h"
#include "stage-int.h"

ssize_t stage_xml_write(struct stage_open *so, const void *buf, size_t count,
			uint64_t offset)
{
	struct staged_file *sf = so->sf;
	ssize_t r = -1;

	pthread_mutex_lock(&so->sh->lock);
	if (offset + count > DOMXML_MAX_SIZE) {
		error_set(EFBIG, "domain.xml larger than %d bytes",
			  DOMXML_MAX_SIZE);
		goto out;
	}
	if (offset + count > sf->xml_len) {
		char *x = realloc(sf->xml, offset + count + 1);

		if (!x) {
			error_set(ENOMEM, "out of memory");
			goto out;
		}
		memset(x + sf->xml_len, 0, offset + count + 1 - sf->xml_len);
		sf->xml = x;
		stage_view_lock(so->sh);
		sf->xml_len = offset + count;
		stage_view_unlock(so->sh);
	}
	stage_handle_activate(so);
	memcpy(sf->xml + offset, buf, count);
	sf->xml_ok = false;
	stage_view_lock(so->sh);
	sf->mtime = time(NULL);
	stage_view_unlock(so->sh);
	r = (ssize_t)count;
out:
	pthread_mutex_unlock(&so->sh->lock);
	return r;
}

ssize_t stage_read(struct stage_open *so, void *buf, size_t count,
		   uint64_t offset)
{
	struct staged_file *sf = so->sf;
	ssize_t r = 0;

	if (!sf->is_xml) {
		error_set(EACCES, "disks being staged are write-only");
		return -1;
	}
	pthread_mutex_lock(&so->sh->lock);
	if (offset < sf->xml_len) {
		r = (ssize_t)(sf->xml_len - offset < count
				  ? sf->xml_len - offset
				  : count);
		memcpy(buf, sf->xml + offset, (size_t)r);
	}
	pthread_mutex_unlock(&so->sh->lock);
	return r;
}

uint64_t stage_expected_bytes(struct stage_open *so)
{
	struct staged_file *x;
	unsigned long long size, alloc = 0;

	if (so->sf->is_xml)
		return 0;
	LOCK_FOR_SCOPE(&so->sh->lock);
	x = stage_find_file(so->st, XML_NAME);
	if (!x || !x->xml_ok || !x->xml ||
	    domxml_disk_size(x->xml, x->xml_len, so->sf->dev, &size, &alloc) !=
		1)
		return 0;
	return alloc;
}
