/* SPDX-License-Identifier: Apache-2.0 */
/* journal.c: JSON Lines journals (json-c), appended with fsync, replaced atomically. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>

#include "domname.h"
#include "journal.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "statefile.h"
#include "strtable.h"
#include "sysfs.h"

#define JOURNAL_MAX_BYTES (4u << 20)

static const char *const jop_table[_GPUH_JOP_MAX] = {
        [GPUH_JOP_DRIVER] = "driver",
        [GPUH_JOP_MDEV] = "mdev",
        [GPUH_JOP_VGPU] = "vgpu-type",
        [GPUH_JOP_SRIOV] = "sriov",
        [GPUH_JOP_GI] = "gpu-instance",
        [GPUH_JOP_MIG] = "mig-mode",
};

GPUH_DEFINE_STRING_TABLE_LOOKUP(gpuh_jop, enum gpuh_jop, jop_table, NULL)

char *gpuh_jentry_key(const struct gpuh_jentry *e, char *buf, size_t size)
{
        char a[GPUH_PCI_ADDR_MAX];

        if (e->op == GPUH_JOP_MDEV)
                snprintf(buf, size, "mdev-%s", e->uuid);
        else if (e->op == GPUH_JOP_GI)
                snprintf(buf, size, "gi-%s-%u", gpuh_pci_addr_format(&e->dev, a), e->gi_start);
        else if (e->op == GPUH_JOP_MIG)
                snprintf(buf, size, "mig-%s", gpuh_pci_addr_format(&e->dev, a));
        else
                snprintf(buf, size, "pci-%s", gpuh_pci_addr_format(&e->dev, a));
        return buf;
}

bool gpuh_jop_gpu_wide(enum gpuh_jop op)
{
        return op == GPUH_JOP_SRIOV || op == GPUH_JOP_MIG;
}

bool gpuh_jkey_claims(const char *key)
{
        return !startswith(key, "mig-");
}

json_object *gpuh_jentry_json(const struct gpuh_jentry *e)
{
        json_object *o = json_object_new_object();
        char a[GPUH_PCI_ADDR_MAX];

        if (!o)
                return NULL;
        json_object_object_add(o, "op", json_object_new_string(gpuh_jop_to_string(e->op)));
        gpuh_pci_addr_format(&e->dev, a);
        switch (e->op) {
        case GPUH_JOP_DRIVER:
                json_object_object_add(o, "device", json_object_new_string(a));
                json_object_object_add(o, "driver", json_object_new_string(e->driver));
                json_object_object_add(o, "override", json_object_new_string(e->override));
                json_object_object_add(o, "to", json_object_new_string(e->to));
                break;
        case GPUH_JOP_MDEV:
                json_object_object_add(o, "uuid", json_object_new_string(e->uuid));
                json_object_object_add(o, "parent", json_object_new_string(a));
                json_object_object_add(o, "type", json_object_new_string(e->mdev_type));
                break;
        case GPUH_JOP_GI:
                json_object_object_add(o, "device", json_object_new_string(a));
                json_object_object_add(o, "profile", json_object_new_int64(e->gi_profile));
                json_object_object_add(o, "start", json_object_new_int64(e->gi_start));
                json_object_object_add(o, "size", json_object_new_int64(e->gi_size));
                break;
        case GPUH_JOP_VGPU:
        case GPUH_JOP_SRIOV:
        case GPUH_JOP_MIG:
                json_object_object_add(o, "device", json_object_new_string(a));
                json_object_object_add(o, "old", json_object_new_int64(e->old));
                json_object_object_add(o, "to", json_object_new_int64(e->to_n));
                if (e->op == GPUH_JOP_MIG)
                        json_object_object_add(o, "vfs", json_object_new_int64(e->mig_vfs));
                break;
        default:
                break;
        }
        return o;
}

static const char *jstr(json_object *o, const char *key)
{
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v) : NULL;
}

static bool juint(json_object *o, const char *key, unsigned *ret)
{
        json_object *v;
        int64_t x;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return false;
        x = json_object_get_int64(v);
        if (x < 0 || x > 0xffffffffLL)
                return false;
        *ret = (unsigned) x;
        return true;
}

/* A driver name as sysfs spells it: it goes back into driver_override. */
static bool copy_name(char *dst, size_t size, const char *s)
{
        if (!s || strlen(s) >= size || strpbrk(s, "/\n"))
                return false;
        snprintf(dst, size, "%s", s);
        return true;
}

static int parse_entry(json_object *o, struct gpuh_jentry *e)
{
        const char *dev;
        int k = gpuh_jop_from_string(jstr(o, "op"));

        *e = (struct gpuh_jentry) { 0 };
        if (k < 0 || !juint(o, "seq", &e->seq))
                return -EBADMSG;
        e->op = (enum gpuh_jop) k;
        dev = jstr(o, e->op == GPUH_JOP_MDEV ? "parent" : "device");
        if (!dev || gpuh_pci_addr_parse(dev, &e->dev) < 0)
                return -EBADMSG;
        switch (e->op) {
        case GPUH_JOP_DRIVER:
                if (!copy_name(e->driver, sizeof(e->driver), jstr(o, "driver")) ||
                    !copy_name(e->override, sizeof(e->override), jstr(o, "override")) ||
                    !copy_name(e->to, sizeof(e->to), jstr(o, "to")) || !e->to[0])
                        return -EBADMSG;
                break;
        case GPUH_JOP_MDEV: {
                const char *u = jstr(o, "uuid"), *t = jstr(o, "type");
                if (gpuh_uuid_normalize(u, e->uuid) < 0 || !gpuh_mdev_type_name_ok(t))
                        return -EBADMSG;
                snprintf(e->mdev_type, sizeof(e->mdev_type), "%s", t);
                break;
        }
        case GPUH_JOP_GI:
                if (!juint(o, "profile", &e->gi_profile) || !juint(o, "start", &e->gi_start) ||
                    !juint(o, "size", &e->gi_size) || e->gi_size == 0)
                        return -EBADMSG;
                break;
        case GPUH_JOP_MIG:
                if (!juint(o, "old", &e->old) || !juint(o, "to", &e->to_n) || e->old > 1 || e->to_n > 1 ||
                    !juint(o, "vfs", &e->mig_vfs) || e->mig_vfs > 0xffff)
                        return -EBADMSG;
                break;
        default:
                if (!juint(o, "old", &e->old) || !juint(o, "to", &e->to_n))
                        return -EBADMSG;
                break;
        }
        return 0;
}

struct gpuh_journal *gpuh_journal_free(struct gpuh_journal *j)
{
        if (!j)
                return NULL;
        free(j->domain);
        free(j->uuid);
        free(j->e);
        free(j);
        return NULL;
}

int gpuh_journal_new(const char *domain, const char *uuid, struct gpuh_journal **ret)
{
        struct gpuh_journal *j;

        if (!gpuh_domname_ok(domain))
                return -EINVAL;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->domain = strdup(domain);
        j->uuid = uuid ? strdup(uuid) : NULL;
        j->created = (int64_t) time(NULL);
        if (!j->domain || (uuid && !j->uuid)) {
                gpuh_journal_free(j);
                return -ENOMEM;
        }
        *ret = j;
        return 0;
}

/* "STEM.journal" of @domain; -EINVAL for a name libvirt would not accept. */
static int journal_file(const char *domain, char buf[static GPUH_DOMNAME_ENC_SIZE + 8])
{
        int r = gpuh_domname_encode(domain, buf);

        if (r < 0)
                return r;
        strcat(buf, ".journal");
        return 0;
}

static json_object *parse_line(const char *s, size_t len)
{
        json_tokener *tok = json_tokener_new();
        json_object *o;
        size_t end;

        if (!tok)
                return NULL;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, s, (int) len);
        end = json_tokener_get_parse_end(tok);
        if (o && (json_tokener_get_error(tok) != json_tokener_success || end != len ||
                  !json_object_is_type(o, json_type_object))) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}

int gpuh_journal_load(int dirfd, const char *domain, struct gpuh_journal **ret)
{
        _cleanup_free_ char *text = NULL;
        char name[GPUH_DOMNAME_ENC_SIZE + 8];
        struct gpuh_journal *j = NULL;
        size_t len, pos = 0;
        int r;

        if (journal_file(domain, name) < 0)
                return -EINVAL;
        if (dirfd < 0)
                return -ENOENT;         /* no journal directory: nothing journaled */
        r = gpuh_statefile_read(dirfd, name, JOURNAL_MAX_BYTES, &text, &len);
        if (r < 0)
                return r;
        while (pos < len) {
                char *nl = memchr(text + pos, '\n', len - pos);
                size_t ll;
                json_object *o;

                if (!nl) {
                        if (j)
                                j->torn = true;         /* the line being appended when it stopped */
                        break;
                }
                ll = (size_t) (nl - (text + pos));
                o = parse_line(text + pos, ll);
                if (!o) {
                        gpuh_journal_free(j);
                        return -EBADMSG;
                }
                if (!j) {
                        const char *dom = jstr(o, "domain"), *uuid = jstr(o, "uuid");
                        json_object *v;
                        unsigned ver = 0;

                        if (!juint(o, "journal", &ver) || ver != 1 || !dom || !streq(dom, domain)) {
                                json_object_put(o);
                                return -EBADMSG;
                        }
                        r = gpuh_journal_new(domain, uuid, &j);
                        if (r < 0) {
                                json_object_put(o);
                                return r;
                        }
                        if (json_object_object_get_ex(o, "created", &v))
                                j->created = json_object_get_int64(v);
                } else {
                        struct gpuh_jentry *ne = reallocarray(j->e, j->n + 1, sizeof(*ne));
                        if (!ne) {
                                json_object_put(o);
                                gpuh_journal_free(j);
                                return -ENOMEM;
                        }
                        j->e = ne;
                        r = parse_entry(o, &j->e[j->n]);
                        if (r < 0) {
                                json_object_put(o);
                                gpuh_journal_free(j);
                                return r;
                        }
                        j->n++;
                }
                json_object_put(o);
                pos += ll + 1;
        }
        if (!j) {
                /* not one whole line: its writer died before the first fsync, so before the
                 * first change */
                r = gpuh_journal_new(domain, NULL, &j);
                if (r < 0)
                        return r;
                j->torn = len > 0;
        }
        j->on_disk = true;
        *ret = j;
        return 0;
}

/* The domain a journal file's header names; -ENODATA when it has not one whole line. */
static int header_domain(int dirfd, const char *fname, char **ret)
{
        _cleanup_free_ char *text = NULL;
        const char *dom;
        json_object *o;
        char *nl;
        size_t len;
        int r;

        r = gpuh_statefile_read(dirfd, fname, JOURNAL_MAX_BYTES, &text, &len);
        if (r < 0)
                return r;
        nl = memchr(text, '\n', len);
        if (!nl)
                return -ENODATA;
        o = parse_line(text, (size_t) (nl - text));
        dom = o ? jstr(o, "domain") : NULL;
        *ret = dom ? strdup(dom) : NULL;
        r = !dom ? -EBADMSG : *ret ? 0 : -ENOMEM;
        json_object_put(o);
        return r;
}

/* The domain journal file @fname belongs to: its decoded name, or for a hashed one the name its
 * header holds when that encodes to it. -EINVAL: not a journal file gpuhooks writes. */
static int file_domain(int dirfd, const char *fname, char **ret)
{
        char stem[GPUH_DOMNAME_ENC_SIZE], again[GPUH_DOMNAME_ENC_SIZE];
        size_t l = strlen(fname);
        int r;

        *ret = NULL;
        if (l <= 8 || l - 8 > GPUH_DOMNAME_ENC_MAX || !streq(fname + l - 8, ".journal"))
                return -EINVAL;
        memcpy(stem, fname, l - 8);
        stem[l - 8] = '\0';
        r = gpuh_domname_decode(stem, ret);
        if (r != -ENAMETOOLONG)
                return r;
        r = header_domain(dirfd, fname, ret);
        if (r == -EBADMSG || (r == 0 && (gpuh_domname_encode(*ret, again) < 0 || !streq(again, stem)))) {
                free(*ret);
                *ret = NULL;
                return -EINVAL;
        }
        return r;
}

int gpuh_journal_list(int dirfd, char ***ret, struct gpuh_warnings *w)
{
        _cleanup_strv_free_ char **names = NULL;
        char **out;
        size_t n = 0;
        int k;

        *ret = NULL;
        if (dirfd < 0)
                return 0;
        k = gpuh_sysfs_list(dirfd, ".", &names);
        if (k < 0)
                return k;
        out = calloc((size_t) k + 1, sizeof(char *));
        if (!out)
                return -ENOMEM;
        for (char **p = names; *p; p++) {
                if (gpuh_statefile_is_temp(*p, ".journal"))
                        continue;       /* a save in progress, or one a crash cut short: never a journal */
                k = file_domain(dirfd, *p, &out[n]);
                if (k == 0) {
                        n++;
                        continue;
                }
                if (k == -ENOMEM) {
                        strv_free(out);
                        return k;
                }
                if (k == -ENODATA)
                        gpuh_log(LOG_INFO, "journal '%s' holds no whole line: its writer stopped before its first "
                                 "change; its domain's release removes it", *p);
                else if (k != -ENOENT)  /* gone meanwhile: released */
                        gpuh_warn(w, "journal directory entry '%s' is no journal gpuhooks writes (%s)", *p,
                                  k == -EINVAL ? "its name does not decode to a domain name" : strerror(-k));
        }
        *ret = out;
        return (int) n;
}

static int header_line(const struct gpuh_journal *j, char **ret)
{
        json_object *o = json_object_new_object();
        const char *s;
        int r = -ENOMEM;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "journal", json_object_new_int(1));
        json_object_object_add(o, "domain", json_object_new_string(j->domain));
        json_object_object_add(o, "uuid", j->uuid ? json_object_new_string(j->uuid) : NULL);
        json_object_object_add(o, "created", json_object_new_int64(j->created));
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (s && asprintf(ret, "%s\n", s) >= 0)
                r = 0;
        json_object_put(o);
        return r;
}

static int entry_line(const struct gpuh_jentry *e, char **ret)
{
        json_object *o = gpuh_jentry_json(e), *x = json_object_new_object();
        const char *s;
        int r = -ENOMEM;

        if (!o || !x) {
                json_object_put(o);
                json_object_put(x);
                return -ENOMEM;
        }
        /* "seq" first, then the entry's own fields */
        json_object_object_add(x, "seq", json_object_new_int64(e->seq));
        json_object_object_foreach(o, k, v)
                json_object_object_add(x, k, json_object_get(v));
        s = json_object_to_json_string_ext(x, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (s && asprintf(ret, "%s\n", s) >= 0)
                r = 0;
        json_object_put(o);
        json_object_put(x);
        return r;
}

int gpuh_journal_save(int dirfd, struct gpuh_journal *j)
{
        _cleanup_free_ char *text = NULL;
        char name[GPUH_DOMNAME_ENC_SIZE + 8];
        size_t len = 0;
        int r;

        if (journal_file(j->domain, name) < 0)
                return -EINVAL;
        if (dirfd < 0)
                return -EBADF;
        if (j->n == 0) {
                j->torn = false;
                j->on_disk = false;
                return gpuh_journal_remove(dirfd, j->domain);
        }
        r = header_line(j, &text);
        if (r < 0)
                return r;
        len = strlen(text);
        for (size_t i = 0; i < j->n; i++) {
                _cleanup_free_ char *line = NULL;
                char *nt;
                size_t ll;

                r = entry_line(&j->e[i], &line);
                if (r < 0)
                        return r;
                ll = strlen(line);
                nt = realloc(text, len + ll + 1);
                if (!nt)
                        return -ENOMEM;
                text = nt;
                memcpy(text + len, line, ll + 1);
                len += ll;
        }
        if (len > JOURNAL_MAX_BYTES)
                return -E2BIG;
        r = gpuh_statefile_replace(dirfd, name, text, len);
        if (r == 0) {
                j->torn = false;
                j->on_disk = true;
        }
        return r;
}

int gpuh_journal_append(int dirfd, struct gpuh_journal *j, struct gpuh_jentry *e)
{
        _cleanup_free_ char *line = NULL, *head = NULL;
        _cleanup_close_ int fd = -EBADF;
        char name[GPUH_DOMNAME_ENC_SIZE + 8];
        struct gpuh_jentry *ne;
        bool created = false;
        int r;

        if (journal_file(j->domain, name) < 0)
                return -EINVAL;
        if (dirfd < 0)
                return -EBADF;
        e->seq = j->n ? j->e[j->n - 1].seq + 1 : 1;
        ne = reallocarray(j->e, j->n + 1, sizeof(*ne));
        if (!ne)
                return -ENOMEM;
        j->e = ne;
        if (j->torn) {
                /* a partial line would swallow this one: rewrite without it first */
                r = gpuh_journal_save(dirfd, j);
                if (r < 0)
                        return r;
        }
        r = entry_line(e, &line);
        if (r < 0)
                return r;
        if (j->on_disk)
                fd = openat(dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0 && (!j->on_disk || errno == ENOENT)) {
                /* never into a file this journal was not read from */
                fd = openat(dirfd, name, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
                created = fd >= 0;
        }
        if (fd < 0)
                return -errno;
        if (created) {
                r = header_line(j, &head);
                if (r == 0)
                        r = gpuh_write_all(fd, head, strlen(head));
                if (r < 0) {
                        unlinkat(dirfd, name, 0);
                        return r;
                }
                j->on_disk = true;
        }
        {
                /* one size limit on write and read: never grow a journal past what is read back */
                struct stat st;
                if (fstat(fd, &st) < 0)
                        return -errno;
                if ((uint64_t) st.st_size + strlen(line) > JOURNAL_MAX_BYTES)
                        return -E2BIG;
        }
        r = gpuh_write_all(fd, line, strlen(line));
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && created && fsync(dirfd) < 0)
                r = -errno;
        if (r < 0)
                return r;
        j->e[j->n++] = *e;
        return 0;
}

int gpuh_journal_remove(int dirfd, const char *domain)
{
        _cleanup_free_ char *owner = NULL;
        char name[GPUH_DOMNAME_ENC_SIZE + 8];

        if (journal_file(domain, name) < 0)
                return -EINVAL;
        if (dirfd < 0)
                return 0;
        if (header_domain(dirfd, name, &owner) == 0 && !streq(owner, domain))
                return 0;               /* another long name's, meeting ours in its file name */
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

void gpuh_journal_drop(struct gpuh_journal *j, size_t i)
{
        if (i >= j->n)
                return;
        memmove(&j->e[i], &j->e[i + 1], (j->n - i - 1) * sizeof(*j->e));
        j->n--;
}

ssize_t gpuh_journal_find(const struct gpuh_journal *j, const char *key, int op)
{
        char k[96];

        for (size_t i = 0; i < j->n; i++)
                if ((op < 0 || (int) j->e[i].op == op) && streq(gpuh_jentry_key(&j->e[i], k, sizeof(k)), key))
                        return (ssize_t) i;
        return -1;
}
