/* SPDX-License-Identifier: Apache-2.0 */
/* change.c: writes with deadlines, bounded read-backs, and the dry run's list of steps. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>

#include <json-c/json.h>

#include "change.h"
#include "clock.h"
#include "log.h"
#include "sysfs.h"

int gpuh_change_init(struct gpuh_change *c, int root_fd, int timeout_ms, bool dry_run)
{
        *c = (struct gpuh_change) { .root_fd = root_fd, .timeout_ms = timeout_ms > 0 ? timeout_ms : 1,
                                    .dry_run = dry_run, .bus_fd = -1, .devices_fd = -1 };
        if (dry_run && !(c->steps = json_object_new_array()))
                return -ENOMEM;
        return 0;
}

void gpuh_change_forget(struct gpuh_change *c)
{
        for (size_t i = 0; i < c->n_dirs; i++)
                close(c->dirs[i].fd);
        free(c->dirs);
        c->dirs = NULL;
        c->n_dirs = 0;
}

int gpuh_change_devfd(struct gpuh_change *c, const struct gpuh_pci_addr *a)
{
        char rel[64], name[GPUH_PCI_ADDR_MAX];
        struct gpuh_change_dir *nd;
        int fd;

        for (size_t i = 0; i < c->n_dirs; i++)
                if (gpuh_pci_addr_cmp(&c->dirs[i].addr, a) == 0)
                        return c->dirs[i].fd;
        if (c->devices_fd < 0 && (c->devices_fd = gpuh_sysfs_open_dir(c->root_fd, "bus/pci/devices")) < 0) {
                int r = c->devices_fd;
                c->devices_fd = -1;
                return r;
        }
        snprintf(rel, sizeof(rel), "%s", gpuh_pci_addr_format(a, name));
        fd = gpuh_sysfs_open_dir(c->devices_fd, rel);
        if (fd < 0)
                return fd == -ENOTDIR ? -ENOENT : fd;
        nd = reallocarray(c->dirs, c->n_dirs + 1, sizeof(*nd));
        if (!nd) {
                close(fd);
                return -ENOMEM;
        }
        c->dirs = nd;
        c->dirs[c->n_dirs++] = (struct gpuh_change_dir) { .addr = *a, .fd = fd };
        return fd;
}

int gpuh_change_busfd(struct gpuh_change *c)
{
        if (c->bus_fd < 0)
                c->bus_fd = gpuh_sysfs_open_dir(c->root_fd, "bus/pci");
        return c->bus_fd;
}

char *gpuh_change_path(const struct gpuh_change *c, int dirfd, const char *rel, char *buf, size_t size)
{
        char name[GPUH_PCI_ADDR_MAX];

        if (dirfd == c->bus_fd && dirfd >= 0) {
                snprintf(buf, size, "bus/pci/%s", rel);
                return buf;
        }
        for (size_t i = 0; i < c->n_dirs; i++)
                if (c->dirs[i].fd == dirfd) {
                        snprintf(buf, size, "bus/pci/devices/%s/%s", gpuh_pci_addr_format(&c->dirs[i].addr, name), rel);
                        return buf;
                }
        snprintf(buf, size, "%s", rel);
        return buf;
}

void gpuh_change_done(struct gpuh_change *c)
{
        gpuh_change_forget(c);
        if (c->bus_fd >= 0)
                close(c->bus_fd);
        if (c->devices_fd >= 0)
                close(c->devices_fd);
        c->bus_fd = c->devices_fd = -1;
        c->writer = gpuh_writer_free(c->writer);
        if (c->steps)
                json_object_put(c->steps);
        c->steps = NULL;
}

void gpuh_change_step(struct gpuh_change *c, json_object *step)
{
        if (!step)
                return;
        if (c->dry_run && c->steps)
                json_object_array_add(c->steps, step);
        else
                json_object_put(step);
}

static json_object *step_new(const struct gpuh_change *c, const char *kind, int dirfd, const char *rel)
{
        json_object *o = json_object_new_object();
        char path[PATH_MAX];

        if (o) {
                json_object_object_add(o, "step", json_object_new_string(kind));
                json_object_object_add(o, "path", json_object_new_string(gpuh_change_path(c, dirfd, rel, path,
                                                                                          sizeof(path))));
        }
        return o;
}

/* The device a write went to, as a journal key; "" when it cannot be told. */
static void write_key(const struct gpuh_change *c, int dirfd, const char *rel, const char *value, char *key,
                      size_t size)
{
        char name[GPUH_PCI_ADDR_MAX], part[64];
        struct gpuh_pci_addr a;
        const char *p;
        size_t l;

        key[0] = '\0';
        snprintf(part, sizeof(part), "%s", value);
        part[strcspn(part, "\n")] = '\0';
        /* mdev_supported_types/T/create takes the new mdev's UUID: the journal keys it so */
        if (strstr(rel, "mdev_supported_types/") && (p = strrchr(rel, '/')) && streq(p, "/create")) {
                snprintf(key, size, "mdev-%s", part);
                return;
        }
        for (size_t i = 0; i < c->n_dirs; i++)
                if (c->dirs[i].fd == dirfd) {
                        snprintf(key, size, "pci-%s", gpuh_pci_addr_format(&c->dirs[i].addr, name));
                        return;
                }
        /* bus/pci: drivers/D/unbind, drivers/D/bind, drivers_probe take the function's name */
        if (dirfd == c->bus_fd && gpuh_pci_addr_parse(part, &a) == 0) {
                snprintf(key, size, "pci-%s", gpuh_pci_addr_format(&a, name));
                return;
        }
        if (dirfd != c->root_fd)
                return;
        if ((p = startswith(rel, "bus/pci/devices/"))) {
                l = strcspn(p, "/");
                if (l < sizeof(part)) {
                        memcpy(part, p, l);
                        part[l] = '\0';
                        if (gpuh_pci_addr_parse(part, &a) == 0)
                                snprintf(key, size, "pci-%s", gpuh_pci_addr_format(&a, name));
                }
        } else if ((p = startswith(rel, "bus/mdev/devices/"))) {
                l = strcspn(p, "/");
                snprintf(key, size, "mdev-%.*s", (int) (l < 40 ? l : 40), p);
        }
}

static void note_late(struct gpuh_change *c, int dirfd, const char *rel, const char *value)
{
        char key[96];

        write_key(c, dirfd, rel, value, key, sizeof(key));
        if (!key[0] || c->n_late == ARRAY_SIZE(c->late)) {
                c->late_unknown = true;
                return;
        }
        if (!gpuh_change_late(c, key))
                snprintf(c->late[c->n_late++], sizeof(c->late[0]), "%s", key);
}

bool gpuh_change_late(const struct gpuh_change *c, const char *key)
{
        if (c->late_unknown)
                return true;
        for (size_t i = 0; i < c->n_late; i++)
                if (streq(c->late[i], key))
                        return true;
        return false;
}

int gpuh_change_settle(struct gpuh_change *c, int timeout_ms)
{
        int r;

        if (c->n_late == 0 && !c->late_unknown)
                return 0;
        r = gpuh_writer_settle(c->writer, timeout_ms);
        if (r == 0) {
                c->n_late = 0;
                c->late_unknown = false;
        }
        return r;
}

int gpuh_change_write(struct gpuh_change *c, int dirfd, const char *rel, const char *value)
{
        char path[PATH_MAX];
        int r;

        if (c->dry_run) {
                json_object *o = step_new(c, "write", dirfd, rel);
                if (!o)
                        return -ENOMEM;
                json_object_object_add(o, "value", json_object_new_string(value));
                json_object_object_add(o, "deadline_ms", json_object_new_int(c->timeout_ms));
                gpuh_change_step(c, o);
                return 0;
        }
        if (!c->writer && (r = gpuh_writer_new(c->root_fd, &c->writer)) < 0)
                return r;
        r = gpuh_writer_write_at(c->writer, dirfd, rel, value, c->timeout_ms);
        if (r == -ETIMEDOUT)
                note_late(c, dirfd, rel, value);
        gpuh_debug("write %s <- '%s': %s", gpuh_change_path(c, dirfd, rel, path, sizeof(path)), value,
                   r < 0 ? strerror(-r) : "ok");
        return r;
}

static int dry_wait(struct gpuh_change *c, int dirfd, const char *rel, json_object *want)
{
        json_object *o = step_new(c, "wait", dirfd, rel);

        if (!o) {
                json_object_put(want);
                return -ENOMEM;
        }
        json_object_object_add(o, "for", want);
        json_object_object_add(o, "deadline_ms", json_object_new_int(c->timeout_ms));
        gpuh_change_step(c, o);
        return 0;
}

/* Poll @check until it answers 1 (done) or < 0, or the deadline passes. */
#define WAIT_LOOP(c, check)                                             \
        do {                                                            \
                int64_t _deadline = gpuh_mono_ms() + (c)->timeout_ms;   \
                int _pause = 1;                                         \
                for (;;) {                                              \
                        int _k = (check);                               \
                        if (_k != 0)                                    \
                                return _k < 0 ? _k : 0;                 \
                        if (gpuh_mono_ms() >= _deadline)                \
                                return -ETIMEDOUT;                      \
                        poll(NULL, 0, _pause);                          \
                        _pause = _pause < 64 ? _pause * 2 : 64;         \
                }                                                       \
        } while (0)

static int link_is(int dirfd, const char *rel, const char *want, char *got, size_t size)
{
        int r = gpuh_sysfs_link_basename(dirfd, rel, got, size);

        if (r == -ENOENT) {
                got[0] = '\0';
                r = 0;
        }
        if (r < 0)
                return r;
        return streq(got, want) ? 1 : 0;
}

int gpuh_change_wait_link(struct gpuh_change *c, int dirfd, const char *rel, const char *want, char *got,
                          size_t size)
{
        if (c->dry_run) {
                snprintf(got, size, "%s", want);
                return dry_wait(c, dirfd, rel, want[0] ? json_object_new_string(want) : NULL);
        }
        WAIT_LOOP(c, link_is(dirfd, rel, want, got, size));
}

static int exists_is(int dirfd, const char *rel, bool want)
{
        int r = gpuh_sysfs_exists(dirfd, rel);

        return r < 0 ? r : (r == 1) == want;
}

int gpuh_change_wait_exists(struct gpuh_change *c, int dirfd, const char *rel, bool want)
{
        if (c->dry_run)
                return dry_wait(c, dirfd, rel, json_object_new_string(want ? "exists" : "gone"));
        WAIT_LOOP(c, exists_is(dirfd, rel, want));
}

static int u64_is(int dirfd, const char *rel, uint64_t want, uint64_t *got)
{
        int r = gpuh_sysfs_read_u64(dirfd, rel, got);

        return r < 0 ? r : *got == want;
}

int gpuh_change_wait_u64(struct gpuh_change *c, int dirfd, const char *rel, uint64_t want, uint64_t *got)
{
        if (c->dry_run) {
                *got = want;
                return dry_wait(c, dirfd, rel, json_object_new_int64((int64_t) want));
        }
        WAIT_LOOP(c, u64_is(dirfd, rel, want, got));
}

int gpuh_change_nvml(struct gpuh_change *c, const char *lib, const struct gpuh_pci_addr *gpu, enum gpuh_nvml_op op,
                     unsigned arg0, unsigned arg1, unsigned arg2, unsigned *ret, char **reterr)
{
        const char *op_name = gpuh_nvml_op_to_string(op);
        char name[GPUH_PCI_ADDR_MAX];
        json_object *o, *args;

        if (ret)
                *ret = 0;
        if (!c->dry_run)
                return gpuh_nvml_change(lib, gpu, op, arg0, arg1, arg2, GPUH_NVML_TIMEOUT_MS, ret, reterr);
        o = json_object_new_object();
        args = json_object_new_array();
        if (!o || !args) {
                json_object_put(o);
                json_object_put(args);
                return 0;       /* a dry run's listing is best effort, as step_new()'s */
        }
        json_object_object_add(o, "step", json_object_new_string("nvml"));
        json_object_object_add(o, "op", json_object_new_string(op_name ? op_name : "?"));
        json_object_object_add(o, "device", json_object_new_string(gpuh_pci_addr_format(gpu, name)));
        json_object_array_add(args, json_object_new_int64(arg0));
        if (op == GPUH_NVML_CREATE_GI) {
                json_object_array_add(args, json_object_new_int64(arg1));
                json_object_array_add(args, json_object_new_int64(arg2));
        }
        json_object_object_add(o, "args", args);
        gpuh_change_step(c, o);
        return 0;
}
