/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the files reading domain XML with libxml2 share (domxml.c,
 * domneeds.c, rewrite.c): one set of parse flags and one way in and out
 * of a document.
 */
#ifndef KVMMIGFS_DOMXML_INT_H
#define KVMMIGFS_DOMXML_INT_H

#include <stddef.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

/* Flags for every document kvmmigfs parses: no network, no DTD loading,
 * no entity substitution, bounded sizes, no noise on stderr. */
#define PARSE_FLAGS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

/* Parse with the rules of domxml_parse (at most DOMXML_MAX_SIZE bytes,
 * no DOCTYPE); NULL with error_set(EINVAL). */
xmlDocPtr domxml_read_doc(const char *xml, size_t len);

/* The document as a malloc'd string, or NULL with error_set(). */
char *domxml_save_doc(xmlDocPtr doc);

#endif
