/* SPDX-License-Identifier: Apache-2.0 */
/* vm_usage.c: the domain -> device table, from libvirt or from libvirt's XML files. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "child.h"
#include "clock.h"
#include "fileio.h"
#include "log.h"
#include "strtable.h"
#include "sysfs.h"
#include "vm_usage.h"

#define DOMAIN_XML_MAX (4u << 20)       /* bytes per domain document */

enum ref_kind { REF_PCI, REF_MDEV };

struct ref {
        enum ref_kind kind;
        struct gpuh_pci_addr addr;              /* REF_PCI */
        char uuid[GPUH_UUID_STR_LEN + 1];       /* REF_MDEV, lowercase */
        size_t vm;                              /* index into vms */
};

struct gpuh_vm_usage {
        struct gpuh_vm *vms;
        size_t n_vms, cap_vms;
        struct ref *refs;
        size_t n_refs, cap_refs;
        bool sorted;
        enum gpuh_vm_source source;
};

static const char *const vm_state_table[_GPUH_VM_STATE_MAX] = {
        [GPUH_VM_RUNNING] = "running",
        [GPUH_VM_PAUSED] = "paused",
        [GPUH_VM_BLOCKED] = "blocked",
        [GPUH_VM_SHUTDOWN] = "shutdown",
        [GPUH_VM_PMSUSPENDED] = "pmsuspended",
        [GPUH_VM_CRASHED] = "crashed",
        [GPUH_VM_NOSTATE] = "nostate",
        [GPUH_VM_SHUTOFF] = "shutoff",
        [GPUH_VM_DEFINED] = "defined",
};

GPUH_DEFINE_STRING_TABLE_LOOKUP(gpuh_vm_state, enum gpuh_vm_state, vm_state_table, "nostate")

bool gpuh_vm_state_is_active(enum gpuh_vm_state s)
{
        return s <= GPUH_VM_CRASHED;
}

static const char *const vm_source_table[_GPUH_VM_SOURCE_MAX] = {
        [GPUH_VM_SOURCE_NONE] = "none",
        [GPUH_VM_SOURCE_LIBVIRT] = "libvirt",
        [GPUH_VM_SOURCE_DOMAIN_XML] = "domain-xml",
};

GPUH_DEFINE_STRING_TABLE_LOOKUP(gpuh_vm_source, enum gpuh_vm_source, vm_source_table, "none")

int gpuh_vm_usage_new(struct gpuh_vm_usage **ret)
{
        *ret = calloc(1, sizeof(**ret));
        return *ret ? 0 : -ENOMEM;
}

struct gpuh_vm_usage *gpuh_vm_usage_free(struct gpuh_vm_usage *u)
{
        if (!u)
                return NULL;
        for (size_t i = 0; i < u->n_vms; i++)
                free(u->vms[i].name);
        free(u->vms);
        free(u->refs);
        free(u);
        return NULL;
}

enum gpuh_vm_source gpuh_vm_usage_source(const struct gpuh_vm_usage *u)
{
        return u->source;
}

size_t gpuh_vm_usage_n_vms(const struct gpuh_vm_usage *u)
{
        return u->n_vms;
}

const struct gpuh_vm *gpuh_vm_usage_find(const struct gpuh_vm_usage *u, const char *name)
{
        for (size_t i = 0; name && i < u->n_vms; i++)
                if (streq(u->vms[i].name, name))
                        return &u->vms[i];
        return NULL;
}

const struct gpuh_vm *gpuh_vm_usage_get(const struct gpuh_vm_usage *u, size_t i)
{
        return i < u->n_vms ? &u->vms[i] : NULL;
}

/* Index of domain @name, added if new; the more specific state wins on a merge. */
static int vm_get(struct gpuh_vm_usage *u, const char *name, enum gpuh_vm_state state, size_t *ret)
{
        for (size_t i = 0; i < u->n_vms; i++)
                if (streq(u->vms[i].name, name)) {
                        enum gpuh_vm_state old = u->vms[i].state;
                        if (old == GPUH_VM_DEFINED ||
                            (gpuh_vm_state_is_active(state) && !gpuh_vm_state_is_active(old)))
                                u->vms[i].state = state;
                        *ret = i;
                        return 0;
                }
        if (u->n_vms == u->cap_vms) {
                size_t ncap = u->cap_vms * 2 + 16;
                struct gpuh_vm *nv = reallocarray(u->vms, ncap, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                u->vms = nv;
                u->cap_vms = ncap;
        }
        u->vms[u->n_vms].name = strdup(name);
        if (!u->vms[u->n_vms].name)
                return -ENOMEM;
        u->vms[u->n_vms].state = state;
        *ret = u->n_vms++;
        return 0;
}

static int ref_add(struct gpuh_vm_usage *u, const struct ref *r)
{
        if (u->n_refs == u->cap_refs) {
                size_t ncap = u->cap_refs * 2 + 32;
                struct ref *nr = reallocarray(u->refs, ncap, sizeof(*nr));
                if (!nr)
                        return -ENOMEM;
                u->refs = nr;
                u->cap_refs = ncap;
        }
        u->refs[u->n_refs++] = *r;
        u->sorted = false;
        return 0;
}

static bool node_is(const xmlNode *n, const char *name)
{
        return n->type == XML_ELEMENT_NODE && !n->ns && xmlStrEqual(n->name, BAD_CAST name);
}

static xmlNode *child(const xmlNode *n, const char *name)
{
        for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
                if (node_is(c, name))
                        return c;
        return NULL;
}

static char *attr(const xmlNode *n, const char *name)
{
        return n ? (char *) xmlGetNoNsProp(n, BAD_CAST name) : NULL;
}

static void xml_freep(char **p)
{
        if (*p)
                xmlFree(*p);
}
#define _cleanup_xml_ _cleanup_(xml_freep)

/* <source><address domain= bus= slot= function=/></source> of a PCI hostdev or interface. */
static int add_pci_source(struct gpuh_vm_usage *u, const xmlNode *src, size_t vm)
{
        const xmlNode *a = child(src, "address");
        _cleanup_xml_ char *d = attr(a, "domain"), *b = attr(a, "bus"),
                *s = attr(a, "slot"), *f = attr(a, "function");
        struct ref r = { .kind = REF_PCI, .vm = vm };

        if (!a || gpuh_pci_addr_from_libvirt(d, b, s, f, &r.addr) < 0)
                return 0;       /* no or malformed address: not a device we can match */
        return ref_add(u, &r);
}

static int add_mdev_source(struct gpuh_vm_usage *u, const xmlNode *src, size_t vm)
{
        _cleanup_xml_ char *uuid = attr(child(src, "address"), "uuid");
        struct ref r = { .kind = REF_MDEV, .vm = vm };

        if (gpuh_uuid_normalize(uuid, r.uuid) < 0)
                return 0;
        return ref_add(u, &r);
}

static int add_devices(struct gpuh_vm_usage *u, const xmlNode *devices, size_t vm)
{
        for (xmlNode *c = devices->children; c; c = c->next) {
                int r = 0;

                if (node_is(c, "hostdev")) {
                        _cleanup_xml_ char *mode = attr(c, "mode"), *type = attr(c, "type");
                        if (mode && !streq(mode, "subsystem"))
                                continue;
                        if (type && streq(type, "pci"))
                                r = add_pci_source(u, child(c, "source"), vm);
                        else if (type && streq(type, "mdev"))
                                r = add_mdev_source(u, child(c, "source"), vm);
                } else if (node_is(c, "interface")) {
                        _cleanup_xml_ char *type = attr(c, "type");
                        if (type && streq(type, "hostdev"))
                                r = add_pci_source(u, child(c, "source"), vm);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static void xml_silent(void *ctx, const xmlError *err)
{
}

int gpuh_vm_usage_add_xml(struct gpuh_vm_usage *u, const char *xml, size_t len, int state)
{
        xmlDoc *doc;
        xmlNode *root, *dom, *name;
        xmlChar *vm_name = NULL;
        size_t vm;
        int r = 0;

        if (len > DOMAIN_XML_MAX || len > INT32_MAX)
                return -E2BIG;
        xmlSetStructuredErrorFunc(NULL, (xmlStructuredErrorFunc) xml_silent);
        doc = xmlReadMemory(xml, (int) len, "domain.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                            XML_PARSE_COMPACT | XML_PARSE_NOBLANKS);
        if (!doc)
                return -EBADMSG;
        root = xmlDocGetRootElement(doc);
        dom = root;
        if (root && node_is(root, "domstatus")) {
                _cleanup_xml_ char *st = attr(root, "state");
                if (state < 0) {
                        state = gpuh_vm_state_from_string(st);
                        if (state < 0)
                                state = GPUH_VM_NOSTATE;
                }
                dom = child(root, "domain");
        }
        if (!dom || !node_is(dom, "domain") || !(name = child(dom, "name")) ||
            !(vm_name = xmlNodeGetContent(name)) || !vm_name[0]) {
                r = -EBADMSG;
                goto out;
        }
        if (state < 0)
                state = GPUH_VM_DEFINED;
        r = vm_get(u, (const char *) vm_name, (enum gpuh_vm_state) state, &vm);
        for (xmlNode *c = dom->children; r >= 0 && c; c = c->next)
                if (node_is(c, "devices"))
                        r = add_devices(u, c, vm);
out:
        if (vm_name)
                xmlFree(vm_name);
        xmlFreeDoc(doc);
        return r;
}

static int cmp_ref(const void *a, const void *b)
{
        const struct ref *x = a, *y = b;
        int c;

        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        c = x->kind == REF_PCI ? gpuh_pci_addr_cmp(&x->addr, &y->addr) : strcmp(x->uuid, y->uuid);
        if (c)
                return c;
        return x->vm < y->vm ? -1 : x->vm > y->vm;
}

static int cmp_vm_ptr(const void *a, const void *b)
{
        const struct gpuh_vm *x = *(const struct gpuh_vm *const *) a;
        const struct gpuh_vm *y = *(const struct gpuh_vm *const *) b;
        bool ax = gpuh_vm_state_is_active(x->state), ay = gpuh_vm_state_is_active(y->state);

        if (ax != ay)
                return ax ? -1 : 1;
        return strcmp(x->name, y->name);
}

void gpuh_vm_usage_seal(struct gpuh_vm_usage *u)
{
        if (u->sorted)
                return;         /* sealed: lookups only read, from any thread */
        if (u->n_refs > 1)
                qsort(u->refs, u->n_refs, sizeof(*u->refs), cmp_ref);
        u->sorted = true;
}

static size_t lookup(struct gpuh_vm_usage *u, const struct ref *key, const struct gpuh_vm **buf, size_t cap)
{
        size_t lo = 0, hi, n = 0, last = SIZE_MAX;

        gpuh_vm_usage_seal(u);
        /* first ref with (kind, key) >= key with vm 0 */
        hi = u->n_refs;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (cmp_ref(&u->refs[mid], key) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (size_t i = lo; i < u->n_refs; i++) {
                struct ref k = u->refs[i];
                k.vm = 0;
                if (cmp_ref(&k, key) != 0)
                        break;
                const struct gpuh_vm *vm;
                size_t kept, at;

                if (u->refs[i].vm == last)
                        continue;       /* same domain twice (status + config file) */
                last = u->refs[i].vm;
                vm = &u->vms[last];
                /* keep the best @cap in order: insertion into the sorted prefix */
                kept = n < cap ? n : cap;
                for (at = kept; at > 0 && cmp_vm_ptr(&vm, &buf[at - 1]) < 0; at--)
                        ;
                if (at < cap) {
                        memmove(buf + at + 1, buf + at, ((kept < cap ? kept + 1 : cap) - at - 1) * sizeof(*buf));
                        buf[at] = vm;
                }
                n++;
        }
        return n;
}

size_t gpuh_vm_usage_pci(struct gpuh_vm_usage *u, const struct gpuh_pci_addr *addr,
                         const struct gpuh_vm **buf, size_t cap)
{
        struct ref key = { .kind = REF_PCI, .addr = *addr, .vm = 0 };

        return lookup(u, &key, buf, cap);
}

size_t gpuh_vm_usage_mdev(struct gpuh_vm_usage *u, const char *uuid, const struct gpuh_vm **buf, size_t cap)
{
        struct ref key = { .kind = REF_MDEV, .vm = 0 };

        if (gpuh_uuid_normalize(uuid, key.uuid) < 0)
                return 0;
        return lookup(u, &key, buf, cap);
}

/* ---- XML files ---- */

/* Is a domain named by the first @len bytes of @name recorded in an active state? */
static bool active_named(const struct gpuh_vm_usage *u, const char *name, size_t len)
{
        for (size_t i = 0; i < u->n_vms; i++)
                if (strlen(u->vms[i].name) == len && memcmp(u->vms[i].name, name, len) == 0)
                        return gpuh_vm_state_is_active(u->vms[i].state);
        return false;
}

int gpuh_vm_usage_load_dirs(struct gpuh_vm_usage *u, char *const *dirs, struct gpuh_warnings *w)
{
        int n_ok = 0;

        for (char *const *d = dirs; d && *d; d++) {
                _cleanup_strv_free_ char **names = NULL;
                _cleanup_close_ int dfd = open(*d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                int r;

                if (dfd < 0) {
                        if (errno != ENOENT)
                                gpuh_warn(w, "%s: %s", *d, strerror(errno));
                        continue;
                }
                r = gpuh_sysfs_list(dfd, ".", &names);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        gpuh_warn(w, "%s: %s", *d, strerror(-r));
                        continue;
                }
                n_ok++;
                for (char **p = names; *p; p++) {
                        _cleanup_free_ char *xml = NULL;
                        size_t len = strlen(*p), xlen = 0;

                        if (len < 5 || !streq(*p + len - 4, ".xml"))
                                continue;
                        /* libvirt names the files after the domain: for a domain already seen
                         * active (its status file), the live definition is what counts, as
                         * virDomainGetXMLDesc() would return; its persistent config is not read. */
                        if (active_named(u, *p, len - 4))
                                continue;
                        r = gpuh_read_file_at(dfd, *p, DOMAIN_XML_MAX, &xml, &xlen);
                        if (r == -EISDIR)
                                continue;
                        if (r == 0)
                                r = gpuh_vm_usage_add_xml(u, xml, xlen, -1);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                gpuh_warn(w, "%s/%s: %s", *d, *p,
                                          r == -EBADMSG ? "not a libvirt domain document" : strerror(-r));
                }
        }
        if (n_ok > 0)
                u->source = GPUH_VM_SOURCE_DOMAIN_XML;
        return n_ok;
}

/* ---- libvirt, in a child process ----
 *
 * The child writes records to a pipe: 'D', state (u32), length (u32), XML bytes; or 'E',
 * length (u32), message. It exits 0 when all domains were sent.
 */

static void virt_silent(void *data, virErrorPtr err)
{
}

static int send_record(int fd, char tag, uint32_t state, const char *data, size_t len)
{
        uint32_t hdr[2] = { state, (uint32_t) len };

        if (gpuh_write_all(fd, &tag, 1) < 0 || gpuh_write_all(fd, hdr, sizeof(hdr)) < 0 ||
            gpuh_write_all(fd, data, len) < 0)
                return -EPIPE;
        return 0;
}

/*
 * libvirt and its dependency chain (gnutls, glib, ...) cost about 13 MiB of resident memory
 * and 60 shared objects to map, so only the child loads it, with dlopen(3); the parent never
 * does. The symbols below are libvirt's stable public ABI (libvirt.so.0).
 */
struct virt_api {
        typeof(virConnectOpenReadOnly) *open_ro;
        typeof(virConnectListAllDomains) *list_all;
        typeof(virDomainGetState) *get_state;
        typeof(virDomainGetXMLDesc) *get_xml;
        typeof(virSetErrorFunc) *set_error_func;
        typeof(virGetLastErrorMessage) *last_error;
};

static int virt_api_load(struct virt_api *api, const char **reterr)
{
        void *h = dlopen("libvirt.so.0", RTLD_NOW | RTLD_LOCAL);

        if (!h) {
                *reterr = dlerror();
                return -ENOENT;
        }
#define SYM(field, name) if (!(api->field = (typeof(api->field)) dlsym(h, name))) { *reterr = "libvirt.so.0 lacks " name; return -ENOENT; }
        SYM(open_ro, "virConnectOpenReadOnly");
        SYM(list_all, "virConnectListAllDomains");
        SYM(get_state, "virDomainGetState");
        SYM(get_xml, "virDomainGetXMLDesc");
        SYM(set_error_func, "virSetErrorFunc");
        SYM(last_error, "virGetLastErrorMessage");
#undef SYM
        return 0;
}

static void __attribute__((noreturn)) libvirt_child(int fd, const char *uri)
{
        struct virt_api api;
        virDomainPtr *doms = NULL;
        virConnectPtr conn;
        const char *msg = NULL;
        int n;

        signal(SIGPIPE, SIG_IGN);
        if (virt_api_load(&api, &msg) < 0) {
                send_record(fd, 'E', 0, msg, strlen(msg));
                _exit(2);
        }
        api.set_error_func(NULL, virt_silent);
        conn = api.open_ro(uri);
        if (!conn) {
                msg = api.last_error();
                send_record(fd, 'E', 0, msg, strlen(msg));
                _exit(2);
        }
        n = api.list_all(conn, &doms, 0);
        if (n < 0) {
                msg = api.last_error();
                send_record(fd, 'E', 0, msg, strlen(msg));
                _exit(2);
        }
        for (int i = 0; i < n; i++) {
                int state = VIR_DOMAIN_NOSTATE, reason;
                char *xml;

                if (api.get_state(doms[i], &state, &reason, 0) < 0)
                        state = VIR_DOMAIN_NOSTATE;
                xml = api.get_xml(doms[i], 0);
                if (xml && send_record(fd, 'D', (uint32_t) state, xml, strlen(xml)) < 0)
                        _exit(3);
                free(xml);
        }
        /* No cleanup: _exit() ends the process, and the connection with it. */
        _exit(0);
}

static enum gpuh_vm_state from_virt_state(uint32_t s)
{
        switch (s) {
        case VIR_DOMAIN_RUNNING:
                return GPUH_VM_RUNNING;
        case VIR_DOMAIN_BLOCKED:
                return GPUH_VM_BLOCKED;
        case VIR_DOMAIN_PAUSED:
                return GPUH_VM_PAUSED;
        case VIR_DOMAIN_SHUTDOWN:
                return GPUH_VM_SHUTDOWN;
        case VIR_DOMAIN_SHUTOFF:
                return GPUH_VM_SHUTOFF;
        case VIR_DOMAIN_CRASHED:
                return GPUH_VM_CRASHED;
        case VIR_DOMAIN_PMSUSPENDED:
                return GPUH_VM_PMSUSPENDED;
        default:
                return GPUH_VM_NOSTATE;
        }
}

/* Parse the records in @buf into @u. */
static int parse_records(struct gpuh_vm_usage *u, const char *buf, size_t len, char **reterr)
{
        size_t off = 0;
        int n = 0;

        while (off < len) {
                uint32_t hdr[2];
                char tag = buf[off];
                int r;

                if (len - off < 1 + sizeof(hdr))
                        return -EBADMSG;
                memcpy(hdr, buf + off + 1, sizeof(hdr));
                off += 1 + sizeof(hdr);
                if (hdr[1] > len - off)
                        return -EBADMSG;
                if (tag == 'E') {
                        if (reterr && !*reterr)
                                *reterr = strndup(buf + off, hdr[1]);
                        return -ECONNREFUSED;
                }
                if (tag != 'D')
                        return -EBADMSG;
                r = gpuh_vm_usage_add_xml(u, buf + off, hdr[1], from_virt_state(hdr[0]));
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        gpuh_log(LOG_WARNING, "libvirt returned a domain XML that does not parse");
                off += hdr[1];
                n++;
        }
        return n;
}

struct gpuh_libvirt_query {
        pid_t pid;
        int fd;                 /* read end of the child's pipe */
        int64_t deadline;       /* CLOCK_MONOTONIC ms */
        int timeout_ms;
};

int gpuh_vm_usage_libvirt_start(const char *uri, int timeout_ms, struct gpuh_libvirt_query **ret)
{
        struct gpuh_libvirt_query *q;
        int pfd[2], r;

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
        q->deadline = gpuh_mono_ms() + q->timeout_ms;
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                r = -errno;
                free(q);
                return r;
        }
        q->pid = gpuh_child_fork((const int[]) { pfd[1] }, 1, gpuh_log_get_max_prio() >= LOG_DEBUG);
        if (q->pid < 0) {
                r = q->pid;
                close(pfd[0]);
                close(pfd[1]);
                free(q);
                return r;
        }
        if (q->pid == 0)
                libvirt_child(pfd[1], uri);
        close(pfd[1]);
        q->fd = pfd[0];
        *ret = q;
        return 0;
}

int gpuh_vm_usage_libvirt_finish(struct gpuh_vm_usage *u, struct gpuh_libvirt_query *q, char **reterr)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int status = 0, r;

        r = gpuh_child_collect(q->pid, q->fd, q->deadline, 256u << 20, &buf, &len, &status);
        if (r == -ETIMEDOUT) {
                if (reterr && asprintf(reterr, "no answer from libvirt within %d ms", q->timeout_ms) < 0)
                        *reterr = NULL;
                free(q);
                return -ETIMEDOUT;
        }
        free(q);
        if (r < 0)
                return r;
        r = parse_records(u, buf ? buf : "", len, reterr);
        if (r < 0)
                return r;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                if (reterr && !*reterr)
                        *reterr = strdup("libvirt query process failed");
                return -ECONNREFUSED;
        }
        u->source = GPUH_VM_SOURCE_LIBVIRT;
        return r;
}

int gpuh_vm_usage_load_libvirt(struct gpuh_vm_usage *u, const char *uri, int timeout_ms,
                               char **reterr)
{
        struct gpuh_libvirt_query *q;
        int r = gpuh_vm_usage_libvirt_start(uri, timeout_ms, &q);

        if (r < 0)
                return r;
        return gpuh_vm_usage_libvirt_finish(u, q, reterr);
}

/* "a:b:c" -> NULL-terminated vector, empty items dropped. */
static char **split_colon(const char *s)
{
        _cleanup_free_ char *copy = strdup(s);
        char **v = calloc(strlen(s) + 2, sizeof(char *));
        char *save = NULL;
        size_t n = 0;

        if (!copy || !v) {
                free(v);
                return NULL;
        }
        for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save))
                if (!(v[n++] = strdup(t))) {
                        strv_free(v);
                        return NULL;
                }
        return v;
}

char *const *gpuh_vm_usage_dirs(char *const *given, const char *env_list, const struct gpuh_config *cfg,
                                char ***ret_owned)
{
        *ret_owned = NULL;
        if (given && given[0])
                return given;
        if (env_list && *env_list)
                return *ret_owned = split_colon(env_list);
        return cfg ? cfg->domain_xml_dirs : NULL;
}
