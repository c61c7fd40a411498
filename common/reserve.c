/* SPDX-License-Identifier: Apache-2.0 */
/* reserve.c: the host lock and reservation files (JSON, json-c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "domxml.h"
#include "fileio.h"
#include "lock.h"
#include "macro.h"
#include "reserve.h"
#include "sysfs.h"

#define RESERVATION_MAX_BYTES (1u << 20)

struct gpuh_state {
        char *dir;
        char *resdir;
        int lock_fd;
        int subdir_fd[4];               /* journal, locks, reservations, quarantine */
};

static const char *const subdirs[] = { "journal", "locks", "reservations", "quarantine" };

static int mkdir_p1(const char *path)
{
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int gpuh_state_open(const char *dir, struct gpuh_state **ret)
{
        struct gpuh_state *s = calloc(1, sizeof(*s));
        _cleanup_free_ char *lock = NULL;
        int r;

        if (!s)
                return -ENOMEM;
        s->lock_fd = -EBADF;
        for (size_t i = 0; i < ARRAY_SIZE(s->subdir_fd); i++)
                s->subdir_fd[i] = -EBADF;
        s->dir = strdup(dir);
        if (!s->dir || asprintf(&s->resdir, "%s/reservations", dir) < 0 || asprintf(&lock, "%s/lock", dir) < 0) {
                gpuh_state_free(s);
                return -ENOMEM;
        }
        if ((r = mkdir_p1(s->dir)) < 0) {
                gpuh_state_free(s);
                return r;
        }
        s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->lock_fd < 0) {
                r = -errno;
                gpuh_state_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

struct gpuh_state *gpuh_state_free(struct gpuh_state *s)
{
        if (!s)
                return NULL;
        if (s->lock_fd >= 0)
                close(s->lock_fd);      /* releases the flock */
        for (size_t i = 0; i < ARRAY_SIZE(s->subdir_fd); i++)
                if (s->subdir_fd[i] >= 0)
                        close(s->subdir_fd[i]);
        free(s->dir);
        free(s->resdir);
        free(s);
        return NULL;
}

int gpuh_state_lock(struct gpuh_state *s, bool exclusive, int timeout_ms)
{
        return gpuh_flock_deadline(s->lock_fd, exclusive ? LOCK_EX : LOCK_SH, timeout_ms);
}

void gpuh_state_unlock(struct gpuh_state *s)
{
        (void) flock(s->lock_fd, LOCK_UN);
}

const char *gpuh_state_dir(const struct gpuh_state *s)
{
        return s->dir;
}

int gpuh_state_subdir(struct gpuh_state *s, const char *name)
{
        for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
                _cleanup_free_ char *path = NULL;
                int r;

                if (!streq(subdirs[i], name))
                        continue;
                if (s->subdir_fd[i] >= 0)
                        return s->subdir_fd[i];
                if (asprintf(&path, "%s/%s", s->dir, name) < 0)
                        return -ENOMEM;
                if ((r = mkdir_p1(path)) < 0)
                        return r;
                s->subdir_fd[i] = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                return s->subdir_fd[i] >= 0 ? s->subdir_fd[i] : -errno;
        }
        return -EINVAL;
}

void gpuh_reservation_clear(struct gpuh_reservation *r)
{
        free(r->domain);
        free(r->uuid);
        free(r->state);
        free(r->signature);
        free(r->devices);
        *r = (struct gpuh_reservation) { 0 };
}

void gpuh_reservations_free(struct gpuh_reservation *r, size_t n)
{
        for (size_t i = 0; r && i < n; i++)
                gpuh_reservation_clear(&r[i]);
        free(r);
}

bool gpuh_reservation_live(const struct gpuh_reservation *r, int64_t now)
{
        return (r->state && streq(r->state, "running")) || r->expires > now;
}

static const char *jstr(json_object *o, const char *key)
{
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v) : NULL;
}

static int parse_device(json_object *o, struct gpuh_alloc *a)
{
        const char *kind = jstr(o, "kind"), *addr = jstr(o, "address"), *parent = jstr(o, "parent"),
                   *uuid = jstr(o, "uuid"), *type = jstr(o, "mdev_type");
        json_object *v;
        int k;

        *a = (struct gpuh_alloc) { .request = GPUH_ALLOC_REQUEST_CLOUDSTACK };
        if ((k = gpuh_alloc_kind_from_string(kind)) < 0)
                return -EBADMSG;
        a->kind = (enum gpuh_alloc_kind) k;
        if ((addr && gpuh_pci_addr_parse(addr, &a->addr) < 0) || (parent && gpuh_pci_addr_parse(parent, &a->parent) < 0))
                return -EBADMSG;
        if (uuid) {
                if (!gpuh_uuid_is_valid(uuid))
                        return -EBADMSG;
                snprintf(a->uuid, sizeof(a->uuid), "%s", uuid);
        }
        if (type) {
                if (!gpuh_mdev_type_name_ok(type))
                        return -EBADMSG;
                snprintf(a->mdev_type, sizeof(a->mdev_type), "%s", type);
        }
        if (json_object_object_get_ex(o, "new", &v))
                a->mdev_new = json_object_get_boolean(v);
        if (json_object_object_get_ex(o, "vgpu_type", &v))
                a->vgpu_type = (unsigned) json_object_get_int64(v);
        if (json_object_object_get_ex(o, "request", &v) && json_object_is_type(v, json_type_int))
                a->request = json_object_get_int(v);
        if (json_object_object_get_ex(o, "display", &v))
                a->display = json_object_get_boolean(v);
        if (json_object_object_get_ex(o, "companions", &v) && json_object_is_type(v, json_type_array))
                for (size_t i = 0; i < json_object_array_length(v) && a->n_companions < GPUH_ALLOC_MAX_COMPANIONS; i++) {
                        json_object *c = json_object_array_get_idx(v, i);
                        if (!json_object_is_type(c, json_type_string) ||
                            gpuh_pci_addr_parse(json_object_get_string(c), &a->companions[a->n_companions]) < 0)
                                return -EBADMSG;
                        a->n_companions++;
                }
        return 0;
}

static int parse_reservation(const char *text, struct gpuh_reservation *r)
{
        json_object *o = json_tokener_parse(text), *v, *devs;
        int ret = -EBADMSG;

        *r = (struct gpuh_reservation) { 0 };
        if (!o || !json_object_is_type(o, json_type_object) || !jstr(o, "domain") || !jstr(o, "state") ||
            !json_object_object_get_ex(o, "devices", &devs) || !json_object_is_type(devs, json_type_array))
                goto out;
        r->domain = strdup(jstr(o, "domain"));
        r->state = strdup(jstr(o, "state"));
        r->uuid = jstr(o, "uuid") ? strdup(jstr(o, "uuid")) : NULL;
        r->signature = jstr(o, "signature") ? strdup(jstr(o, "signature")) : NULL;
        if (json_object_object_get_ex(o, "created", &v))
                r->created = json_object_get_int64(v);
        if (json_object_object_get_ex(o, "expires", &v))
                r->expires = json_object_get_int64(v);
        r->n_devices = json_object_array_length(devs);
        r->devices = calloc(r->n_devices + 1, sizeof(*r->devices));
        if (!r->domain || !r->state || !r->devices) {
                ret = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < r->n_devices; i++)
                if (parse_device(json_object_array_get_idx(devs, i), &r->devices[i]) < 0)
                        goto out;
        ret = 0;
out:
        if (o)
                json_object_put(o);
        if (ret < 0)
                gpuh_reservation_clear(r);
        return ret;
}

int gpuh_reservation_load(struct gpuh_state *s, const char *domain, struct gpuh_reservation *ret)
{
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len;
        int r;

        if (!gpuh_domxml_name_ok(domain))
                return -EINVAL;
        if (asprintf(&path, "%s/%s.json", s->resdir, domain) < 0)
                return -ENOMEM;
        r = gpuh_read_file_at(AT_FDCWD, path, RESERVATION_MAX_BYTES, &text, &len);
        if (r < 0)
                return r;
        return parse_reservation(text, ret);
}

bool gpuh_reservation_holds(const struct gpuh_reservation *r, const struct gpuh_alloc *a)
{
        for (size_t d = 0; d < r->n_devices; d++) {
                const struct gpuh_alloc *h = &r->devices[d];
                if (a->kind == GPUH_ALLOC_MDEV ? h->kind == GPUH_ALLOC_MDEV && streq(h->uuid, a->uuid)
                                               : gpuh_alloc_holds_pci(h, &a->addr))
                        return true;
        }
        return false;
}

int gpuh_reservations_load(struct gpuh_state *s, struct gpuh_reservation **ret, size_t *ret_n,
                           struct gpuh_warnings *w)
{
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_close_ int dfd = open(s->resdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct gpuh_reservation *res;
        size_t n = 0;
        int k;

        if (dfd < 0 && errno == ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;               /* none written yet */
        }
        if (dfd < 0)
                return -errno;
        k = gpuh_sysfs_list(dfd, ".", &names);
        if (k < 0)
                return k;
        res = calloc((size_t) k + 1, sizeof(*res));
        if (!res)
                return -ENOMEM;
        for (char **p = names; *p; p++) {
                _cleanup_free_ char *text = NULL;
                size_t len = strlen(*p), tlen;

                if ((*p)[0] == '.' || len < 6 || !streq(*p + len - 5, ".json"))
                        continue;
                k = gpuh_read_file_at(dfd, *p, RESERVATION_MAX_BYTES, &text, &tlen);
                if (k == 0)
                        k = parse_reservation(text, &res[n]);
                if (k == -ENOMEM) {
                        gpuh_reservations_free(res, n);
                        return k;
                }
                if (k < 0) {
                        /* what it held is unknown: nothing may be handed out (fail closed) */
                        gpuh_warn(w, "reservation '%s/%s' is unreadable", s->resdir, *p);
                        gpuh_reservations_free(res, n);
                        return -EBADMSG;
                }
                n++;
        }
        *ret = res;
        *ret_n = n;
        return 0;
}

static json_object *device_json(const struct gpuh_alloc *a)
{
        json_object *o = json_object_new_object(), *comp;
        char v[GPUH_PCI_ADDR_MAX];

        if (!o)
                return NULL;
        json_object_object_add(o, "kind", json_object_new_string(gpuh_alloc_kind_to_string(a->kind)));
        if (a->kind != GPUH_ALLOC_MDEV)
                json_object_object_add(o, "address", json_object_new_string(gpuh_pci_addr_format(&a->addr, v)));
        if (a->kind != GPUH_ALLOC_PCI)
                json_object_object_add(o, "parent", json_object_new_string(gpuh_pci_addr_format(&a->parent, v)));
        if (a->kind == GPUH_ALLOC_MDEV) {
                json_object_object_add(o, "uuid", json_object_new_string(a->uuid));
                json_object_object_add(o, "mdev_type", json_object_new_string(a->mdev_type));
                json_object_object_add(o, "new", json_object_new_boolean(a->mdev_new));
                json_object_object_add(o, "display", json_object_new_boolean(a->display));
        }
        if (a->kind == GPUH_ALLOC_VENDOR_VGPU)
                json_object_object_add(o, "vgpu_type", json_object_new_int64(a->vgpu_type));
        if (a->request != GPUH_ALLOC_REQUEST_CLOUDSTACK)
                json_object_object_add(o, "request", json_object_new_int(a->request));
        comp = json_object_new_array();
        for (size_t i = 0; comp && i < a->n_companions; i++)
                json_object_array_add(comp, json_object_new_string(gpuh_pci_addr_format(&a->companions[i], v)));
        json_object_object_add(o, "companions", comp);
        return o;
}

int gpuh_reservation_write(struct gpuh_state *s, const struct gpuh_reservation *r)
{
        _cleanup_free_ char *name = NULL;
        json_object *o = json_object_new_object(), *devs = json_object_new_array();
        const char *text;
        int ret;

        if (!gpuh_domxml_name_ok(r->domain)) {
                json_object_put(o);
                json_object_put(devs);
                return -EINVAL;
        }
        if (!o || !devs || asprintf(&name, "%s.json", r->domain) < 0) {
                json_object_put(o);
                json_object_put(devs);
                return -ENOMEM;
        }
        json_object_object_add(o, "version", json_object_new_int(1));
        json_object_object_add(o, "domain", json_object_new_string(r->domain));
        json_object_object_add(o, "uuid", r->uuid ? json_object_new_string(r->uuid) : NULL);
        json_object_object_add(o, "state", json_object_new_string(r->state));
        json_object_object_add(o, "created", json_object_new_int64(r->created));
        json_object_object_add(o, "expires", json_object_new_int64(r->expires));
        json_object_object_add(o, "signature", json_object_new_string(r->signature ? r->signature : ""));
        for (size_t i = 0; i < r->n_devices; i++)
                json_object_array_add(devs, device_json(&r->devices[i]));
        json_object_object_add(o, "devices", devs);
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        ret = text ? mkdir_p1(s->resdir) : -ENOMEM;
        if (ret == 0)
                ret = gpuh_write_file_atomic(s->resdir, name, text, strlen(text), 0600, true);
        json_object_put(o);
        return ret;
}

int gpuh_reservation_remove(struct gpuh_state *s, const char *domain)
{
        _cleanup_free_ char *path = NULL;

        if (!gpuh_domxml_name_ok(domain))
                return -EINVAL;
        if (asprintf(&path, "%s/%s.json", s->resdir, domain) < 0)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}
