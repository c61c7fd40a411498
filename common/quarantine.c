/* SPDX-License-Identifier: Apache-2.0 */
/* quarantine.c: STATE_DIR/quarantine/BDF.json, written atomically, read failing closed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fileio.h"
#include "statefile.h"
#include "macro.h"
#include "quarantine.h"

static void json_putp(json_object **o)
{
        if (*o)
                json_object_put(*o);
}

static int subdir_path(const char *state_dir, char *buf, size_t size)
{
        int n = snprintf(buf, size, "%s/%s", state_dir, GPUH_QUARANTINE_DIR);

        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

int gpuh_quarantine_add(int dirfd, const struct gpuh_pci_addr *a, const char *domain, const char *reason, int64_t now)
{
        _cleanup_(json_putp) json_object *o = NULL;
        char name[GPUH_PCI_ADDR_MAX + 8], bdf[GPUH_PCI_ADDR_MAX];
        struct stat st;
        const char *text;

        gpuh_pci_addr_format(a, bdf);
        snprintf(name, sizeof(name), "%s.json", bdf);
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return 0;       /* the first cause stays */
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "device", json_object_new_string(bdf));
        json_object_object_add(o, "since", json_object_new_int64(now));
        json_object_object_add(o, "domain", json_object_new_string(domain ? domain : ""));
        json_object_object_add(o, "reason", json_object_new_string(reason ? reason : ""));
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        return gpuh_statefile_replace(dirfd, name, text, strlen(text));
}

static void copy_str(char *dst, size_t size, json_object *v)
{
        const char *s = v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";

        snprintf(dst, size, "%s", s);
        /* one line: what reads it prints it */
        for (char *p = dst; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
}

static void parse_one(int dfd, const char *fname, struct gpuh_quarantined *q)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_(json_putp) json_object *o = NULL;
        json_object *v;
        char bdf[GPUH_PCI_ADDR_MAX];
        size_t len;
        int r = gpuh_statefile_read(dfd, fname, GPUH_QUARANTINE_FILE_MAX, &text, &len);

        if (r == 0)
                o = json_tokener_parse(text);
        gpuh_pci_addr_format(&q->addr, bdf);
        if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "device", &v) ||
            !json_object_is_type(v, json_type_string) || !streq(json_object_get_string(v), bdf)) {
                snprintf(q->reason, sizeof(q->reason), "quarantine file %s/%s is unreadable or malformed",
                         GPUH_QUARANTINE_DIR, fname);
                return;
        }
        if (json_object_object_get_ex(o, "since", &v) && json_object_is_type(v, json_type_int))
                q->since = json_object_get_int64(v);
        copy_str(q->domain, sizeof(q->domain), json_object_object_get_ex(o, "domain", &v) ? v : NULL);
        copy_str(q->reason, sizeof(q->reason), json_object_object_get_ex(o, "reason", &v) ? v : NULL);
}

static int cmp_q(const void *x, const void *y)
{
        return gpuh_pci_addr_cmp(&((const struct gpuh_quarantined *) x)->addr,
                                 &((const struct gpuh_quarantined *) y)->addr);
}

int gpuh_quarantine_load(const char *state_dir, struct gpuh_quarantined **ret, size_t *ret_n)
{
        _cleanup_free_ struct gpuh_quarantined *q = NULL;
        char dir[4096];
        DIR *d;
        struct dirent *de;
        size_t n = 0;
        int fd, r = 0;

        *ret = NULL;
        *ret_n = 0;
        if (!state_dir)
                return 0;
        r = subdir_path(state_dir, dir, sizeof(dir));
        if (r < 0)
                return r;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        q = calloc(GPUH_QUARANTINE_MAX, sizeof(*q));
        if (!q) {
                closedir(d);
                return -ENOMEM;
        }
        while ((de = readdir(d))) {
                char bdf[GPUH_PCI_ADDR_MAX + 8];
                size_t l = strlen(de->d_name);
                struct gpuh_pci_addr a;

                if (l < 6 || l - 5 >= sizeof(bdf) || !streq(de->d_name + l - 5, ".json"))
                        continue;       /* temporary files of an atomic write among them */
                memcpy(bdf, de->d_name, l - 5);
                bdf[l - 5] = '\0';
                if (gpuh_pci_addr_parse(bdf, &a) < 0)
                        continue;
                if (n == GPUH_QUARANTINE_MAX) {
                        r = -E2BIG;
                        break;
                }
                q[n] = (struct gpuh_quarantined) { .addr = a };
                parse_one(dirfd(d), de->d_name, &q[n]);
                n++;
        }
        closedir(d);
        if (r < 0)
                return r;
        qsort(q, n, sizeof(*q), cmp_q);
        *ret = TAKE_PTR(q);
        *ret_n = n;
        return 0;
}

const struct gpuh_quarantined *gpuh_quarantine_find(const struct gpuh_quarantined *q, size_t n,
                                                    const struct gpuh_pci_addr *a)
{
        for (size_t i = 0; i < n; i++)
                if (gpuh_pci_addr_cmp(&q[i].addr, a) == 0)
                        return &q[i];
        return NULL;
}
