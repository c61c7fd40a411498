/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sysfs: the sysfs layer's attribute parsers on attribute content the input gives: the
 * text reader (NUL bytes, the trailing newline, a buffer too small), the number readers
 * against a reference reading of their documented grammar (sysfs.h), a link's target through
 * readlink and link_basename, the natural-order listing of names, and the relative-path check
 * every access makes.
 *
 * The input: the attribute's content, up to the first NUL; then NUL-separated pieces: a link
 * target, names to list, a relative path.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sysfs.h"

static int root_fd = -1;
static char root[PATH_MAX];

static bool is_ws(char c)
{
        return c == ' ' || c == '\t' || c == '\n';
}

/* sysfs.h: "one unsigned number: decimal, or hex with 0x, surrounded by at most white space". */
static bool ref_u64(const char *s, size_t len, uint64_t *ret)
{
        size_t i = 0, j;
        unsigned base = 10;
        uint64_t v = 0;

        if (memchr(s, '\0', len))
                return false;
        while (i < len && is_ws(s[i]))
                i++;
        if (i + 1 < len && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
                base = 16;
                i += 2;
        }
        for (j = i; j < len; j++) {
                unsigned d;
                if (s[j] >= '0' && s[j] <= '9')
                        d = (unsigned) (s[j] - '0');
                else if (base == 16 && isxdigit((unsigned char) s[j]))
                        d = (unsigned) (tolower((unsigned char) s[j]) - 'a' + 10);
                else
                        break;
                if (v > (UINT64_MAX - d) / base)
                        return false;
                v = v * base + d;
        }
        if (j == i)
                return false;
        while (j < len && is_ws(s[j]))
                j++;
        if (j != len)
                return false;
        *ret = v;
        return true;
}

/* "one signed decimal number", an int */
static bool ref_int(const char *s, size_t len, int *ret)
{
        size_t i = 0, j;
        bool neg = false;
        uint64_t v = 0;

        if (memchr(s, '\0', len))
                return false;
        while (i < len && is_ws(s[i]))
                i++;
        if (i < len && s[i] == '-') {
                neg = true;
                i++;
        }
        for (j = i; j < len && s[j] >= '0' && s[j] <= '9'; j++) {
                v = v * 10 + (uint64_t) (s[j] - '0');
                if (v > (uint64_t) INT_MAX + 1)
                        return false;
        }
        if (j == i || (!neg && v > INT_MAX))
                return false;
        while (j < len && is_ws(s[j]))
                j++;
        if (j != len)
                return false;
        *ret = neg ? (int) -(int64_t) v : (int) v;
        return true;
}

static bool rel_escapes(const char *rel)
{
        if (rel[0] == '/')
                return true;
        for (const char *p = rel; (p = strstr(p, "..")); p++)
                if ((p == rel || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
                        return true;
        return false;
}

static void check_attr(const char *content, size_t len)
{
        char buf[64];
        uint64_t u = 0, ru = 0;
        int i = 0, ri = 0, r;
        /* what the readers see: at most 62 bytes, one trailing newline dropped */
        size_t seen = len;

        fz_write(root, "attr", content, len);
        r = gpuh_sysfs_read(root_fd, "attr", buf, sizeof(buf));
        if (len >= sizeof(buf) - 1 ? r != -E2BIG : memchr(content, '\0', len) ? r != -EBADMSG : r < 0) {
                fprintf(stderr, "fuzz_sysfs: gpuh_sysfs_read of %zu bytes: %d\n", len, r);
                abort();
        }
        if (r >= 0) {
                seen = len > 0 && content[len - 1] == '\n' ? len - 1 : len;
                if ((size_t) r != seen || memcmp(buf, content, seen) != 0 || buf[r] != '\0')
                        abort();
        }
        if (r < 0)
                return;

        r = gpuh_sysfs_read_u64(root_fd, "attr", &u);
        if ((r == 0) != ref_u64(content, seen, &ru) || (r == 0 && u != ru)) {
                fprintf(stderr, "fuzz_sysfs: read_u64 of '%.*s': %d (%llu), the grammar says %s\n", (int) seen, content,
                        r, (unsigned long long) u, ref_u64(content, seen, &ru) ? "a number" : "no number");
                abort();
        }
        r = gpuh_sysfs_read_int(root_fd, "attr", &i);
        if ((r == 0) != ref_int(content, seen, &ri) || (r == 0 && i != ri)) {
                fprintf(stderr, "fuzz_sysfs: read_int of '%.*s': %d (%d), the grammar says %s\n", (int) seen, content,
                        r, i, ref_int(content, seen, &ri) ? "a number" : "no number");
                abort();
        }
}

static void check_link(const char *target)
{
        char link[PATH_MAX], buf[PATH_MAX], base[256];
        int r;

        fz_printf(link, "%s/link", root);
        unlink(link);
        if (!*target || strlen(target) >= PATH_MAX || symlink(target, link) < 0)
                return;
        r = gpuh_sysfs_readlink(root_fd, "link", buf, sizeof(buf));
        if (r < 0 || !streq(buf, target))
                abort();
        r = gpuh_sysfs_link_basename(root_fd, "link", base, sizeof(base));
        if (r >= 0 && (r == 0 || strchr(base, '/') || streq(base, ".") || streq(base, "..") ||
                       (size_t) r != strlen(base) || !strstr(target, base)))
                abort();
}

static void check_list(struct fz_pieces *in)
{
        char dir[PATH_MAX], path[PATH_MAX + 300];
        _cleanup_strv_free_ char **names = NULL;
        size_t made = 0;
        int r;

        fz_printf(dir, "%s/list", root);
        for (size_t k = 0; k < 8; k++) {
                _cleanup_free_ char *n = fz_next(in, NULL);
                if (!n)
                        break;
                if (!*n || strchr(n, '/') || streq(n, ".") || streq(n, "..") || strlen(n) > 255)
                        continue;
                fz_printf(path, "%s/%s", dir, n);
                if (mkdir(path, 0755) == 0)
                        made++;
        }
        r = gpuh_sysfs_list(root_fd, "list", &names);
        if (r < 0 || (size_t) r != made)
                abort();
        for (int k = 0; k < r; k++) {
                if (k > 0 && strverscmp(names[k - 1], names[k]) > 0)
                        abort();
                fz_printf(path, "%s/%s", dir, names[k]);
                rmdir(path);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fz_pieces in = { data, data + size, false };
        _cleanup_free_ char *content = NULL, *target = NULL, *rel = NULL;
        size_t len;
        int fd;

        if (root_fd < 0) {
                fz_printf(root, "%s/sys", fz_tmpdir());
                fz_mkdirs(fz_tmpdir(), "sys/list", true);
                root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (root_fd < 0)
                        abort();
        }
        /* the content may hold NUL bytes: up to the first one of the input only, here */
        content = fz_next(&in, &len);
        check_attr(content, len);
        /* and once as it came, NULs and all */
        check_attr((const char *) data, size < 100 ? size : 100);

        target = fz_next(&in, NULL);
        if (target)
                check_link(target);
        check_list(&in);

        rel = fz_next(&in, NULL);
        if (rel && *rel) {
                fd = gpuh_sysfs_open_dir(root_fd, rel);
                if (rel_escapes(rel) && fd != -EINVAL)
                        abort();
                if (fd >= 0)
                        close(fd);
                if (rel_escapes(rel) && gpuh_sysfs_exists(root_fd, rel) != -EINVAL)
                        abort();
        }
        return 0;
}
