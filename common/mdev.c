/* SPDX-License-Identifier: Apache-2.0 */
/* mdev.c: mdev types, their descriptions, and the created mdevs of a host. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <uuid/uuid.h>

#include "clock.h"
#include "log.h"
#include "mdev.h"
#include "sysfs.h"

bool gpuh_uuid_is_valid(const char *s)
{
        uuid_t u;

        return s && uuid_parse(s, u) == 0;
}

int gpuh_uuid_normalize(const char *s, char ret[static GPUH_UUID_STR_LEN + 1])
{
        uuid_t u;

        if (!s || uuid_parse(s, u) < 0)
                return -EINVAL;
        uuid_unparse_lower(u, ret);
        return 0;
}

/* Leading unsigned decimal; -1 when @s does not start with a digit or overflows. */
static int64_t lead_num(const char *s, const char **end)
{
        int64_t v = 0;

        if (!isdigit((unsigned char) *s))
                return -1;
        while (isdigit((unsigned char) *s)) {
                if (v > (INT64_MAX - 9) / 10)
                        return -1;
                v = v * 10 + (*s++ - '0');
        }
        if (end)
                *end = s;
        return v;
}

/* "WxH" -> both, or neither. */
static void parse_res(const char *s, struct gpuh_vgpu_params *p)
{
        const char *e;
        int64_t x = lead_num(s, &e), y;

        if (x < 0 || *e != 'x')
                return;
        y = lead_num(e + 1, &e);
        if (y < 0)
                return;
        p->max_res_x = x;
        p->max_res_y = y;
}

/* Size with an optional unit: "1024M", "1024MB", "4G", "512" (MiB) -> MiB, -1 if malformed. */
static int64_t parse_mib(const char *s)
{
        const char *e;
        int64_t v = lead_num(s, &e);

        if (v < 0)
                return -1;
        if (*e == 'G' || *e == 'g')
                return v > INT64_MAX / 1024 ? -1 : v * 1024;
        if (*e == 'M' || *e == 'm' || *e == '\0' || *e == ' ')
                return v;
        return -1;
}

static char *trim(char *s)
{
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                *--e = '\0';
        return s;
}

void gpuh_vgpu_params_parse(const char *type_id, const char *description,
                            struct gpuh_vgpu_params *ret)
{
        struct gpuh_vgpu_params p = { -1, -1, -1, -1, -1 };
        int64_t low_gm = -1, high_gm = -1;
        _cleanup_free_ char *copy = NULL;
        const char *gvt;
        char *save = NULL, *tok;

        if (description && (copy = strdup(description))) {
                /* Both formats split on newlines and commas into key/value items. */
                for (tok = strtok_r(copy, ",\n", &save); tok; tok = strtok_r(NULL, ",\n", &save)) {
                        char *sep = strpbrk(tok, "=:"), *key, *val;

                        if (!sep)
                                continue;
                        *sep = '\0';
                        key = trim(tok);
                        val = trim(sep + 1);
                        if (streq(key, "max_instance"))
                                p.max_instances = lead_num(val, NULL);
                        else if (streq(key, "framebuffer"))
                                p.video_ram_mib = parse_mib(val);
                        else if (streq(key, "num_heads"))
                                p.max_heads = lead_num(val, NULL);
                        else if (streq(key, "max_resolution") || streq(key, "resolution"))
                                parse_res(val, &p);
                        else if (streq(key, "low_gm_size"))
                                low_gm = parse_mib(val);
                        else if (streq(key, "high_gm_size"))
                                high_gm = parse_mib(val);
                }
        }
        /* Summed with a check: hostile sysfs numbers may each fit and their sum not. A sum
         * past INT64_MAX MiB describes no GPU: it stays unknown. */
        if (p.video_ram_mib < 0 && low_gm >= 0 && high_gm >= 0 &&
            __builtin_add_overflow(low_gm, high_gm, &p.video_ram_mib))
                p.video_ram_mib = -1;

        /* "i915-GVTg_V5_4", "GVTg_V4_2": sized for that many vGPUs per GPU. */
        if (p.max_instances < 0 && type_id && (gvt = strstr(type_id, "GVTg_V"))) {
                const char *us = strrchr(gvt, '_');
                const char *e;
                int64_t n = us ? lead_num(us + 1, &e) : -1;
                if (n > 0 && *e == '\0')
                        p.max_instances = n;
        }
        *ret = p;
}

static void mdev_type_clear(struct gpuh_mdev_type *t)
{
        free(t->type_id);
        if (t->borrowed)
                return;
        free(t->name);
        free(t->description);
        free(t->device_api);
}

void gpuh_mdev_types_free(struct gpuh_mdev_type *types, size_t n)
{
        if (!types)
                return;
        for (size_t i = 0; i < n; i++)
                mdev_type_clear(&types[i]);
        free(types);
}

/* Optional text attribute of a type: NULL when absent, warning when unreadable. */
static int read_type_text(int fd, const char *where, const char *type, const char *attr, char **ret,
                          struct gpuh_warnings *w)
{
        char buf[4096], rel[NAME_MAX + 32];
        int r;

        snprintf(rel, sizeof(rel), "%s/%s", type, attr);
        r = gpuh_sysfs_read(fd, rel, buf, sizeof(buf));

        *ret = NULL;
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                gpuh_warn(w, "%s/%s: %s", where, attr, strerror(-r));
                return 0;
        }
        *ret = strdup(trim(buf));
        return *ret ? 0 : -ENOMEM;
}

int gpuh_mdev_types_read(int root_fd, const struct gpuh_pci_addr *parent,
                         const struct gpuh_mdev_type *tmpl, size_t n_tmpl,
                         struct gpuh_warnings *w, struct gpuh_mdev_type **ret)
{
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_close_ int dfd = -EBADF;
        struct gpuh_mdev_type *types;
        char pname[GPUH_PCI_ADDR_MAX], rel[96];
        size_t n = 0;
        int r;

        gpuh_pci_addr_format(parent, pname);
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/mdev_supported_types", pname);
        dfd = gpuh_sysfs_open_dir(root_fd, rel);
        if (dfd == -ENOENT || dfd == -ENOTDIR) {
                *ret = NULL;
                return 0;
        }
        if (dfd < 0)
                return dfd;
        r = gpuh_sysfs_list(dfd, ".", &names);
        if (r < 0)
                return r;
        types = calloc((size_t) r + 1, sizeof(*types));
        if (!types)
                return -ENOMEM;

        for (char **p = names; *p; p++) {
                struct gpuh_mdev_type *t = &types[n];
                const struct gpuh_mdev_type *src = NULL;
                char where[160], attr[NAME_MAX + 32];
                int avail;

                /* Attributes are read by "<type>/<attr>" under the directory fd: no fd per type. */
                snprintf(where, sizeof(where), "%s/mdev_supported_types/%s", pname, *p);
                for (size_t i = 0; tmpl && i < n_tmpl; i++)
                        if (streq(tmpl[i].type_id, *p)) {
                                src = &tmpl[i];
                                break;
                        }
                snprintf(attr, sizeof(attr), "%s/available_instances", *p);
                r = gpuh_sysfs_read_int(dfd, attr, &avail);
                if (r == -ENOTDIR)
                        continue;       /* a file, not a type directory */
                t->type_id = strdup(*p);
                if (!t->type_id)
                        goto oom;
                n++;
                if (r == 0 && avail >= 0)
                        t->available_instances = avail;
                else {
                        t->available_instances = -1;
                        if (r != -ENOENT)
                                gpuh_warn(w, "%s/available_instances: %s", where,
                                          r < 0 ? strerror(-r) : "negative");
                }
                if (src) {
                        t->name = src->name;
                        t->description = src->description;
                        t->device_api = src->device_api;
                        t->params = src->params;
                        t->borrowed = true;
                        continue;
                }
                if (read_type_text(dfd, where, *p, "name", &t->name, w) < 0 ||
                    read_type_text(dfd, where, *p, "description", &t->description, w) < 0 ||
                    read_type_text(dfd, where, *p, "device_api", &t->device_api, w) < 0)
                        goto oom;
                gpuh_vgpu_params_parse(t->type_id, t->description, &t->params);
        }
        *ret = types;
        return (int) n;
oom:
        gpuh_mdev_types_free(types, n + 1);
        return -ENOMEM;
}

void gpuh_mdevs_free(struct gpuh_mdev *m, size_t n)
{
        if (!m)
                return;
        for (size_t i = 0; i < n; i++)
                free(m[i].type_id);
        free(m);
}

static int cmp_mdev(const void *a, const void *b)
{
        const struct gpuh_mdev *x = a, *y = b;
        int c = gpuh_pci_addr_cmp(&x->parent, &y->parent);

        return c ? c : strcmp(x->uuid, y->uuid);
}

int gpuh_mdev_list(int root_fd, struct gpuh_warnings *w, struct gpuh_mdev **ret)
{
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_close_ int bfd = -EBADF;
        struct gpuh_mdev *m;
        size_t n = 0;
        int r;

        *ret = NULL;
        bfd = gpuh_sysfs_open_dir(root_fd, "bus/mdev/devices");
        if (bfd == -ENOENT || bfd == -ENOTDIR)
                return 0;
        if (bfd < 0)
                return bfd;
        r = gpuh_sysfs_list(bfd, ".", &names);
        if (r < 0)
                return r;
        m = calloc((size_t) r + 1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        for (char **p = names; *p; p++) {
                char target[PATH_MAX], buf[128], *slash, *pslash;
                struct gpuh_mdev *e = &m[n];
                const char *pcomp;

                if (gpuh_uuid_normalize(*p, e->uuid) < 0) {
                        gpuh_warn(w, "bus/mdev/devices/%s: not a UUID", *p);
                        continue;
                }
                /* "../../../devices/pci0000:00/0000:00:03.0/0000:08:00.4/<uuid>" */
                r = gpuh_sysfs_readlink(bfd, *p, target, sizeof(target));
                slash = r >= 0 ? strrchr(target, '/') : NULL;
                if (!slash) {
                        gpuh_warn(w, "bus/mdev/devices/%s: %s", *p, r < 0 ? strerror(-r) : "bad link");
                        continue;
                }
                *slash = '\0';
                pslash = strrchr(target, '/');
                pcomp = pslash ? pslash + 1 : target;
                if (gpuh_pci_addr_parse(pcomp, &e->parent) < 0)
                        continue;       /* parent is not a PCI function (mtty, ccw, ...) */
                if (gpuh_sysfs_exists(bfd, *p) != 1) {
                        gpuh_warn(w, "bus/mdev/devices/%s: dangling link", *p);
                        continue;
                }
                e->iommu_group = -1;
                snprintf(buf, sizeof(buf), "%s/mdev_type", *p);
                r = gpuh_sysfs_link_basename(bfd, buf, target, sizeof(target));
                if (r >= 0) {
                        e->type_id = strdup(target);
                        if (!e->type_id) {
                                gpuh_mdevs_free(m, n);
                                return -ENOMEM;
                        }
                } else
                        gpuh_warn(w, "mdev %s: mdev_type: %s", *p, strerror(-r));
                snprintf(buf, sizeof(buf), "%s/iommu_group", *p);
                r = gpuh_sysfs_link_basename(bfd, buf, target, sizeof(target));
                if (r >= 0) {
                        char *end;
                        long g = strtol(target, &end, 10);
                        if (!*end && g >= 0 && g <= INT_MAX && isdigit((unsigned char) target[0]))
                                e->iommu_group = (int) g;
                }
                n++;
        }
        qsort(m, n, sizeof(*m), cmp_mdev);
        *ret = m;
        return (int) n;
}

bool gpuh_mdev_type_name_ok(const char *s)
{
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > 63 || streq(s, ".") || streq(s, ".."))
                return false;
        return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:+-") == n;
}

int gpuh_mdev_create(struct gpuh_change *c, const struct gpuh_pci_addr *parent, const char *type_id, const char *uuid,
                     char **reterr)
{
        char pname[GPUH_PCI_ADDR_MAX], rel[PATH_MAX], buf[128];
        int avail, pfd, r;

        if (!gpuh_uuid_is_valid(uuid) || !gpuh_mdev_type_name_ok(type_id))
                return gpuh_error(reterr, -EINVAL, "invalid mdev UUID or type");
        gpuh_pci_addr_format(parent, pname);
        snprintf(rel, sizeof(rel), "bus/mdev/devices/%s/mdev_type", uuid);
        r = gpuh_sysfs_link_basename(c->root_fd, rel, buf, sizeof(buf));
        if (r >= 0) {
                char target[PATH_MAX], *slash;
                snprintf(rel, sizeof(rel), "bus/mdev/devices/%s", uuid);
                r = gpuh_sysfs_readlink(c->root_fd, rel, target, sizeof(target));
                slash = r >= 0 ? strrchr(target, '/') : NULL;
                if (slash)
                        *slash = '\0';
                slash = slash ? strrchr(target, '/') : NULL;
                if (streq(buf, type_id) && slash && streq(slash + 1, pname))
                        return 0;       /* already there, as asked */
                return gpuh_error(reterr, -EEXIST, "mdev %s exists already, as %s on %s", uuid, buf,
                                  slash ? slash + 1 : "another parent");
        }
        pfd = gpuh_change_devfd(c, parent);
        if (pfd < 0)
                return gpuh_error(reterr, pfd == -ENOENT ? -ENODEV : pfd, "%s: no such PCI device", pname);
        snprintf(rel, sizeof(rel), "mdev_supported_types/%s/available_instances", type_id);
        r = gpuh_sysfs_read_int(pfd, rel, &avail);
        if (c->dry_run) {
                json_object *o = json_object_new_object();
                if (o) {
                        json_object_object_add(o, "step", json_object_new_string("check"));
                        char shown[PATH_MAX];
                        json_object_object_add(o, "path", json_object_new_string(gpuh_change_path(c, pfd, rel, shown,
                                                                                                  sizeof(shown))));
                        json_object_object_add(o, "value", r == 0 ? json_object_new_int(avail) : NULL);
                        json_object_object_add(o, "need", json_object_new_string("> 0"));
                }
                gpuh_change_step(c, o);
        }
        if (r == -ENOENT)
                return gpuh_error(reterr, -ENOENT, "%s offers no mdev type %s", pname, type_id);
        if (r == 0 && avail <= 0)
                return gpuh_error(reterr, -ENOSPC, "%s: no %s instance available (available_instances 0)", pname, type_id);
        snprintf(rel, sizeof(rel), "mdev_supported_types/%s/create", type_id);
        r = gpuh_change_write(c, pfd, rel, uuid);
        if (r < 0)
                return gpuh_error(reterr, r, "%s: creating mdev %s of type %s: %s", pname, uuid, type_id,
                                  r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
        snprintf(rel, sizeof(rel), "bus/mdev/devices/%s", uuid);
        r = gpuh_change_wait_exists(c, c->root_fd, rel, true);
        if (r < 0)
                return gpuh_error(reterr, r == -ETIMEDOUT ? -ENODEV : r, "%s: mdev %s did not appear after create", pname, uuid);
        return 0;
}

int gpuh_mdev_remove(struct gpuh_change *c, const char *uuid, char **reterr)
{
        char rel[128];
        int r;

        if (!gpuh_uuid_is_valid(uuid))
                return gpuh_error(reterr, -EINVAL, "invalid mdev UUID");
        snprintf(rel, sizeof(rel), "bus/mdev/devices/%s", uuid);
        r = gpuh_sysfs_exists(c->root_fd, rel);
        if (r == 0)
                return 0;       /* gone already */
        snprintf(rel, sizeof(rel), "bus/mdev/devices/%s/remove", uuid);
        r = gpuh_change_write(c, c->root_fd, rel, "1");
        if (r == -ENOENT || r == -ENODEV)
                return 0;       /* went meanwhile */
        if (r < 0)
                return gpuh_error(reterr, r, "removing mdev %s: %s", uuid,
                                  r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
        snprintf(rel, sizeof(rel), "bus/mdev/devices/%s", uuid);
        r = gpuh_change_wait_exists(c, c->root_fd, rel, false);
        if (r < 0)
                return gpuh_error(reterr, r, "mdev %s still exists after remove", uuid);
        return 0;
}

int gpuh_mdev_remove_busy(struct gpuh_change *c, const char *uuid, int grace_ms, char **reterr)
{
        int64_t deadline = gpuh_mono_ms() + (grace_ms > 0 ? grace_ms : 0);
        int pause = 2;

        for (;;) {
                _cleanup_free_ char *err = NULL;
                int64_t left;
                int r = gpuh_mdev_remove(c, uuid, &err);

                left = deadline - gpuh_mono_ms();
                if (r != -EBUSY || left <= 0) {
                        if (r < 0 && reterr)
                                *reterr = TAKE_PTR(err);
                        return r;
                }
                gpuh_debug("mdev %s: busy, trying again in %d ms", uuid, pause);
                poll(NULL, 0, (int) (left < pause ? left : pause));
                pause = pause < 256 ? pause * 2 : 256;
        }
}
