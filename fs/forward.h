/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Stream forwards for a live move: a connection to a unix socket on the
 * source host reaches the socket of the same path on the target host,
 * through this machine, over the hosts' own ssh (their shells), so that
 * the two hosts need not reach each other.
 *
 *   target remote:  ssh TARGET -N -L PATH:PATH   (this machine listens)
 *   source remote:  ssh SOURCE -N -R PATH:PATH   (the source listens)
 *
 * Every PATH is DIR/NAME, the same on both hosts and here; DIR is made on
 * each (the target's writable by its QEMU, which listens there) and
 * removed again by forwards_stop().  A local host (empty shell) needs no
 * forward on its side.  ssh forwards unix sockets lazily: the target's
 * sockets may appear later (libvirt's Prepare makes them).
 *
 * The direct path: when the target host has a reach command (an ssh
 * command, from the hosts file), the source host forwards the sockets
 * itself, and the streams go host to host:
 *
 *   source remote:  ssh SOURCE sh -c '... REACH -N -L PATH:PATH ...'
 *
 * That remote ssh is stopped when this machine closes its side's stdin
 * (or the session ends).
 *
 * The ssh processes die with the daemon (PR_SET_PDEATHSIG).
 */
#ifndef KVMMIGFS_FORWARD_H
#define KVMMIGFS_FORWARD_H

#include <stddef.h>

struct forwards;

/* Set up forwards of dir/names[i] from the host reached by src_shell to
 * the one reached by dst_shell (NULL-terminated; NULL or empty: this
 * machine), directly when dst_reach (the target's reach words) is given,
 * and wait (at most timeout_ms) until the source side listens.  A shell
 * or reach that is not ssh cannot forward: EPROTONOSUPPORT; a forward
 * that ends: EHOSTUNREACH with what its ssh said.  NULL with error_set();
 * nothing is left behind then. */
struct forwards *forwards_start(char *const *src_shell, char *const *dst_shell,
				char *const *dst_reach, const char *dir,
				const char *const *names, size_t n,
				int timeout_ms);

/* Stop the forwards and remove dir on the hosts and here. */
void forwards_stop(struct forwards *f);

#endif
