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

#include "alloc_codec.h"
#include "domname.h"
#include "lock.h"
#include "log.h"
#include "macro.h"
#include "reserve.h"
#include "statefile.h"
#include "sysfs.h"

#define RESERVATION_MAX_BYTES (1u << 20)

struct gpuh_state {
        char *dir;
        bool write;
        int dir_fd;                     /* -EBADF: a reader's state directory that does not exist */
        int lock_fd;                    /* -EBADF: a reader's, without a lock file */
        int subdir_fd[4];               /* journal, locks, reservations, quarantine; -EBADF: none */
};

enum { SUB_JOURNAL, SUB_LOCKS, SUB_RESERVATIONS, SUB_QUARANTINE };
static const char *const subdirs[] = { "journal", "locks", "reservations", "quarantine" };

static int open_lock(struct gpuh_state *s, char **reterr)
{
        struct stat st;
        int r;

        /* O_NONBLOCK: a FIFO put there must not hang a reader's open */
        s->lock_fd = openat(s->dir_fd, "lock", s->write ? O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY
                                                        : O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
        if (s->lock_fd < 0 && errno == ENOENT && !s->write)
                return 0;               /* nobody wrote here yet */
        if (s->lock_fd < 0 || fstat(s->lock_fd, &st) < 0) {
                r = -errno;
                return gpuh_error(reterr, r, "cannot open the host lock '%s/lock': %s", s->dir, strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return gpuh_error(reterr, -EBADF, "host lock '%s/lock' is not a regular file", s->dir);
        return 0;
}

/* STATE_DIR/subdirs[@i], never through a link, checked as the state directory by a writer;
 * made when missing and @create (by a writer). */
static int open_subdir(struct gpuh_state *s, size_t i, bool create, char **reterr)
{
        _cleanup_free_ char *path = NULL;
        int fd;

        if (s->subdir_fd[i] >= 0)
                return s->subdir_fd[i];
        if (s->dir_fd < 0)
                return -ENOENT;
        if (asprintf(&path, "%s/%s", s->dir, subdirs[i]) < 0)
                return -ENOMEM;
        fd = gpuh_statedir_open(s->dir_fd, subdirs[i], path, GPUH_STATEDIR_NOFOLLOW |
                                (s->write ? GPUH_STATEDIR_CHECK : 0) | (s->write && create ? GPUH_STATEDIR_CREATE : 0),
                                reterr);
        if (fd >= 0)
                s->subdir_fd[i] = fd;
        return fd;
}

int gpuh_state_open(const char *dir, bool write, struct gpuh_state **ret, char **reterr)
{
        _cleanup_(gpuh_state_freep) struct gpuh_state *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->write = write;
        s->dir_fd = s->lock_fd = -EBADF;
        for (size_t i = 0; i < ARRAY_SIZE(s->subdir_fd); i++)
                s->subdir_fd[i] = -EBADF;
        s->dir = strdup(dir);
        if (!s->dir)
                return -ENOMEM;
        /* the state directory itself may be a link an administrator made; what is in it may not */
        s->dir_fd = gpuh_statedir_open(AT_FDCWD, dir, dir, write ? GPUH_STATEDIR_CREATE | GPUH_STATEDIR_CHECK : 0,
                                       reterr);
        if (s->dir_fd == -ENOENT && !write) {
                *ret = TAKE_PTR(s);
                return 0;               /* nothing reserved or journaled yet */
        }
        if (s->dir_fd < 0)
                return s->dir_fd;
        r = open_lock(s, reterr);
        if (r < 0)
                return r;
        /* those there now are checked now; a missing one is made when first needed
         * (gpuh_state_subdir()), in a directory nobody else may write */
        for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
                r = open_subdir(s, i, false, reterr);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

struct gpuh_state *gpuh_state_free(struct gpuh_state *s)
{
        if (!s)
                return NULL;
        if (s->lock_fd >= 0)
                close(s->lock_fd);      /* releases the flock */
        if (s->dir_fd >= 0)
                close(s->dir_fd);
        for (size_t i = 0; i < ARRAY_SIZE(s->subdir_fd); i++)
                if (s->subdir_fd[i] >= 0)
                        close(s->subdir_fd[i]);
        free(s->dir);
        free(s);
        return NULL;
}

int gpuh_state_lock(struct gpuh_state *s, bool exclusive, int timeout_ms)
{
        if (s->lock_fd < 0)
                return 0;
        return gpuh_flock_deadline(s->lock_fd, exclusive ? LOCK_EX : LOCK_SH, timeout_ms);
}

void gpuh_state_unlock(struct gpuh_state *s)
{
        if (s->lock_fd >= 0)
                (void) flock(s->lock_fd, LOCK_UN);
}

const char *gpuh_state_dir(const struct gpuh_state *s)
{
        return s->dir;
}

int gpuh_state_subdir(struct gpuh_state *s, const char *name)
{
        for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++)
                if (streq(subdirs[i], name))
                        return open_subdir(s, i, true, NULL);
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
                if (gpuh_alloc_from_json(json_object_array_get_idx(devs, i), &r->devices[i], NULL) < 0)
                        goto out;
        ret = 0;
out:
        if (o)
                json_object_put(o);
        if (ret < 0)
                gpuh_reservation_clear(r);
        return ret;
}

/* "STEM.json" of @domain; -EINVAL for a name libvirt would not accept. */
static int file_name(const char *domain, char buf[static GPUH_DOMNAME_ENC_SIZE + 5])
{
        int r = gpuh_domname_encode(domain, buf);

        if (r < 0)
                return r;
        strcat(buf, ".json");
        return 0;
}

/* Reads and parses reservations/@fname; -ENOENT when there is none (or no directory). */
static int read_reservation(struct gpuh_state *s, const char *fname, struct gpuh_reservation *ret)
{
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        /* as gpuh_reservations_load(): the directory may have been made since the state was opened */
        r = open_subdir(s, SUB_RESERVATIONS, false, NULL);
        if (r < 0)
                return r;
        r = gpuh_statefile_read(s->subdir_fd[SUB_RESERVATIONS], fname, RESERVATION_MAX_BYTES, &text, &len);
        if (r < 0)
                return r;
        return parse_reservation(text, ret);
}

int gpuh_reservation_load(struct gpuh_state *s, const char *domain, struct gpuh_reservation *ret)
{
        char fname[GPUH_DOMNAME_ENC_SIZE + 5];
        int r;

        if (file_name(domain, fname) < 0)
                return -EINVAL;
        r = read_reservation(s, fname, ret);
        if (r == 0 && !streq(ret->domain, domain)) {
                /* another long name with the same hashed file name: not ours */
                gpuh_reservation_clear(ret);
                return -EBADMSG;
        }
        return r;
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
        struct gpuh_reservation *res;
        size_t n = 0;
        int dfd, k;

        *ret = NULL;
        *ret_n = 0;
        /* Opened now, not only when the state was opened: reservations/ is made by the first
         * reservation written, and that may have happened between gpuh_state_open() and the
         * host lock (another transform's). A listing that trusted the missing directory seen
         * at open time would read "none" and hand out what that transform just reserved. */
        dfd = open_subdir(s, SUB_RESERVATIONS, false, NULL);
        if (dfd == -ENOENT)
                return 0;               /* none written yet */
        if (dfd < 0)
                return dfd;
        k = gpuh_sysfs_list(dfd, ".", &names);
        if (k < 0)
                return k;
        res = calloc((size_t) k + 1, sizeof(*res));
        if (!res)
                return -ENOMEM;
        for (char **p = names; *p; p++) {
                char stem[GPUH_DOMNAME_ENC_SIZE], again[GPUH_DOMNAME_ENC_SIZE];
                size_t len = strlen(*p);

                if (gpuh_statefile_is_temp(*p, ".json"))
                        continue;       /* a write in progress, or one a crash cut short: never a reservation */
                if (len <= 5 || len - 5 > GPUH_DOMNAME_ENC_MAX || !streq(*p + len - 5, ".json"))
                        goto foreign;
                memcpy(stem, *p, len - 5);
                stem[len - 5] = '\0';
                if (!gpuh_domname_is_stem(stem))
                        goto foreign;
                k = read_reservation(s, *p, &res[n]);
                if (k == -ENOMEM) {
                        gpuh_reservations_free(res, n);
                        return k;
                }
                if (k < 0) {
                        /* what it held is unknown: nothing may be handed out (fail closed) */
                        gpuh_warn(w, "reservation '%s/reservations/%s' is unreadable", s->dir, *p);
                        gpuh_reservations_free(res, n);
                        return -EBADMSG;
                }
                if (gpuh_domname_encode(res[n].domain, again) < 0 || !streq(again, stem)) {
                        gpuh_warn(w, "reservation '%s/reservations/%s' holds domain '%s', whose reservation file has "
                                  "another name", s->dir, *p, res[n].domain);
                        gpuh_reservations_free(res, n + 1);
                        return -EBADMSG;
                }
                n++;
                continue;
foreign:
                /* not written by gpuhooks (or by an older one): what it holds is unknown too */
                gpuh_warn(w, "'%s/reservations/%s' is no reservation gpuhooks writes (its name does not decode to a "
                          "domain name)", s->dir, *p);
                gpuh_reservations_free(res, n);
                return -EBADMSG;
        }
        *ret = res;
        *ret_n = n;
        return 0;
}

/* Does reservations/@fname hold another domain than @domain? (Only two long names whose
 * hashed file names meet can make it.) A malformed file is not another domain's: it is
 * replaced. */
static bool foreign_file(struct gpuh_state *s, const char *fname, const char *domain)
{
        struct gpuh_reservation other;
        bool foreign;

        if (read_reservation(s, fname, &other) < 0)
                return false;
        foreign = !streq(other.domain, domain);
        gpuh_reservation_clear(&other);
        return foreign;
}

int gpuh_reservation_write(struct gpuh_state *s, const struct gpuh_reservation *r)
{
        char fname[GPUH_DOMNAME_ENC_SIZE + 5];
        json_object *o, *devs;
        const char *text;
        int ret;

        if (file_name(r->domain, fname) < 0)
                return -EINVAL;
        if (!s->write)
                return -EROFS;
        ret = open_subdir(s, SUB_RESERVATIONS, true, NULL);
        if (ret < 0)
                return ret;
        if (foreign_file(s, fname, r->domain))
                return -EEXIST;
        o = json_object_new_object();
        devs = json_object_new_array();
        if (!o || !devs) {
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
        json_object_object_add(o, "devices", devs);
        for (size_t i = 0; i < r->n_devices; i++) {
                json_object *dev = NULL;
                if (gpuh_alloc_to_json(&r->devices[i], &dev) < 0 || json_object_array_add(devs, dev) < 0) {
                        json_object_put(dev);
                        json_object_put(o);
                        return -ENOMEM;
                }
        }
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        /* one size limit on write and read: a file the reader would refuse is never written */
        ret = !text ? -ENOMEM : strlen(text) > RESERVATION_MAX_BYTES ? -E2BIG
            : gpuh_statefile_replace(s->subdir_fd[SUB_RESERVATIONS], fname, text, strlen(text));
        json_object_put(o);
        return ret;
}

int gpuh_reservation_remove(struct gpuh_state *s, const char *domain)
{
        char fname[GPUH_DOMNAME_ENC_SIZE + 5];

        if (file_name(domain, fname) < 0)
                return -EINVAL;
        if (!s->write)
                return -EROFS;
        if (open_subdir(s, SUB_RESERVATIONS, false, NULL) < 0 || foreign_file(s, fname, domain))
                return 0;
        if (unlinkat(s->subdir_fd[SUB_RESERVATIONS], fname, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}
