/* SPDX-License-Identifier: Apache-2.0 */
/* pci_names.c: libpci name lookups that never exit the process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <json-c/json.h>
#include <pci/pci.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "pci_names.h"

struct gpuh_pci_names {
        struct pci_access *pacc;
        char *cache_dir;        /* NULL: no cache */
        json_object *cache;     /* "names" of the cache file: key -> name */
        bool cache_loaded;      /* cache read (or found unusable) */
        bool cache_dirty;       /* lookups added names */
        char *cache_key;
        char *sysfs_path;       /* owned: libpci keeps the pointer */
        char *ids_file;
        int flags;              /* extra PCI_LOOKUP_* bits */
        bool failed;            /* libpci reported an error: numeric names from now on */
        /* The last device looked up: a GPU's VFs all share one id, and libpci retries udev's
         * hwdb (several failing opens) on every lookup pci.ids cannot answer. */
        uint32_t memo_key;      /* vendor << 16 | device; valid when memo[0] */
        char memo[128];
};

#define GPUH_PCI_NAMES_CACHE_MAX (1u << 20)      /* bytes */
#define GPUH_PCI_NAMES_CACHE_ENTRIES 4096

static void json_putp(json_object **o)
{
        if (*o)
                json_object_put(*o);
}

/* libpci's error callback must not return (PCI_NONRET); we jump back to the lookup. */
static jmp_buf *pci_error_jmp;

static void _printf_(2, 0) libpci_log(int prio, const char *msg, va_list ap)
{
        char buf[256];

        vsnprintf(buf, sizeof(buf), msg, ap);
        gpuh_log(prio, "libpci: %s", buf);
}

static void _printf_(1, 2) __attribute__((noreturn)) pci_error_cb(char *msg, ...)
{
        va_list ap;

        va_start(ap, msg);
        libpci_log(LOG_WARNING, msg, ap);
        va_end(ap);
        if (pci_error_jmp)
                longjmp(*pci_error_jmp, 1);
        abort();        /* unreachable: every libpci call below sets the jump target */
}

static void _printf_(1, 2) pci_warning_cb(char *msg, ...)
{
        va_list ap;

        va_start(ap, msg);
        libpci_log(LOG_DEBUG, msg, ap);
        va_end(ap);
}

static void _printf_(1, 2) pci_debug_cb(char *msg, ...)
{
}

int gpuh_pci_names_new(const char *sysfs_root, const char *ids_file, const char *cache_dir,
                       struct gpuh_pci_names **ret)
{
        struct gpuh_pci_names *n = calloc(1, sizeof(*n));
        jmp_buf jb;

        if (!n)
                return -ENOMEM;
        if (asprintf(&n->sysfs_path, "%s/bus/pci", sysfs_root ? sysfs_root : "/sys") < 0) {
                free(n);
                return -ENOMEM;
        }
        if (ids_file && !(n->ids_file = strdup(ids_file)))
                return gpuh_pci_names_free(n), -ENOMEM;
        if (cache_dir && *cache_dir && !(n->cache_dir = strdup(cache_dir)))
                return gpuh_pci_names_free(n), -ENOMEM;
        n->pacc = pci_alloc();
        if (!n->pacc)
                return gpuh_pci_names_free(n), -ENOMEM;
        n->pacc->error = pci_error_cb;
        n->pacc->warning = pci_warning_cb;
        n->pacc->debug = pci_debug_cb;
        n->pacc->method = PCI_ACCESS_SYS_BUS_PCI;
        n->pacc->id_lookup_mode = 0;            /* no ~/.pciids-cache, no DNS */
        if (setjmp(jb) == 0) {
                pci_error_jmp = &jb;
                pci_set_param(n->pacc, "sysfs.path", n->sysfs_path);
                if (n->ids_file) {
                        pci_set_name_list_path(n->pacc, n->ids_file, 0);
                        n->flags |= PCI_LOOKUP_NO_HWDB;
                }
                pci_init(n->pacc);
        } else
                n->failed = true;
        pci_error_jmp = NULL;
        *ret = n;
        return 0;
}

struct gpuh_pci_names *gpuh_pci_names_free(struct gpuh_pci_names *n)
{
        if (!n)
                return NULL;
        if (n->pacc) {
                jmp_buf jb;
                if (setjmp(jb) == 0) {
                        pci_error_jmp = &jb;
                        pci_cleanup(n->pacc);
                }
                pci_error_jmp = NULL;
        }
        free(n->sysfs_path);
        free(n->ids_file);
        free(n->cache_dir);
        free(n->cache_key);
        if (n->cache)
                json_object_put(n->cache);
        free(n);
        return NULL;
}

/* One lookup under the jump guard; "<@fallback> <hex id>" when libpci fails. */
static const char *lookup(struct gpuh_pci_names *n, char *buf, size_t size, int flags,
                          unsigned a, unsigned b, const char *fallback)
{
        volatile bool ok = false;
        jmp_buf jb;

        if (!n->failed && setjmp(jb) == 0) {
                char *s;

                pci_error_jmp = &jb;
                s = pci_lookup_name(n->pacc, buf, (int) size, flags | n->flags, a, b);
                ok = s != NULL;
                if (s && s != buf)
                        snprintf(buf, size, "%s", s);
        } else if (!n->failed)
                n->failed = true;
        pci_error_jmp = NULL;
        if (!ok)
                snprintf(buf, size, "%s %04x", fallback, (flags & PCI_LOOKUP_DEVICE) ? b : a);
        return buf;
}

/* Files whose content decides libpci's answers. udev's hwdb paths as libudev searches them
 * (systemd src/libsystemd/sd-hwdb/hwdb-internal.h). */
static const char *const hwdb_paths[] = {
        "/etc/systemd/hwdb/hwdb.bin", "/etc/udev/hwdb.bin", "/usr/lib/systemd/hwdb/hwdb.bin",
        "/lib/systemd/hwdb/hwdb.bin", "/lib/udev/hwdb.bin",
};

static int stat_key(FILE *f, const char *path)
{
        struct stat st;

        if (stat(path, &st) < 0)
                return fprintf(f, "%s:-;", path);
        return fprintf(f, "%s:%lld:%lld.%09ld;", path, (long long) st.st_size,
                       (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

/* "libpci:<version>;<ids file>:<size>:<mtime>;<hwdb>:...;" */
static char *make_cache_key(struct gpuh_pci_names *n)
{
        char *key = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&key, &len);

        if (!f)
                return NULL;
        fprintf(f, "libpci:%x;", PCI_LIB_VERSION);
        if (n->pacc->id_file_name) {
                const char *ids = n->pacc->id_file_name;
                size_t ilen = strlen(ids);

                stat_key(f, ids);
                /* libpci falls back from "pci.ids.gz" to "pci.ids" (lib/names-parse.c, pci_open) */
                if (ilen > 3 && streq(ids + ilen - 3, ".gz")) {
                        _cleanup_free_ char *plain = strndup(ids, ilen - 3);
                        stat_key(f, plain ? plain : "-");
                }
        }
        if (!(n->flags & PCI_LOOKUP_NO_HWDB))
                for (size_t i = 0; i < ARRAY_SIZE(hwdb_paths); i++)
                        stat_key(f, hwdb_paths[i]);
        if (fclose(f) != 0) {
                free(key);
                return NULL;
        }
        return key;
}

static void cache_load(struct gpuh_pci_names *n)
{
        _cleanup_free_ char *path = NULL, *buf = NULL;
        json_object *doc, *key, *names;
        size_t len;

        if (n->cache_loaded)
                return;
        n->cache_loaded = true;
        if (!n->cache_dir)
                return;
        n->cache_key = make_cache_key(n);
        n->cache = json_object_new_object();
        if (!n->cache_key || !n->cache || asprintf(&path, "%s/%s", n->cache_dir, GPUH_PCI_NAMES_CACHE_FILE) < 0)
                return;
        if (gpuh_read_file_at(AT_FDCWD, path, GPUH_PCI_NAMES_CACHE_MAX, &buf, &len) < 0)
                return;
        doc = json_tokener_parse(buf);
        if (doc && json_object_object_get_ex(doc, "key", &key) && json_object_is_type(key, json_type_string) &&
            streq(json_object_get_string(key), n->cache_key) &&
            json_object_object_get_ex(doc, "names", &names) && json_object_is_type(names, json_type_object)) {
                json_object_object_foreach(names, k, v)
                        if (json_object_is_type(v, json_type_string))
                                json_object_object_add(n->cache, k, json_object_get(v));
        } else
                gpuh_debug("names cache '%s' is stale or damaged: not used", path);
        if (doc)
                json_object_put(doc);
}

/* A lookup through the cache: @key names the id, e.g. "d10de:25b6". */
static const char *cached(struct gpuh_pci_names *n, const char *key, char *buf, size_t size, int flags,
                          unsigned a, unsigned b, const char *fallback)
{
        json_object *v;

        cache_load(n);
        if (n->cache && json_object_object_get_ex(n->cache, key, &v)) {
                snprintf(buf, size, "%s", json_object_get_string(v));
                return buf;
        }
        lookup(n, buf, size, flags, a, b, fallback);
        /* A failing libpci gives numeric names: not worth keeping. */
        if (n->cache && !n->failed) {
                json_object *s = json_object_new_string(buf);
                if (s && json_object_object_add(n->cache, key, s) == 0)
                        n->cache_dirty = true;
                else
                        json_object_put(s);
        }
        return buf;
}

const char *gpuh_pci_name_vendor(struct gpuh_pci_names *n, uint16_t vendor, char *buf, size_t size)
{
        char key[16];

        snprintf(key, sizeof(key), "v%04x", vendor);
        return cached(n, key, buf, size, PCI_LOOKUP_VENDOR, vendor, 0, "Vendor");
}

const char *gpuh_pci_name_device(struct gpuh_pci_names *n, uint16_t vendor, uint16_t device,
                                 char *buf, size_t size)
{
        uint32_t key = (uint32_t) vendor << 16 | device;

        if (!n->memo[0] || n->memo_key != key) {
                char ckey[16];

                snprintf(ckey, sizeof(ckey), "d%04x:%04x", vendor, device);
                cached(n, ckey, n->memo, sizeof(n->memo), PCI_LOOKUP_DEVICE, vendor, device, "Device");
                n->memo_key = key;
        }
        snprintf(buf, size, "%s", n->memo);
        return buf;
}

const char *gpuh_pci_name_class(struct gpuh_pci_names *n, uint32_t class_code, char *buf, size_t size)
{
        char key[16];

        snprintf(key, sizeof(key), "c%04x", (class_code >> 8) & 0xffff);
        return cached(n, key, buf, size, PCI_LOOKUP_CLASS, (class_code >> 8) & 0xffff, 0, "Class");
}

void gpuh_pci_names_load(struct gpuh_pci_names *n)
{
        char buf[128];

        cache_load(n);
        if (n->cache && json_object_object_length(n->cache) > 0)
                return;         /* a usable cache: libpci is loaded only if it misses */
        lookup(n, buf, sizeof(buf), PCI_LOOKUP_VENDOR, 0x10de, 0, "Vendor");
}

int gpuh_pci_names_save(struct gpuh_pci_names *n)
{
        _cleanup_(json_putp) json_object *doc = NULL;
        const char *text;
        int r;

        if (!n->cache_dir || !n->cache || !n->cache_dirty || !n->cache_key)
                return 0;
        if (json_object_object_length(n->cache) > GPUH_PCI_NAMES_CACHE_ENTRIES)
                return 0;       /* not this host's handful of devices: keep no cache */
        doc = json_object_new_object();
        if (!doc || json_object_object_add(doc, "key", json_object_new_string(n->cache_key)) < 0 ||
            json_object_object_add(doc, "names", json_object_get(n->cache)) < 0)
                return -ENOMEM;
        text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        if (mkdir(n->cache_dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        r = gpuh_write_file_atomic(n->cache_dir, GPUH_PCI_NAMES_CACHE_FILE, text, strlen(text), 0644, false);
        if (r == 0)
                n->cache_dirty = false;
        return r;
}
