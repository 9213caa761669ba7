/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests of nbd/hostcmd.c: quoting commands for a host's shell. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/error.h"
#include "../common/strvec.h"
#include "../nbd/hostcmd.h"
#include "suites.h"

static void expect_quote(const char *s, const char *want)
{
	char *q = hostcmd_quote(s);

	ck_assert_ptr_nonnull(q);
	ck_assert_str_eq(q, want);
	free(q);
}

START_TEST(test_quote)
{
	expect_quote("abc", "'abc'");
	expect_quote("/var/lib/libvirt/images/web1.img",
		     "'/var/lib/libvirt/images/web1.img'");
	expect_quote("", "''");
	expect_quote("'", "''\\'''");
	expect_quote("it's", "'it'\\''s'");
	expect_quote("''", "''\\'''\\'''");
	expect_quote("$(id)", "'$(id)'");
	expect_quote("`id`", "'`id`'");
	expect_quote("a\nb", "'a\nb'");
	expect_quote("a b  c\t", "'a b  c\t'");
	expect_quote("\\", "'\\'");
	expect_quote("\"", "'\"'");
	expect_quote("; rm -rf / &", "'; rm -rf / &'");
	expect_quote("$HOME*?[a]~", "'$HOME*?[a]~'");
}
END_TEST

static void expect_vec(const struct strvec *sv, char *const *want)
{
	size_t n = 0;

	while (want[n])
		n++;
	ck_assert_uint_eq(sv->n, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(sv->v[i], want[i]);
	ck_assert_ptr_null(sv->v[n]);
}

START_TEST(test_argv_local)
{
	char *cmd[] = { "qemu-img", "info", "/srv/a b's $(id).img", "", NULL };
	char *no_shell[] = { NULL };
	struct strvec out = STRVEC_INIT;

	ck_assert_int_eq(hostcmd_argv(NULL, cmd, &out), 0);
	expect_vec(&out, cmd);
	strvec_release(&out);

	ck_assert_int_eq(hostcmd_argv(no_shell, cmd, &out), 0);
	expect_vec(&out, cmd);
	strvec_release(&out);
}
END_TEST

START_TEST(test_argv_appends)
{
	char *cmd[] = { "true", NULL };
	char *shell[] = { "ssh", "h", NULL };
	char *want_local[] = { "env", "true", NULL };
	char *want_remote[] = { "env", "ssh", "h", "'true'", NULL };
	struct strvec out = STRVEC_INIT;

	ck_assert_int_eq(strvec_push(&out, "env"), 0);
	ck_assert_int_eq(hostcmd_argv(NULL, cmd, &out), 0);
	expect_vec(&out, want_local);
	strvec_release(&out);

	ck_assert_int_eq(strvec_push(&out, "env"), 0);
	ck_assert_int_eq(hostcmd_argv(shell, cmd, &out), 0);
	expect_vec(&out, want_remote);
	strvec_release(&out);
}
END_TEST

START_TEST(test_argv_ssh)
{
	char *shell[] = { "ssh", "root@h", NULL };
	char *cmd[] = {
		"qemu-img", "info", "/var/lib/a b.img", "it's", "", NULL
	};
	struct strvec out = STRVEC_INIT;

	ck_assert_int_eq(hostcmd_argv(shell, cmd, &out), 0);
	ck_assert_uint_eq(out.n, 3);
	ck_assert_str_eq(out.v[0], "ssh");
	ck_assert_str_eq(out.v[1], "root@h");
	ck_assert_str_eq(out.v[2],
			 "'qemu-img' 'info' '/var/lib/a b.img' 'it'\\''s' ''");
	ck_assert_ptr_null(out.v[3]);
	strvec_release(&out);
}
END_TEST

/* Run argv (argv[0] a path) in dir with stdout captured into a malloc'd
 * buffer; returns it, its length in *len and the wait status. */
static char *run(char *const *argv, const char *dir, size_t *len, int *status)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	int fds[2];
	pid_t pid;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (chdir(dir) < 0 || dup2(fds[1], 1) < 0)
			_exit(126);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		ssize_t r;

		if (n == cap) {
			char *b = realloc(buf, cap *= 2);

			ck_assert_ptr_nonnull(b);
			buf = b;
		}
		r = read(fds[0], buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		ck_assert_int_ge(r, 0);
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, status, 0), pid);
	*len = n;
	return buf;
}

/* The names in dir, each after a "/", in readdir order. */
static void list_dir(const char *dir, char *out, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	ck_assert_ptr_nonnull(d);
	out[0] = '\0';
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			snprintf(out + strlen(out), len - strlen(out), "/%s",
				 e->d_name);
	closedir(d);
}

#define N_HOSTILE 32

/* Hostile arguments; [0..3] name files in dir. */
static void hostile_args(const char *dir, char **a, size_t *n)
{
	static const char *const fixed[] = {
		"; rm -rf x",
		"&& rm -f x",
		"| rm -f x",
		"a'b",
		"'",
		"''",
		"'\\''",
		"\"",
		"\\",
		"\\'",
		"  leading and  inner  spaces ",
		"\ttab",
		"line1\nline2",
		"\n",
		"-n",
		"-e",
		"--",
		"-",
		"",
		"$HOME ${IFS} $0 $$ $1",
		"* ? [a-z] ~ ~root",
		"#not a comment",
		"a;b|c&d>e<f",
		"%s %d %%",
	};
	size_t i = 0;
	char *all = malloc(256);

	ck_assert_ptr_nonnull(all);
	ck_assert_int_ge(asprintf(&a[i++], "$(touch %s/PWNED)", dir), 0);
	ck_assert_int_ge(asprintf(&a[i++], "`touch %s/PWNED2`", dir), 0);
	ck_assert_int_ge(asprintf(&a[i++], "x; touch %s/PWNED3", dir), 0);
	ck_assert_int_ge(asprintf(&a[i++], "'; touch %s/PWNED4; '", dir), 0);
	for (size_t j = 0; j < sizeof fixed / sizeof fixed[0]; j++)
		a[i++] = strdup(fixed[j]);
	/* Every byte but NUL. */
	for (int c = 1; c < 256; c++)
		all[c - 1] = (char)c;
	all[255] = '\0';
	a[i++] = all;
	ck_assert_uint_le(i, N_HOSTILE);
	*n = i;
}

/* Run cmd through shell (which must run its last argument with sh -c), or
 * its one quoted argument through /bin/sh -c, and compare the output of
 * printf '%s\n' ARGS with the arguments. */
static void probe(int via_ssh_argument)
{
	char dir[] = "/tmp/kvmmigfs-check-hostcmd-XXXXXX";
	char path[128], names[512];
	char *args[N_HOSTILE], *cmd[N_HOSTILE + 3];
	char *ssh[] = { "ssh", "root@h", NULL };
	char *sh[] = { "/bin/sh", "-c", NULL };
	struct strvec out = STRVEC_INIT;
	char *want = NULL, *got;
	size_t n, want_len = 0, got_len;
	FILE *f;
	int status;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/x", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);

	hostile_args(dir, args, &n);
	cmd[0] = "printf";
	cmd[1] = "%s\\n";
	for (size_t i = 0; i < n; i++)
		cmd[i + 2] = args[i];
	cmd[n + 2] = NULL;

	f = open_memstream(&want, &want_len);
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", args[i]);
	fclose(f);

	if (via_ssh_argument) {
		char *argv[4] = { "/bin/sh", "-c", NULL, NULL };

		ck_assert_int_eq(hostcmd_argv(ssh, cmd, &out), 0);
		/* ssh root@h and ONE argument, the command line. */
		ck_assert_uint_eq(out.n, 3);
		ck_assert_str_eq(out.v[0], "ssh");
		ck_assert_str_eq(out.v[1], "root@h");
		argv[2] = out.v[2];
		got = run(argv, dir, &got_len, &status);
	} else {
		ck_assert_int_eq(hostcmd_argv(sh, cmd, &out), 0);
		ck_assert_uint_eq(out.n, 3);
		got = run(out.v, dir, &got_len, &status);
	}
	strvec_release(&out);

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "sh -c failed: status %d", status);
	ck_assert_uint_eq(got_len, want_len);
	ck_assert_mem_eq(got, want, want_len);
	free(got);
	free(want);

	/* Nothing was created, nothing removed. */
	list_dir(dir, names, sizeof names);
	ck_assert_str_eq(names, "/x");

	for (size_t i = 0; i < n; i++)
		free(args[i]);
	unlink(path);
	ck_assert_int_eq(rmdir(dir), 0);
}

START_TEST(test_hostile_through_sh_c)
{
	probe(1);
}
END_TEST

START_TEST(test_hostile_shell_prefix)
{
	probe(0);
}
END_TEST

START_TEST(test_hostile_local)
{
	/* Locally there is no shell at all: argv goes to exec unchanged. */
	char dir[] = "/tmp/kvmmigfs-check-hostcmd-XXXXXX";
	char *args[N_HOSTILE], *cmd[N_HOSTILE + 3], names[512];
	struct strvec out = STRVEC_INIT;
	char *want = NULL, *got;
	size_t n, want_len = 0, got_len;
	FILE *f;
	int status;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	hostile_args(dir, args, &n);
	cmd[0] = "/usr/bin/printf";
	cmd[1] = "%s\\n";
	for (size_t i = 0; i < n; i++)
		cmd[i + 2] = args[i];
	cmd[n + 2] = NULL;
	f = open_memstream(&want, &want_len);
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", args[i]);
	fclose(f);

	ck_assert_int_eq(hostcmd_argv(NULL, cmd, &out), 0);
	expect_vec(&out, cmd);
	got = run(out.v, dir, &got_len, &status);
	strvec_release(&out);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "printf failed: status %d", status);
	ck_assert_uint_eq(got_len, want_len);
	ck_assert_mem_eq(got, want, want_len);
	free(got);
	free(want);
	list_dir(dir, names, sizeof names);
	ck_assert_str_eq(names, "");
	for (size_t i = 0; i < n; i++)
		free(args[i]);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_probe_can_fail)
{
	/* The probe itself: an unquoted line does run the command. */
	char dir[] = "/tmp/kvmmigfs-check-hostcmd-XXXXXX";
	char line[128], names[512], path[128];
	char *argv[] = { "/bin/sh", "-c", line, NULL };
	size_t len;
	int status;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(line, sizeof line, "printf '%%s\\n' $(touch %s/PWNED)", dir);
	free(run(argv, dir, &len, &status));
	list_dir(dir, names, sizeof names);
	ck_assert_str_eq(names, "/PWNED");
	snprintf(path, sizeof path, "%s/PWNED", dir);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* hostcmd_output: what the command printed, stdout and stderr, and its
 * status; output past the buffer is dropped, never blocks the command;
 * a command that outlives the timeout is killed. */
START_TEST(test_output)
{
	char *echo[] = { "sh", "-c",
			 "printf 'one two\\n'; echo err >&2; exit 3", NULL };
	char *lots[] = { "sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x",
			 NULL };
	char *slow[] = { "sleep", "5", NULL };
	char out[16];

	ck_assert_int_eq(hostcmd_output(NULL, echo, 5000, out, sizeof out), 3);
	ck_assert_str_eq(out, "one two\nerr\n");
	ck_assert_int_eq(hostcmd_output(NULL, lots, 5000, out, sizeof out), 0);
	ck_assert_str_eq(out, "xxxxxxxxxxxxxxx");
	ck_assert_int_eq(hostcmd_output(NULL, slow, 200, out, sizeof out), -1);
	ck_assert_int_eq(error_errno(), ETIMEDOUT);
}
END_TEST

/* hostcmd_capture: all of stdout however long, the last line of stderr,
 * the status; killed only after idle_ms without output. */
START_TEST(test_capture)
{
	char *both[] = { "sh", "-c",
			 "head -c 3000000 /dev/zero | tr '\\0' x; "
			 "printf 'first\\nthe cause\\n' >&2; exit 4",
			 NULL };
	char *talks[] = {
		"sh", "-c",
		"for i in 1 2 3 4 5 6 7 8; do echo $i; sleep 0.1; done", NULL
	};
	char *silent[] = { "sleep", "5", NULL };
	char *missing[] = { "/nonexistent/kvmmigfs-crc", NULL };
	char err[64], *out;
	size_t len;

	ck_assert_int_eq(
	    hostcmd_capture(NULL, both, 5000, &out, &len, err, sizeof err), 4);
	ck_assert_uint_eq(len, 3000000);
	ck_assert_uint_eq(strspn(out, "x"), 3000000);
	ck_assert_str_eq(err, "the cause");
	free(out);
	/* 0.8 s in all, never 0.35 s quiet. */
	ck_assert_int_eq(
	    hostcmd_capture(NULL, talks, 350, &out, &len, err, sizeof err), 0);
	ck_assert_str_eq(out, "1\n2\n3\n4\n5\n6\n7\n8\n");
	free(out);
	error_clear();
	ck_assert_int_eq(
	    hostcmd_capture(NULL, silent, 300, &out, &len, err, sizeof err),
	    -1);
	ck_assert_int_eq(error_errno(), ETIMEDOUT);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(
	    hostcmd_capture(NULL, missing, 1000, &out, &len, err, sizeof err),
	    127);
	free(out);
}
END_TEST

Suite *hostcmd_suite(void)
{
	Suite *s = suite_create("hostcmd");
	TCase *tq = tcase_create("quote");
	TCase *ta = tcase_create("argv");
	TCase *th = tcase_create("hostile");

	tcase_add_test(tq, test_quote);
	suite_add_tcase(s, tq);

	tcase_add_test(ta, test_argv_local);
	tcase_add_test(ta, test_argv_appends);
	tcase_add_test(ta, test_argv_ssh);
	suite_add_tcase(s, ta);

	tcase_add_test(th, test_hostile_through_sh_c);
	tcase_add_test(th, test_hostile_shell_prefix);
	tcase_add_test(th, test_hostile_local);
	tcase_add_test(th, test_probe_can_fail);
	tcase_add_test(ta, test_output);
	tcase_add_test(ta, test_capture);
	tcase_set_timeout(th, 30);
	suite_add_tcase(s, th);
	return s;
}
