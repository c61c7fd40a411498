/* SPDX-License-Identifier: Apache-2.0 */
/* sctest.c: fake hosts, options and domain XMLs for the state-change unit tests (sctest.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "domxml.h"
#include "log.h"
#include "pci_addr.h"
#include "reserve.h"
#include "sctest.h"

#define CHECK(x) do { if ((x) != 0) { fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #x); abort(); } } while (0)

static void capture(void *data, int prio, const char *msg)
{
        struct sct *t = data;
        size_t l = t->events ? strlen(t->events) : 0, m = strlen(msg);
        char *n = realloc(t->events, l + m + 2);

        if (!n)
                abort();
        memcpy(n + l, msg, m);
        n[l + m] = '\n';
        n[l + m + 1] = '\0';
        t->events = n;
        t->n_events++;
        if (getenv("GPUH_TEST_VERBOSE"))
                fprintf(stderr, "log: %s\n", msg);
}

struct sct *sct_new(void)
{
        struct sct *t = calloc(1, sizeof(*t));

        if (!t)
                abort();
        CHECK(fk_new(&t->k));
        CHECK(gpuh_config_new_default(&t->cfg));
        t->cfg->write_timeout_ms = 100;
        t->cfg->nvidia_mdev_grace_ms = 20;
        t->cfg->enable_sriov = true;
        if (asprintf(&t->xml_dir, "%s/libvirt-qemu", fk_dir(t->k)) < 0)
                abort();
        CHECK(mkdir(t->xml_dir, 0755));
        t->xml_dirs[0] = t->xml_dir;
        t->o = (struct gpuh_sc_opts) {
                .cfg = t->cfg, .sysfs_root = fk_sys(t->k), .state_dir = fk_state(t->k), .dev_dir = fk_dev(t->k),
                .proc_root = fk_proc(t->k), .no_libvirt = true, .xml_dirs = t->xml_dirs, .min_age_s = 0,
        };
        gpuh_log_setup("sctest", GPUH_LOG_NONE, LOG_DEBUG);
        gpuh_log_set_fn(capture, t);
        return t;
}

struct sct *sct_free(struct sct *t)
{
        if (!t)
                return NULL;
        gpuh_log_set_fn(NULL, NULL);
        fk_free(t->k);
        gpuh_config_free(t->cfg);
        free(t->xml_dir);
        free(t->events);
        free(t);
        return NULL;
}

void sct_host_rtx3080(struct sct *t)
{
        CHECK(fk_add_fn(t->k, &(struct fk_fn) { .bdf = "0000:00:03.1", .vendor = 0x1022, .device = 0x1483,
                                                .class_code = 0x060400, .group = 5, .driver = "pcieport" }));
        CHECK(fk_add_fn(t->k, &(struct fk_fn) { .bdf = "0000:05:00.0", .vendor = 0x10de, .device = 0x2206,
                                                .class_code = 0x030000, .group = 24, .driver = "nvidia" }));
        CHECK(fk_add_fn(t->k, &(struct fk_fn) { .bdf = "0000:05:00.1", .vendor = 0x10de, .device = 0x1aef,
                                                .class_code = 0x040300, .group = 24, .driver = "snd_hda_intel" }));
        CHECK(fk_add_fn(t->k, &(struct fk_fn) { .bdf = "0000:04:00.0", .vendor = 0x10de, .device = 0x128b,
                                                .class_code = 0x030000, .group = 15, .driver = "nvidia" }));
        CHECK(fk_add_fn(t->k, &(struct fk_fn) { .bdf = "0000:03:00.0", .vendor = 0x8086, .device = 0x1539,
                                                .class_code = 0x020000, .group = 15, .driver = "igb" }));
        CHECK(fk_add_fn(t->k, &(struct fk_fn) { .bdf = "0000:02:04.0", .vendor = 0x1022, .device = 0x43c7,
                                                .class_code = 0x060400, .group = 15, .driver = "pcieport" }));
}

void sct_host_m60(struct sct *t)
{
        CHECK(fk_add_fn(t->k, &(struct fk_fn) { .bdf = "0000:3d:00.0", .vendor = 0x10de, .device = 0x13f2,
                                                .class_code = 0x030000, .group = 30, .driver = "nvidia",
                                                .owns_types = true }));
        CHECK(fk_add_mdev_type(t->k, "0000:3d:00.0", "nvidia-18", "GRID M60-2Q", 4));
        CHECK(fk_add_mdev_type(t->k, "0000:3d:00.0", "nvidia-22", "GRID M60-8Q", 2));
}

void sct_host_a2(struct sct *t, bool vfs_enabled)
{
        static const char *const types[] = { "nvidia-746", "nvidia-747", NULL };

        CHECK(fk_add_fn(t->k, &(struct fk_fn) { .bdf = "0000:08:00.0", .vendor = 0x10de, .device = 0x25b6,
                                                .class_code = 0x030200, .group = 40, .driver = "nvidia" }));
        CHECK(fk_sriov(t->k, "0000:08:00.0", &(struct fk_sriov) {
                .total = 4, .offset = 4, .stride = 1, .enabled = vfs_enabled ? 4 : 0, .vf_device = 0x25b6,
                .vf_class = 0x030200, .vf_driver = "nvidia", .types = types, .type_avail = 1 }));
}

void sct_host_l40s(struct sct *t, bool vfs_enabled)
{
        static const struct fk_vgpu_type vgpu[] = {
                { 1148, "NVIDIA L40S-2Q", 2048 }, { 1152, "NVIDIA L40S-8Q", 8192 }, { 1155, "NVIDIA L40S-24Q", 24576 },
        };

        CHECK(fk_add_fn(t->k, &(struct fk_fn) { .bdf = "0000:af:00.0", .vendor = 0x10de, .device = 0x26b9,
                                                .class_code = 0x030200, .group = 131, .driver = "nvidia" }));
        CHECK(fk_sriov(t->k, "0000:af:00.0", &(struct fk_sriov) {
                .total = 4, .offset = 4, .stride = 1, .enabled = vfs_enabled ? 4 : 0, .vf_device = 0x26b9,
                .vf_class = 0x030200, .vf_driver = "nvidia", .vgpu = vgpu, .n_vgpu = ARRAY_SIZE(vgpu),
                .gpu_fb_mb = 49152 }));
}

void sct_host_s7150(struct sct *t, bool vfs_enabled)
{
        CHECK(fk_add_fn(t->k, &(struct fk_fn) { .bdf = "0000:83:00.0", .vendor = 0x1002, .device = 0x6929,
                                                .class_code = 0x030000, .group = 50, .driver = "gim" }));
        CHECK(fk_sriov(t->k, "0000:83:00.0", &(struct fk_sriov) {
                .total = 4, .offset = 16, .stride = 1, .enabled = vfs_enabled ? 4 : 0, .vf_device = 0x692f,
                .vf_class = 0x030000 }));
}

static struct gpuh_pci_addr addr(const char *s)
{
        struct gpuh_pci_addr a;

        CHECK(gpuh_pci_addr_parse(s, &a));
        return a;
}

struct gpuh_alloc sct_pci(const char *a, const char *companion)
{
        struct gpuh_alloc r = { .kind = GPUH_ALLOC_PCI, .addr = addr(a) };

        if (companion)
                r.companions[r.n_companions++] = addr(companion);
        return r;
}

struct gpuh_alloc sct_vf(const char *a, const char *parent)
{
        return (struct gpuh_alloc) { .kind = GPUH_ALLOC_VF, .addr = addr(a), .parent = addr(parent) };
}

struct gpuh_alloc sct_mdev(const char *uuid, const char *parent, const char *type)
{
        struct gpuh_alloc r = { .kind = GPUH_ALLOC_MDEV, .parent = addr(parent), .mdev_new = true };

        snprintf(r.uuid, sizeof(r.uuid), "%s", uuid);
        snprintf(r.mdev_type, sizeof(r.mdev_type), "%s", type);
        return r;
}

struct gpuh_alloc sct_vgpu(const char *a, const char *parent, unsigned type)
{
        return (struct gpuh_alloc) { .kind = GPUH_ALLOC_VENDOR_VGPU, .addr = addr(a), .parent = addr(parent),
                                     .vgpu_type = type };
}

char *sct_domain(const char *name, const char *uuid, const struct gpuh_alloc *a, size_t n)
{
        xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
        xmlNode *root = xmlNewNode(NULL, BAD_CAST "domain");
        struct gpuh_domxml *d = NULL;
        xmlChar *skel = NULL;
        char *out = NULL, *err = NULL;
        size_t len = 0;
        int slen = 0;

        if (!doc || !root)
                abort();
        xmlDocSetRootElement(doc, root);
        if (!xmlNewProp(root, BAD_CAST "type", BAD_CAST "kvm") || !xmlNewTextChild(root, NULL, BAD_CAST "name", BAD_CAST name) ||
            !xmlNewTextChild(root, NULL, BAD_CAST "uuid", BAD_CAST uuid) || !xmlNewChild(root, NULL, BAD_CAST "devices", NULL))
                abort();
        xmlDocDumpMemory(doc, &skel, &slen);
        xmlFreeDoc(doc);
        if (!skel)
                abort();
        if (gpuh_domxml_parse((const char *) skel, (size_t) slen, &d, &err) < 0) {
                fprintf(stderr, "sct_domain: %s\n", err ? err : "?");
                abort();
        }
        xmlFree(skel);
        if (n > 0)
                CHECK(gpuh_domxml_apply(d, a, n, false));
        CHECK(gpuh_domxml_serialize(d, &out, &len));
        gpuh_domxml_free(d);
        return out;
}

static char *dump(xmlDoc *doc)
{
        xmlChar *buf = NULL;
        char *out;
        int len = 0;

        xmlDocDumpMemory(doc, &buf, &len);
        if (!buf)
                abort();
        out = strndup((const char *) buf, (size_t) len);
        xmlFree(buf);
        if (!out)
                abort();
        return out;
}

char *sct_domain_plain(const char *name, const char *uuid, const char *const *pci, const char *const *mdevs,
                       bool request)
{
        xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
        xmlNode *root = xmlNewNode(NULL, BAD_CAST "domain"), *devices;
        char *out;

        if (!doc || !root)
                abort();
        xmlDocSetRootElement(doc, root);
        xmlNewProp(root, BAD_CAST "type", BAD_CAST "kvm");
        xmlNewTextChild(root, NULL, BAD_CAST "name", BAD_CAST name);
        xmlNewTextChild(root, NULL, BAD_CAST "uuid", BAD_CAST uuid);
        if (request) {
                xmlNode *md = xmlNewChild(root, NULL, BAD_CAST "metadata", NULL);
                xmlNode *gpu = xmlNewChild(md, NULL, BAD_CAST "gpu", NULL);
                xmlNs *ns = xmlNewNs(gpu, BAD_CAST GPUH_DOMXML_NS, BAD_CAST "gpuhooks");
                xmlNode *req;

                xmlSetNs(gpu, ns);
                req = xmlNewChild(gpu, ns, BAD_CAST "request", NULL);
                xmlNewProp(req, BAD_CAST "count", BAD_CAST "1");
                xmlNewProp(req, BAD_CAST "mode", BAD_CAST "passthrough");
        }
        devices = xmlNewChild(root, NULL, BAD_CAST "devices", NULL);
        for (const char *const *p = pci; p && *p; p++) {
                struct gpuh_pci_addr a = addr(*p);
                xmlNode *h = xmlNewChild(devices, NULL, BAD_CAST "hostdev", NULL);
                xmlNode *src, *ad;
                char v[4][16];

                xmlNewProp(h, BAD_CAST "mode", BAD_CAST "subsystem");
                xmlNewProp(h, BAD_CAST "type", BAD_CAST "pci");
                xmlNewProp(h, BAD_CAST "managed", BAD_CAST "yes");
                src = xmlNewChild(h, NULL, BAD_CAST "source", NULL);
                ad = xmlNewChild(src, NULL, BAD_CAST "address", NULL);
                snprintf(v[0], sizeof(v[0]), "0x%04x", a.domain);
                snprintf(v[1], sizeof(v[1]), "0x%02x", a.bus);
                snprintf(v[2], sizeof(v[2]), "0x%02x", a.slot);
                snprintf(v[3], sizeof(v[3]), "0x%x", a.func);
                xmlNewProp(ad, BAD_CAST "domain", BAD_CAST v[0]);
                xmlNewProp(ad, BAD_CAST "bus", BAD_CAST v[1]);
                xmlNewProp(ad, BAD_CAST "slot", BAD_CAST v[2]);
                xmlNewProp(ad, BAD_CAST "function", BAD_CAST v[3]);
        }
        for (const char *const *p = mdevs; p && *p; p++) {
                xmlNode *h = xmlNewChild(devices, NULL, BAD_CAST "hostdev", NULL);
                xmlNode *src;

                xmlNewProp(h, BAD_CAST "mode", BAD_CAST "subsystem");
                xmlNewProp(h, BAD_CAST "type", BAD_CAST "mdev");
                xmlNewProp(h, BAD_CAST "model", BAD_CAST "vfio-pci");
                src = xmlNewChild(h, NULL, BAD_CAST "source", NULL);
                xmlNewProp(xmlNewChild(src, NULL, BAD_CAST "address", NULL), BAD_CAST "uuid", BAD_CAST *p);
        }
        out = dump(doc);
        xmlFreeDoc(doc);
        return out;
}

char *sct_strip_hostdevs(const char *xml)
{
        xmlDoc *doc = xmlReadMemory(xml, (int) strlen(xml), "domain.xml", NULL, XML_PARSE_NONET);
        xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
        char *out;

        if (!root)
                abort();
        for (xmlNode *c = root->children; c; c = c->next) {
                xmlNode *h = c->children;

                if (c->type != XML_ELEMENT_NODE || !xmlStrEqual(c->name, BAD_CAST "devices"))
                        continue;
                while (h) {
                        xmlNode *next = h->next;
                        if (h->type == XML_ELEMENT_NODE && xmlStrEqual(h->name, BAD_CAST "hostdev")) {
                                xmlUnlinkNode(h);
                                xmlFreeNode(h);
                        }
                        h = next;
                }
        }
        out = dump(doc);
        xmlFreeDoc(doc);
        return out;
}

int sct_prepare(struct sct *t, const char *xml, char **err)
{
        free(*err);
        *err = NULL;
        return gpuh_sc_prepare(&t->o, xml, strlen(xml), NULL, err);
}

int sct_release(struct sct *t, const char *domain, char **err)
{
        free(*err);
        *err = NULL;
        return gpuh_sc_release(&t->o, domain, NULL, err);
}

int sct_reconcile(struct sct *t, char **err)
{
        free(*err);
        *err = NULL;
        return gpuh_sc_reconcile(&t->o, NULL, err);
}

void sct_journal(struct sct *t, const char *domain, const struct gpuh_jentry *e, size_t n)
{
        struct gpuh_state *st = NULL;
        struct gpuh_journal *j = NULL;
        char *err = NULL;
        int dfd;

        CHECK(gpuh_state_open(fk_state(t->k), true, &st, &err));
        dfd = gpuh_state_subdir(st, "journal");
        if (dfd < 0)
                abort();
        if (gpuh_journal_load(dfd, domain, &j) < 0)
                CHECK(gpuh_journal_new(domain, NULL, &j));
        for (size_t i = 0; i < n; i++) {
                struct gpuh_jentry copy = e[i];
                CHECK(gpuh_journal_append(dfd, j, &copy));
        }
        gpuh_journal_free(j);
        gpuh_state_free(st);
}

void sct_drop_reservation(struct sct *t, const char *domain)
{
        struct gpuh_state *st = NULL;
        char *err = NULL;

        CHECK(gpuh_state_open(fk_state(t->k), true, &st, &err));
        CHECK(gpuh_reservation_remove(st, domain));
        gpuh_state_free(st);
}

void sct_running(struct sct *t, const char *name, const char *xml)
{
        char path[PATH_MAX];
        xmlDoc *doc;
        xmlNode *dom, *status;

        snprintf(path, sizeof(path), "%s/%s.xml", t->xml_dir, name);
        if (!xml) {
                unlink(path);
                return;
        }
        doc = xmlReadMemory(xml, (int) strlen(xml), "domain.xml", NULL, XML_PARSE_NONET);
        if (!doc)
                abort();
        dom = xmlDocGetRootElement(doc);
        status = xmlNewNode(NULL, BAD_CAST "domstatus");
        if (!status || !xmlNewProp(status, BAD_CAST "state", BAD_CAST "running"))
                abort();
        xmlUnlinkNode(dom);
        xmlDocSetRootElement(doc, status);
        xmlAddChild(status, dom);
        if (xmlSaveFile(path, doc) < 0)
                abort();
        xmlFreeDoc(doc);
}

static bool state_file(struct sct *t, const char *dir, const char *name, const char *suffix)
{
        char p[PATH_MAX];

        snprintf(p, sizeof(p), "%s/%s/%s%s", fk_state(t->k), dir, name, suffix);
        return access(p, F_OK) == 0;
}

bool sct_has_journal(struct sct *t, const char *domain)
{
        return state_file(t, "journal", domain, ".journal");
}

bool sct_has_reservation(struct sct *t, const char *domain)
{
        return state_file(t, "reservations", domain, ".json");
}

bool sct_quarantined(struct sct *t, const char *bdf)
{
        return state_file(t, "quarantine", bdf, ".json");
}

size_t sct_events(struct sct *t, const char *needle)
{
        size_t n = 0;

        for (const char *p = t->events; p && (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}
