/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests of fs/hosts.c: the hosts file and hosts_split_words(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/error.h"
#include "../common/strvec.h"
#include "../fs/hosts.h"
#include "suites.h"

#define BAD_NAME_REASON                                                        \
	"(use letters, digits, '.', '_', '-'; at most 48; not starting with "  \
	"'.' or '-')"

/* Parse text as "t.conf"; it must fail with EINVAL and exactly msg, and
 * leave *out empty. */
static void expect_error(const char *text, const char *msg)
{
	struct hosts_file hf = { (struct host_config *)1, 42 };
	int r;

	errno = 0;
	r = hosts_parse_string(text, "t.conf", &hf);
	if (r == 0) /* no leak when the assertion fails without a fork */
		hosts_release(&hf);
	ck_assert_msg(r == -1, "parsed: \"%s\"", text);
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_str_eq(error_msg(), msg);
	ck_assert_ptr_null(hf.hosts);
	ck_assert_uint_eq(hf.n, 0);
}

/* Write text to a new temporary file; returns its malloc'd path. */
static char *temp_file(const char *text, size_t len)
{
	char *path = strdup("/tmp/kvmmigfs-check-hosts-XXXXXX");
	int fd;

	ck_assert_ptr_nonnull(path);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
	return path;
}

static const char good[] =
    "; kvmmigfs hosts\n"				 /* 1 */
    "# two hosts\n"					 /* 2 */
    "\n"						 /* 3 */
    "[hosta]\n"						 /* 4 */
    "libvirt = qemu:///system\n"			 /* 5 */
    "shell =\n"						 /* 6 */
    "\n"						 /* 7 */
    "[host-b.example_1]\n"				 /* 8 */
    "libvirt = qemu+ssh://root@hostb/system ; remote\n"	 /* 9 */
    "shell   = ssh -o 'BatchMode yes'  \"root@hostb\"\n" /* 10 */
    "pool    = images\n";				 /* 11 */

START_TEST(test_good_file)
{
	struct hosts_file hf;
	const struct host_config *a, *b;

	ck_assert_int_eq(hosts_parse_string(good, "t.conf", &hf), 0);
	ck_assert_uint_eq(hf.n, 2);
	a = &hf.hosts[0];
	b = &hf.hosts[1];

	ck_assert_str_eq(a->name, "hosta");
	ck_assert_str_eq(a->libvirt_uri, "qemu:///system");
	ck_assert_str_eq(a->pool, HOSTS_DEFAULT_POOL);
	ck_assert_str_eq(a->pool, "default");
	ck_assert_uint_eq(a->shell.n, 0);
	ck_assert_int_eq(a->line, 4);

	ck_assert_str_eq(b->name, "host-b.example_1");
	ck_assert_str_eq(b->libvirt_uri, "qemu+ssh://root@hostb/system");
	ck_assert_str_eq(b->pool, "images");
	ck_assert_uint_eq(b->shell.n, 4);
	ck_assert_str_eq(b->shell.v[0], "ssh");
	ck_assert_str_eq(b->shell.v[1], "-o");
	ck_assert_str_eq(b->shell.v[2], "BatchMode yes");
	ck_assert_str_eq(b->shell.v[3], "root@hostb");
	ck_assert_ptr_null(b->shell.v[4]);
	ck_assert_int_eq(b->line, 8);

	hosts_release(&hf);
	ck_assert_ptr_null(hf.hosts);
	ck_assert_uint_eq(hf.n, 0);
}
END_TEST

START_TEST(test_no_shell_key)
{
	struct hosts_file hf;

	ck_assert_int_eq(
	    hosts_parse_string("[h]\nlibvirt=test:///default\n", "t", &hf), 0);
	ck_assert_uint_eq(hf.n, 1);
	ck_assert_str_eq(hf.hosts[0].name, "h");
	ck_assert_str_eq(hf.hosts[0].libvirt_uri, "test:///default");
	ck_assert_uint_eq(hf.hosts[0].shell.n, 0);
	ck_assert_ptr_null(hf.hosts[0].shell.v);
	ck_assert_str_eq(hf.hosts[0].pool, "default");
	ck_assert_int_eq(hf.hosts[0].line, 1);
	hosts_release(&hf);
}
END_TEST

START_TEST(test_comments)
{
	static const char text[] = "# comment\n"
				   "; comment\n"
				   "   ; indented comment\n"
				   "[c] ; after a section\n"
				   "# libvirt = commented out\n"
				   "libvirt = test:///default ; inline\n"
				   "pool = p\t; inline after a tab\n"
				   "shell = ssh h ; not a word\n";
	struct hosts_file hf;

	ck_assert_int_eq(hosts_parse_string(text, "t", &hf), 0);
	ck_assert_uint_eq(hf.n, 1);
	ck_assert_str_eq(hf.hosts[0].name, "c");
	ck_assert_int_eq(hf.hosts[0].line, 4);
	ck_assert_str_eq(hf.hosts[0].libvirt_uri, "test:///default");
	ck_assert_str_eq(hf.hosts[0].pool, "p");
	ck_assert_uint_eq(hf.hosts[0].shell.n, 2);
	ck_assert_str_eq(hf.hosts[0].shell.v[0], "ssh");
	ck_assert_str_eq(hf.hosts[0].shell.v[1], "h");
	hosts_release(&hf);
}
END_TEST

START_TEST(test_semicolon_inside_value)
{
	/* Only " ;" starts an inline comment: a ';' inside a word stays. */
	struct hosts_file hf;

	ck_assert_int_eq(hosts_parse_string("[h]\nlibvirt = a;b\n", "t", &hf),
			 0);
	ck_assert_str_eq(hf.hosts[0].libvirt_uri, "a;b");
	hosts_release(&hf);
}
END_TEST

START_TEST(test_key_outside_section)
{
	expect_error("libvirt = x\n[h]\nlibvirt = y\n",
		     "t.conf:1: key \"libvirt\" outside a [host] section");
	expect_error("; comment\n\npool = x\n",
		     "t.conf:3: key \"pool\" outside a [host] section");
}
END_TEST

START_TEST(test_unknown_key)
{
	expect_error("[h]\nlibvirt = x\nuri = y\n",
		     "t.conf:3: unknown key \"uri\" (known: libvirt, shell, "
		     "pool, bwlimit, reach, reach_fallback)");
	expect_error("[h]\n= x\nlibvirt = x\n",
		     "t.conf:2: unknown key \"\" (known: libvirt, shell, "
		     "pool, bwlimit, reach, reach_fallback)");
	/* Keys are case-sensitive. */
	expect_error("[h]\nLibvirt = x\n",
		     "t.conf:2: unknown key \"Libvirt\" (known: libvirt, "
		     "shell, pool, bwlimit, reach, reach_fallback)");
}
END_TEST

START_TEST(test_duplicate_host)
{
	/* Reported at the repeated header. */
	expect_error("[a]\nlibvirt = x\n[b]\nlibvirt = y\n[a]\nlibvirt = z\n",
		     "t.conf:5: host \"a\" defined twice");
	expect_error("[a]\nlibvirt = x\n[b]\nlibvirt = y\n[c]\nlibvirt = z\n"
		     "; again\n[b]\npool = p\n",
		     "t.conf:8: host \"b\" defined twice");
	/* Even without keys. */
	expect_error("[a]\nlibvirt = x\n[b]\nlibvirt = y\n[a]\n",
		     "t.conf:5: host \"a\" defined twice");
}
END_TEST

START_TEST(test_duplicate_host_adjacent)
{
	/* A section repeated right after itself is not merged into it. */
	expect_error("[a]\nlibvirt = x\n[a]\npool = y\n",
		     "t.conf:3: host \"a\" defined twice");
}
END_TEST

START_TEST(test_duplicate_key)
{
	expect_error("[h]\nlibvirt = x\nlibvirt = y\n",
		     "t.conf:3: key \"libvirt\" given twice");
	expect_error("[h]\nlibvirt = x\npool = a\n\npool = b\n",
		     "t.conf:5: key \"pool\" given twice");
	expect_error("[h]\nshell = ssh h\nlibvirt = x\nshell = ssh i\n",
		     "t.conf:4: key \"shell\" given twice");
	/* An empty shell counts as given. */
	expect_error("[h]\nshell =\nlibvirt = x\nshell = ssh i\n",
		     "t.conf:4: key \"shell\" given twice");
}
END_TEST

/* bwlimit: bytes per second, K/M/G suffixes; 0 is "none" but given (it
 * overrides the mount's -o bwlimit). */
START_TEST(test_bwlimit)
{
	struct hosts_file hf;

	ck_assert_int_eq(hosts_parse_string("[a]\nlibvirt = x\nbwlimit = 20M\n"
					    "[b]\nlibvirt = y\nbwlimit = 0\n"
					    "[c]\nlibvirt = z\n",
					    "t.conf", &hf),
			 0);
	ck_assert_uint_eq(hf.n, 3);
	ck_assert_uint_eq(hf.hosts[0].bwlimit, 20u << 20);
	ck_assert_int_eq(hf.hosts[0].bwlimit_given, 1);
	ck_assert_uint_eq(hf.hosts[1].bwlimit, 0);
	ck_assert_int_eq(hf.hosts[1].bwlimit_given, 1);
	ck_assert_int_eq(hf.hosts[2].bwlimit_given, 0);
	hosts_release(&hf);

	expect_error("[h]\nlibvirt = x\nbwlimit = 10M\nbwlimit = 1M\n",
		     "t.conf:4: key \"bwlimit\" given twice");
	expect_error("[h]\nlibvirt = x\nbwlimit = fast\n",
		     "t.conf:3: bwlimit: bad rate \"fast\": bytes per second, "
		     "with K, M or G for KiB, MiB or GiB (e.g. 20M), at most 1 "
		     "TiB/s; 0 for none");
}
END_TEST

/* reach: words as for shell, never empty; reach_fallback: yes or no. */
START_TEST(test_reach)
{
	struct hosts_file hf;

	ck_assert_int_eq(
	    hosts_parse_string("[a]\nlibvirt = x\n"
			       "reach = ssh -o 'BatchMode yes' root@a.lan\n"
			       "reach_fallback = yes\n[b]\nlibvirt = y\n",
			       "t.conf", &hf),
	    0);
	ck_assert_uint_eq(hf.hosts[0].reach.n, 4);
	ck_assert_str_eq(hf.hosts[0].reach.v[2], "BatchMode yes");
	ck_assert_str_eq(hf.hosts[0].reach.v[3], "root@a.lan");
	ck_assert(hf.hosts[0].reach_fallback);
	ck_assert_uint_eq(hf.hosts[1].reach.n, 0);
	ck_assert(!hf.hosts[1].reach_fallback);
	hosts_release(&hf);

	expect_error("[h]\nlibvirt = x\nreach =\n",
		     "t.conf:3: empty reach command");
	expect_error("[h]\nlibvirt = x\nreach = ssh 'h\n",
		     "t.conf:3: reach: unterminated quote");
	expect_error("[h]\nlibvirt = x\nreach = ssh a\nreach = ssh b\n",
		     "t.conf:4: key \"reach\" given twice");
	expect_error("[h]\nlibvirt = x\nreach_fallback = maybe\n",
		     "t.conf:3: reach_fallback: \"maybe\": yes or no");
}
END_TEST

START_TEST(test_bad_host_names)
{
	char text[256], msg[512], name[66];

	/* Reported at the section header. */
	expect_error("[..]\nlibvirt = x\n",
		     "t.conf:1: bad host name \"..\" " BAD_NAME_REASON);
	expect_error("[.hidden]\nlibvirt = x\n",
		     "t.conf:1: bad host name \".hidden\" " BAD_NAME_REASON);
	expect_error("[-x]\nlibvirt = x\n",
		     "t.conf:1: bad host name \"-x\" " BAD_NAME_REASON);
	expect_error("[a/b]\nlibvirt = x\n",
		     "t.conf:1: bad host name \"a/b\" " BAD_NAME_REASON);
	expect_error("[h]\nlibvirt = x\n[a b]\n\nlibvirt = x\n",
		     "t.conf:3: bad host name \"a b\" " BAD_NAME_REASON);
	expect_error("[]\nlibvirt = x\n",
		     "t.conf:1: bad host name \"\" " BAD_NAME_REASON);
	/* Even without keys. */
	expect_error("# c\n[..]\n[h]\nlibvirt = x\n",
		     "t.conf:2: bad host name \"..\" " BAD_NAME_REASON);

	/* hosts_name_ok() itself, including its 48-byte limit. */
	memset(name, 'n', HOSTS_NAME_MAX);
	name[HOSTS_NAME_MAX] = '\0';
	ck_assert(hosts_name_ok(name));
	name[HOSTS_NAME_MAX] = 'n';
	name[HOSTS_NAME_MAX + 1] = '\0';
	ck_assert(!hosts_name_ok(name));
	ck_assert(hosts_name_ok("a"));
	ck_assert(hosts_name_ok("Host_1.example-2"));
	ck_assert(hosts_name_ok("a.."));
	ck_assert(!hosts_name_ok(""));
	ck_assert(!hosts_name_ok("."));
	ck_assert(!hosts_name_ok(".."));
	ck_assert(!hosts_name_ok("-x"));
	ck_assert(!hosts_name_ok("a/b"));
	ck_assert(!hosts_name_ok("a b"));
	ck_assert(!hosts_name_ok("a:b"));
	ck_assert(!hosts_name_ok("h\xc3\xa9"));

	/* Too long by one byte; and one that inih's 49-byte section buffer
	 * keeps whole. */
	memset(name, 'n', 65);
	name[65] = '\0';
	snprintf(text, sizeof text, "[%s]\nlibvirt = x\n", name);
	snprintf(msg, sizeof msg, "t.conf:1: bad host name \"%s\" %s", name,
		 BAD_NAME_REASON);
	expect_error(text, msg);
	memset(name, 'n', 48);
	name[48] = '!';
	name[49] = '\0';
	snprintf(text, sizeof text, "[%s]\nlibvirt = x\n", name);
	snprintf(msg, sizeof msg, "t.conf:1: bad host name \"%s\" %s", name,
		 BAD_NAME_REASON);
	expect_error(text, msg);
}
END_TEST

START_TEST(test_empty_values)
{
	expect_error("[h]\nlibvirt =\n", "t.conf:2: empty libvirt URI");
	expect_error("[h]\nlibvirt = x\npool =\n", "t.conf:3: empty pool name");
}
END_TEST

START_TEST(test_missing_libvirt)
{
	/* The line is the one of the section's header. */
	expect_error("[a]\nlibvirt = x\n\n; b\n[b]\nshell = ssh b\npool = p\n",
		     "t.conf:5: host \"b\" has no \"libvirt\" URI");
	expect_error("[a]\npool = p\n[b]\nlibvirt = x\n",
		     "t.conf:1: host \"a\" has no \"libvirt\" URI");
}
END_TEST

START_TEST(test_no_hosts)
{
	expect_error("", "t.conf: no hosts defined");
	expect_error("\n\n", "t.conf: no hosts defined");
	expect_error("; only\n# comments\n", "t.conf: no hosts defined");
}
END_TEST

START_TEST(test_syntax_error)
{
	expect_error("[h]\nlibvirt = x\nthis is not a key\n",
		     "t.conf:3: syntax error (expected [host] or key = "
		     "value)");
	expect_error("[h]\nlibvirt = x\n[h2\n",
		     "t.conf:3: syntax error (no ']')");
}
END_TEST

START_TEST(test_first_error_wins)
{
	/* Two handler errors: the first one's line and reason. */
	expect_error("[h]\nlibvirt = x\nfoo = 1\nlibvirt = y\n",
		     "t.conf:3: unknown key \"foo\" (known: libvirt, shell, "
		     "pool, bwlimit, reach, reach_fallback)");
	/* A handler error, then a syntax error. */
	expect_error("[h]\nfoo = 1\nlibvirt = x\ngarbage\n",
		     "t.conf:2: unknown key \"foo\" (known: libvirt, shell, "
		     "pool, bwlimit, reach, reach_fallback)");
}
END_TEST

START_TEST(test_unterminated_quote_in_shell)
{
	expect_error("[h]\nlibvirt = x\nshell = ssh 'root@h\n",
		     "t.conf:3: shell: unterminated quote");
	expect_error("[h]\nlibvirt = x\nshell = ssh \"root@h\n",
		     "t.conf:3: shell: unterminated quote");
}
END_TEST

START_TEST(test_load_missing_file)
{
	struct hosts_file hf = { (struct host_config *)1, 42 };
	char dir[] = "/tmp/kvmmigfs-check-hosts-XXXXXX";
	char path[128], want[256];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/no-such.conf", dir);
	errno = 0;
	ck_assert_int_eq(hosts_load(path, &hf), -1);
	ck_assert_int_eq(error_errno(), ENOENT);
	ck_assert_int_eq(errno, ENOENT);
	snprintf(want, sizeof want, "%s: %s", path, strerror(ENOENT));
	ck_assert_str_eq(error_msg(), want);
	ck_assert_ptr_null(hf.hosts);
	ck_assert_uint_eq(hf.n, 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_load_file)
{
	char *path = temp_file(good, strlen(good));
	struct hosts_file hf;

	ck_assert_int_eq(hosts_load(path, &hf), 0);
	unlink(path);
	free(path);
	ck_assert_uint_eq(hf.n, 2);
	ck_assert_str_eq(hf.hosts[0].name, "hosta");
	ck_assert_int_eq(hf.hosts[0].line, 4);
	ck_assert_str_eq(hf.hosts[1].name, "host-b.example_1");
	ck_assert_str_eq(hf.hosts[1].libvirt_uri,
			 "qemu+ssh://root@hostb/system");
	ck_assert_str_eq(hf.hosts[1].pool, "images");
	ck_assert_uint_eq(hf.hosts[1].shell.n, 4);
	ck_assert_str_eq(hf.hosts[1].shell.v[2], "BatchMode yes");
	ck_assert_int_eq(hf.hosts[1].line, 8);
	hosts_release(&hf);
}
END_TEST

START_TEST(test_load_file_errors)
{
	static const char bad[] = "[h]\nlibvirt = x\nbogus = 1\n";
	static const char nul[] = "[h]\nlibvirt = x\0\n";
	char *path = temp_file(bad, strlen(bad));
	struct hosts_file hf;
	char want[256];

	/* Messages name the path given. */
	ck_assert_int_eq(hosts_load(path, &hf), -1);
	ck_assert_int_eq(error_errno(), EINVAL);
	snprintf(want, sizeof want,
		 "%s:3: unknown key \"bogus\" (known: libvirt, shell, pool, "
		 "bwlimit, reach, reach_fallback)",
		 path);
	ck_assert_str_eq(error_msg(), want);
	ck_assert_uint_eq(hf.n, 0);
	unlink(path);
	free(path);

	/* An empty file. */
	path = temp_file("", 0);
	ck_assert_int_eq(hosts_load(path, &hf), -1);
	ck_assert_int_eq(error_errno(), EINVAL);
	snprintf(want, sizeof want, "%s: no hosts defined", path);
	ck_assert_str_eq(error_msg(), want);
	unlink(path);
	free(path);

	/* A NUL byte must not silently cut the file. */
	path = temp_file(nul, sizeof nul - 1);
	ck_assert_int_eq(hosts_load(path, &hf), -1);
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_ptr_nonnull(strstr(error_msg(), path));
	ck_assert_uint_eq(hf.n, 0);
	unlink(path);
	free(path);
}
END_TEST

/* Split line; it must give exactly the n words of want. */
static void expect_words(const char *line, const char *const *want, size_t n)
{
	struct strvec sv = STRVEC_INIT;

	ck_assert_int_eq(hosts_split_words(line, &sv), 0);
	ck_assert_msg(sv.n == n, "\"%s\": %zu words, expected %zu", line, sv.n,
		      n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(sv.v[i], want[i]);
	if (n)
		ck_assert_ptr_null(sv.v[n]);
	strvec_release(&sv);
}

#define WORDS(line, ...)                                                       \
	do {                                                                   \
		static const char *const w_[] = { __VA_ARGS__ };               \
		expect_words(line, w_, sizeof w_ / sizeof w_[0]);              \
	} while (0)

START_TEST(test_split_plain)
{
	WORDS("ssh root@hostb", "ssh", "root@hostb");
	WORDS("one", "one");
	WORDS("  \t ssh\t\t-p  22 \t root@h  \t", "ssh", "-p", "22", "root@h");
	/* No expansions of any kind. */
	WORDS("$HOME ~ * $(id) `id` a;b|c", "$HOME", "~", "*", "$(id)", "`id`",
	      "a;b|c");
}
END_TEST

START_TEST(test_split_quotes)
{
	WORDS("ssh -o 'BatchMode yes' h", "ssh", "-o", "BatchMode yes", "h");
	WORDS("'a \"b\" \\c $d'", "a \"b\" \\c $d");
	WORDS("\"a 'b' $c\"", "a 'b' $c");
	WORDS("\"say \\\"hi\\\"\"", "say \"hi\"");
	WORDS("\"back\\\\slash\"", "back\\slash");
	/* Other backslashes inside double quotes are kept. */
	WORDS("\"a\\nb\"", "a\\nb");
	/* Quotes join with what touches them. */
	WORDS("a'b c'\"d e\"f", "ab cd ef");
	/* Empty quotes make empty words. */
	WORDS("'' \"\" x", "", "", "x");
}
END_TEST

START_TEST(test_split_backslash)
{
	WORDS("a\\ b c", "a b", "c");
	WORDS("\\'x\\'", "'x'");
	WORDS("\\\"", "\"");
	WORDS("\\\\", "\\");
	WORDS("\\$HOME", "$HOME");
}
END_TEST

START_TEST(test_split_empty)
{
	struct strvec sv = STRVEC_INIT;

	ck_assert_int_eq(hosts_split_words("", &sv), 0);
	ck_assert_uint_eq(sv.n, 0);
	ck_assert_ptr_null(sv.v);
	ck_assert_int_eq(hosts_split_words(" \t  \t", &sv), 0);
	ck_assert_uint_eq(sv.n, 0);
	ck_assert_ptr_null(sv.v);
}
END_TEST

START_TEST(test_split_appends)
{
	struct strvec sv = STRVEC_INIT;

	ck_assert_int_eq(strvec_push(&sv, "first"), 0);
	ck_assert_int_eq(hosts_split_words("a b", &sv), 0);
	ck_assert_uint_eq(sv.n, 3);
	ck_assert_str_eq(sv.v[0], "first");
	ck_assert_str_eq(sv.v[1], "a");
	ck_assert_str_eq(sv.v[2], "b");
	strvec_release(&sv);
}
END_TEST

START_TEST(test_split_unterminated)
{
	static const char *const bad[] = {
		"'abc", "ssh 'root@h", "\"abc",	     "a \"b c",	   "\"a\\\"",
		"'",	"\"",	       "ok 'x' \"y", "\"\\\\\\\"",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct strvec sv = STRVEC_INIT;
		int r;

		errno = 0;
		r = hosts_split_words(bad[i], &sv);
		strvec_release(&sv);
		ck_assert_msg(r == -1, "\"%s\" split", bad[i]);
		ck_assert_int_eq(error_errno(), EINVAL);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_str_eq(error_msg(), "unterminated quote");
	}
}
END_TEST

/* Parse text; returns 0 and fills *hf, or -1 leaving the message in msg.
 * For the bug tests: never fails an assertion while holding memory. */
static int try_parse(const char *text, struct hosts_file *hf, char *msg,
		     size_t len)
{
	if (hosts_parse_string(text, "t.conf", hf) == 0)
		return 0;
	snprintf(msg, len, "%s", error_msg());
	return -1;
}

/* A syntax error followed by a handler error: the first error's line and
 * its own reason. */
START_TEST(test_syntax_error_then_handler_error)
{
	expect_error("[h]\nlibvirt = x\ngarbage\nbogus = 1\n",
		     "t.conf:3: syntax error (expected [host] or key = "
		     "value)");
	/* A broken section header, then its keys outside any section. */
	expect_error("[h\nlibvirt = x\n", "t.conf:1: syntax error (no ']')");
}
END_TEST

/* Host names of up to 48 bytes (libinih keeps 49) parse whole. */
START_TEST(test_long_host_names)
{
	char name[50], text[128], got[50] = "", msg[512] = "";
	struct hosts_file hf;
	int r, line = -1;

	memset(name, 'n', 48);
	name[48] = '\0';
	snprintf(text, sizeof text, "[%s]\nlibvirt = x\n", name);
	r = try_parse(text, &hf, msg, sizeof msg);
	if (r == 0) {
		snprintf(got, sizeof got, "%s", hf.hosts[0].name);
		line = hf.hosts[0].line;
		hosts_release(&hf);
	}
	ck_assert_msg(r == 0, "48-byte name refused: %s", msg);
	ck_assert_str_eq(got, name);
	ck_assert_int_eq(line, 1);

	memset(name, 'n', 49);
	name[49] = '\0';
	snprintf(text, sizeof text, "[%s]\nlibvirt = x\n", name);
	ck_assert_int_eq(try_parse(text, &hf, msg, sizeof msg), -1);
	ck_assert_msg(strstr(msg, "t.conf:1: bad host name") != NULL, "%s",
		      msg);
}
END_TEST

/* A section with no keys is a host without a libvirt URI. */
START_TEST(test_empty_section)
{
	expect_error("[a]\nlibvirt = x\n[b]\n",
		     "t.conf:3: host \"b\" has no \"libvirt\" URI");
}
END_TEST

/* Lines longer than libinih's limit are refused at their own line
 * rather than split. */
START_TEST(test_long_line)
{
	char text[512], uri[301];

	memcpy(uri, "qemu+ssh://root@hostb/system?keyfile=/", 38);
	memset(uri + 38, 'k', sizeof uri - 39);
	uri[sizeof uri - 1] = '\0';
	snprintf(text, sizeof text, "[h]\nlibvirt = %s\n", uri);
	expect_error(text, "t.conf:2: line longer than 199 bytes");
}
END_TEST

Suite *hosts_suite(void)
{
	Suite *s = suite_create("hosts");
	TCase *tc = tcase_create("parse");
	TCase *tl = tcase_create("load");
	TCase *tw = tcase_create("split_words");

	tcase_add_test(tc, test_good_file);
	tcase_add_test(tc, test_no_shell_key);
	tcase_add_test(tc, test_comments);
	tcase_add_test(tc, test_semicolon_inside_value);
	tcase_add_test(tc, test_key_outside_section);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_duplicate_host);
	tcase_add_test(tc, test_duplicate_host_adjacent);
	tcase_add_test(tc, test_duplicate_key);
	tcase_add_test(tc, test_bwlimit);
	tcase_add_test(tc, test_reach);
	tcase_add_test(tc, test_bad_host_names);
	tcase_add_test(tc, test_empty_values);
	tcase_add_test(tc, test_missing_libvirt);
	tcase_add_test(tc, test_no_hosts);
	tcase_add_test(tc, test_syntax_error);
	tcase_add_test(tc, test_first_error_wins);
	tcase_add_test(tc, test_unterminated_quote_in_shell);
	suite_add_tcase(s, tc);

	tcase_add_test(tl, test_load_missing_file);
	tcase_add_test(tl, test_load_file);
	tcase_add_test(tl, test_load_file_errors);
	suite_add_tcase(s, tl);

	tcase_add_test(tw, test_split_plain);
	tcase_add_test(tw, test_split_quotes);
	tcase_add_test(tw, test_split_backslash);
	tcase_add_test(tw, test_split_empty);
	tcase_add_test(tw, test_split_appends);
	tcase_add_test(tw, test_split_unterminated);
	suite_add_tcase(s, tw);

	tcase_add_test(tc, test_syntax_error_then_handler_error);
	tcase_add_test(tc, test_long_host_names);
	tcase_add_test(tc, test_empty_section);
	tcase_add_test(tc, test_long_line);
	return s;
}
