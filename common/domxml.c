/* SPDX-License-Identifier: Apache-2.0 */
/* domxml.c: reading, changing and writing a libvirt domain document with libxml2. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlsave.h>

#include "alloc_codec.h"
#include "domname.h"
#include "domxml.h"
#include "log.h"
#include "macro.h"

static void xml_freep(char **p)
{
        if (*p)
                xmlFree(*p);
}
#define _cleanup_xml_ _cleanup_(xml_freep)

static bool is_el(const xmlNode *n, const char *ns, const char *name)
{
        if (!n || n->type != XML_ELEMENT_NODE || !xmlStrEqual(n->name, BAD_CAST name))
                return false;
        if (!ns)
                return !n->ns;
        return n->ns && xmlStrEqual(n->ns->href, BAD_CAST ns);
}

static xmlNode *child_el(const xmlNode *n, const char *ns, const char *name)
{
        for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
                if (is_el(c, ns, name))
                        return c;
        return NULL;
}

/* Text content, trimmed; NULL when the element is absent. */
static char *text_of(const xmlNode *n)
{
        _cleanup_xml_ char *t = n ? (char *) xmlNodeGetContent(n) : NULL;
        const char *s;
        size_t len;

        if (!t)
                return NULL;
        s = t;
        while (isspace((unsigned char) *s))
                s++;
        len = strlen(s);
        while (len > 0 && isspace((unsigned char) s[len - 1]))
                len--;
        return strndup(s, len);
}

static void cs_clear(struct gpuh_cs_instance *cs)
{
        free(cs->service_offering);
        free(cs->account);
        free(cs->domain);
        free(cs->project);
        free(cs->zone);
        strv_free(cs->host_tags);
        for (size_t i = 0; i < cs->n_tags; i++) {
                free(cs->tag_keys[i]);
                free(cs->tag_values[i]);
        }
        free(cs->tag_keys);
        free(cs->tag_values);
}

struct gpuh_domxml *gpuh_domxml_free(struct gpuh_domxml *d)
{
        if (!d)
                return NULL;
        if (d->doc)
                xmlFreeDoc(d->doc);
        free(d->name);
        free(d->uuid);
        free(d->cpuset);
        cs_clear(&d->cs);
        gpuh_requests_free(d->requests, d->n_requests);
        free(d->record);
        free(d->hostdevs);
        free(d);
        return NULL;
}

static void domxml_freep(struct gpuh_domxml **d)
{
        gpuh_domxml_free(*d);
}

/* "8-4-4-4-12" hex, or libvirt's 32 digits without dashes; written back lowercase, dashed. */
static int parse_uuid(const char *s, char **ret)
{
        char dashed[GPUH_UUID_STR_LEN + 1], out[GPUH_UUID_STR_LEN + 1];

        if (!strchr(s, '-')) {
                if (strlen(s) != 32)
                        return -EINVAL;
                snprintf(dashed, sizeof(dashed), "%.8s-%.4s-%.4s-%.4s-%.12s", s, s + 8, s + 12, s + 16, s + 20);
                s = dashed;
        }
        if (gpuh_uuid_normalize(s, out) < 0)
                return -EINVAL;
        *ret = strdup(out);
        return *ret ? 0 : -ENOMEM;
}

/* The vCPU cpusets, comma-joined as they are read: appended in place, so that a document of
 * 150,000 <vcpupin>s costs one pass, not one copy of the joined text per element. */
struct cpuset_buf {
        size_t len, size;
};

static int add_cpuset(struct gpuh_domxml *d, struct cpuset_buf *b, const char *set)
{
        size_t n, need;

        if (!set || !*set)
                return 0;
        n = strlen(set);
        need = b->len + (b->len > 0) + n + 1;
        if (need > b->size) {
                size_t size = need > 2 * b->size ? need : 2 * b->size;
                char *p = realloc(d->cpuset, size);
                if (!p)
                        return -ENOMEM;
                d->cpuset = p;
                b->size = size;
        }
        if (b->len > 0)
                d->cpuset[b->len++] = ',';
        memcpy(d->cpuset + b->len, set, n + 1);
        b->len += n;
        return 0;
}

static int read_cs_instance(struct gpuh_cs_instance *cs, const xmlNode *inst)
{
        const char *ns = GPUH_CLOUDSTACK_NS;
        xmlNode *so = child_el(inst, ns, "service_offering"), *owner = child_el(inst, ns, "owner");
        xmlNode *tags, *rtags;
        size_t n = 0;

        cs->present = true;
        cs->service_offering = text_of(child_el(so, ns, "name"));
        cs->zone = text_of(child_el(inst, ns, "zone"));
        cs->account = text_of(child_el(owner, ns, "account"));
        cs->domain = text_of(child_el(owner, ns, "domain"));
        cs->project = text_of(child_el(owner, ns, "project"));
        tags = child_el(so, ns, "host_tags");
        for (xmlNode *c = tags ? tags->children : NULL; c; c = c->next)
                n += is_el(c, ns, "tag");
        cs->host_tags = calloc(n + 1, sizeof(char *));
        if (!cs->host_tags)
                return -ENOMEM;
        n = 0;
        for (xmlNode *c = tags ? tags->children : NULL; c; c = c->next)
                if (is_el(c, ns, "tag") && !(cs->host_tags[n++] = text_of(c)))
                        return -ENOMEM;
        rtags = child_el(inst, ns, "resource_tags");
        n = 0;
        for (xmlNode *c = rtags ? rtags->children : NULL; c; c = c->next)
                n += is_el(c, ns, "resource_tag");
        cs->tag_keys = calloc(n + 1, sizeof(char *));
        cs->tag_values = calloc(n + 1, sizeof(char *));
        if (!cs->tag_keys || !cs->tag_values)
                return -ENOMEM;
        for (xmlNode *c = rtags ? rtags->children : NULL; c; c = c->next) {
                _cleanup_xml_ char *key = NULL;
                if (!is_el(c, ns, "resource_tag") || !(key = (char *) xmlGetNoNsProp(c, BAD_CAST "key")))
                        continue;
                cs->tag_keys[cs->n_tags] = strdup(key);
                cs->tag_values[cs->n_tags] = text_of(c);
                if (!cs->tag_keys[cs->n_tags] || !cs->tag_values[cs->n_tags])
                        return -ENOMEM;
                cs->n_tags++;
        }
        return 0;
}

static int read_request(struct gpuh_domxml *d, const xmlNode *el, char **reterr)
{
        struct gpuh_request *nr, *r;
        const char *why = NULL;

        if (d->n_requests >= 16)
                return gpuh_error(reterr, -EBADMSG, "more than 16 gpuhooks:request elements");
        nr = reallocarray(d->requests, d->n_requests + 1, sizeof(*nr));
        if (!nr)
                return -ENOMEM;
        d->requests = nr;
        r = &d->requests[d->n_requests++];
        gpuh_request_init(r);
        for (xmlAttr *a = el->properties; a; a = a->next) {
                _cleanup_xml_ char *v = (char *) xmlNodeListGetString(el->doc, a->children, 1);
                int k;

                if (a->ns)
                        return gpuh_error(reterr, -EBADMSG, "gpuhooks:request: unknown attribute '%s'", (const char *) a->name);
                k = gpuh_request_set(r, (const char *) a->name, v ? v : "", &why);
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        return gpuh_error(reterr, -EBADMSG, "gpuhooks:request %zu: %s: %s", d->n_requests - 1,
                                    (const char *) a->name, why);
        }
        if ((why = gpuh_request_check(r)))
                return gpuh_error(reterr, -EBADMSG, "gpuhooks:request %zu: %s", d->n_requests - 1, why);
        return 0;
}

static char *attr(const xmlNode *n, const char *name)
{
        return (char *) xmlGetNoNsProp(n, BAD_CAST name);
}

/* Our allocation record, as an earlier transform wrote it. */
static int read_record(struct gpuh_domxml *d, const xmlNode *rec, char **reterr)
{
        d->has_record = true;
        for (xmlNode *c = rec->children; c; c = c->next) {
                struct gpuh_alloc *na;
                int r;

                if (!is_el(c, GPUH_DOMXML_NS, GPUH_ALLOC_RECORD_DEVICE))
                        continue;
                if (d->n_record >= GPUH_DOMXML_MAX_DEVICES)
                        return gpuh_error(reterr, -EBADMSG, "gpuhooks:allocation: more than %d gpuhooks:device elements",
                                          GPUH_DOMXML_MAX_DEVICES);
                na = reallocarray(d->record, d->n_record + 1, sizeof(*na));
                if (!na)
                        return -ENOMEM;
                d->record = na;
                r = gpuh_alloc_from_record(c, &d->record[d->n_record], reterr);
                if (r < 0)
                        return r;
                d->n_record++;
        }
        return 0;
}

static int read_wrapper(struct gpuh_domxml *d, xmlNode *w, char **reterr)
{
        d->wrapper = w;
        for (xmlNode *c = w->children; c; c = c->next) {
                int r = 0;

                if (c->type != XML_ELEMENT_NODE)
                        continue;
                if (is_el(c, GPUH_DOMXML_NS, "request"))
                        r = read_request(d, c, reterr);
                else if (is_el(c, GPUH_DOMXML_NS, "allocation"))
                        r = read_record(d, c, reterr);
                else
                        return gpuh_error(reterr, -EBADMSG, "unknown element '%s' in gpuhooks:gpu", (const char *) c->name);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_hostdev(struct gpuh_domxml *d, xmlNode *h)
{
        _cleanup_xml_ char *mode = attr(h, "mode"), *type = attr(h, "type"), *managed = attr(h, "managed");
        struct gpuh_dom_hostdev e = { .node = h, .managed = managed && streq(managed, "yes") };
        xmlNode *src = child_el(h, NULL, "source"), *a = child_el(src, NULL, "address");
        struct gpuh_dom_hostdev *nh;

        if ((mode && !streq(mode, "subsystem")) || !type || !a)
                return 0;
        if (streq(type, "pci")) {
                _cleanup_xml_ char *dom = attr(a, "domain"), *bus = attr(a, "bus"), *slot = attr(a, "slot"),
                        *fn = attr(a, "function");
                if (gpuh_pci_addr_from_libvirt(dom, bus, slot, fn, &e.addr) < 0)
                        return 0;
                e.agent_split = gpuh_agent_split_detect(dom, bus, slot, fn, &e.split);
        } else if (streq(type, "mdev")) {
                _cleanup_xml_ char *uuid = attr(a, "uuid");
                if (!uuid || !gpuh_uuid_is_valid(uuid))
                        return 0;
                e.is_mdev = true;
                for (size_t i = 0; i <= GPUH_UUID_STR_LEN; i++)
                        e.uuid[i] = (char) tolower((unsigned char) uuid[i]);
        } else
                return 0;
        /* grown to 4, 8, 16, ...: at each power of two the array is full */
        if (d->n_hostdevs < 4 ? d->n_hostdevs == 0 : (d->n_hostdevs & (d->n_hostdevs - 1)) == 0) {
                nh = reallocarray(d->hostdevs, d->n_hostdevs < 4 ? 4 : 2 * d->n_hostdevs, sizeof(*nh));
                if (!nh)
                        return -ENOMEM;
                d->hostdevs = nh;
        }
        d->hostdevs[d->n_hostdevs++] = e;
        return 0;
}

/* A DOCTYPE in the prolog (after the declaration, comments and processing instructions)?
 * Refused before parsing: entity declarations, and so XXE and expansion bombs, live there. */
static bool has_doctype(const char *buf, size_t len)
{
        const char *p = buf, *end = buf + len;

        for (;;) {
                while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
                        p++;
                if (end - p >= 3 && (unsigned char) p[0] == 0xef && (unsigned char) p[1] == 0xbb &&
                    (unsigned char) p[2] == 0xbf) {
                        p += 3;         /* UTF-8 BOM */
                        continue;
                }
                if (end - p >= 2 && p[0] == '<' && p[1] == '?') {
                        const char *q = memmem(p, (size_t) (end - p), "?>", 2);
                        if (!q)
                                return false;
                        p = q + 2;
                        continue;
                }
                if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
                        const char *q = memmem(p + 4, (size_t) (end - p - 4), "-->", 3);
                        if (!q)
                                return false;
                        p = q + 3;
                        continue;
                }
                return end - p >= 9 && memcmp(p, "<!DOCTYPE", 9) == 0;
        }
}

struct errbuf {
        char msg[200];
        int line;
};

static void capture_error(void *ctx, const xmlError *err)
{
        struct errbuf *e = ctx;

        if (e->msg[0] || !err || !err->message)
                return;
        snprintf(e->msg, sizeof(e->msg), "%s", err->message);
        e->msg[strcspn(e->msg, "\n")] = '\0';
        e->line = err->line;
}

int gpuh_domxml_parse(const char *buf, size_t len, struct gpuh_domxml **ret, char **reterr)
{
        _cleanup_(domxml_freep) struct gpuh_domxml *d = NULL;
        struct errbuf eb = { .msg = "" };
        struct cpuset_buf cb = { 0 };
        xmlNode *root, *first_meta = NULL;
        const char *p = buf;
        int r;

        if (reterr)
                *reterr = NULL;
        if (len > GPUH_DOMXML_MAX_BYTES)
                return gpuh_error(reterr, -E2BIG, "domain XML larger than %u bytes", GPUH_DOMXML_MAX_BYTES);
        if (len == 0)
                return gpuh_error(reterr, -EBADMSG, "domain XML is empty");
        if (has_doctype(buf, len))
                return gpuh_error(reterr, -EBADMSG, "domain XML with a DOCTYPE is not accepted");
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        xmlSetStructuredErrorFunc(&eb, (xmlStructuredErrorFunc) capture_error);
        d->doc = xmlReadMemory(buf, (int) len, "domain.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        xmlSetStructuredErrorFunc(NULL, NULL);
        if (!d->doc)
                return gpuh_error(reterr, -EBADMSG, "domain XML is not well-formed (line %d: %s)", eb.line,
                            eb.msg[0] ? eb.msg : "parse error");
        if (d->doc->intSubset || d->doc->extSubset)
                return gpuh_error(reterr, -EBADMSG, "domain XML with a DOCTYPE is not accepted");
        while (p < buf + len && isspace((unsigned char) *p))
                p++;
        d->has_decl = (size_t) (buf + len - p) >= 5 && memcmp(p, "<?xml", 5) == 0;

        root = xmlDocGetRootElement(d->doc);
        if (!is_el(root, NULL, "domain"))
                return gpuh_error(reterr, -EBADMSG, "not a libvirt domain: the root element is not <domain>");
        {
                /* exactly as libvirt reads it: not trimmed (domname.h) */
                _cleanup_xml_ char *n = (char *) xmlNodeGetContent(child_el(root, NULL, "name"));
                if (n && !(d->name = strdup(n)))
                        return -ENOMEM;
        }
        if (!d->name || !gpuh_domname_ok(d->name))
                return gpuh_error(reterr, -EBADMSG, "domain XML has no usable <name> (libvirt's rules: 1 to %d bytes, "
                                  "no '/', no newline; not '.' or '..')", GPUH_DOMNAME_MAX);
        {
                _cleanup_free_ char *u = text_of(child_el(root, NULL, "uuid"));
                if (u && (r = parse_uuid(u, &d->uuid)) < 0)
                        return r == -ENOMEM ? r : gpuh_error(reterr, -EBADMSG, "domain XML has an invalid <uuid>");
        }

        for (xmlNode *c = root->children; c; c = c->next) {
                if (is_el(c, NULL, "vcpu")) {
                        _cleanup_xml_ char *set = attr(c, "cpuset");
                        if ((r = add_cpuset(d, &cb, set)) < 0)
                                return r;
                } else if (is_el(c, NULL, "cputune")) {
                        for (xmlNode *pin = c->children; pin; pin = pin->next) {
                                _cleanup_xml_ char *set = is_el(pin, NULL, "vcpupin") ? attr(pin, "cpuset") : NULL;
                                if ((r = add_cpuset(d, &cb, set)) < 0)
                                        return r;
                        }
                } else if (is_el(c, NULL, "metadata")) {
                        if (!first_meta)
                                first_meta = c;
                        for (xmlNode *m = c->children; m; m = m->next) {
                                if (is_el(m, GPUH_CLOUDSTACK_NS, "instance") && !d->cs.present &&
                                    (r = read_cs_instance(&d->cs, m)) < 0)
                                        return r;
                                /* ours only in the first <metadata>: libvirt keeps no other */
                                if (c == first_meta && is_el(m, GPUH_DOMXML_NS, "gpu")) {
                                        if (d->wrapper)
                                                return gpuh_error(reterr, -EBADMSG, "more than one gpuhooks:gpu element");
                                        if ((r = read_wrapper(d, m, reterr)) < 0)
                                                return r;
                                }
                        }
                } else if (is_el(c, NULL, "devices")) {
                        for (xmlNode *h = c->children; h; h = h->next)
                                if (is_el(h, NULL, "hostdev") && (r = add_hostdev(d, h)) < 0)
                                        return r;
                }
        }
        *ret = TAKE_PTR(d);
        return 0;
}

/* ---- changing the document ---- */

/* The whitespace before @parent's last element child ("\n    "), to indent new children alike. */
static xmlChar *child_indent(const xmlNode *parent)
{
        const xmlNode *last = parent->last;

        /* from the end: appending to a <devices> of 20,000 children must not walk them each time */
        while (last && last->type != XML_ELEMENT_NODE)
                last = last->prev;
        if (last && last->prev && last->prev->type == XML_TEXT_NODE && xmlIsBlankNode((xmlNode *) last->prev))
                return xmlStrdup(last->prev->content);
        return NULL;
}

/* Append @el as the last element child of @parent, indented like its siblings. */
static int append_child(xmlNode *parent, xmlNode *el)
{
        xmlChar *indent = child_indent(parent);
        xmlNode *tail = parent->last;

        if (indent && tail && tail->type == XML_TEXT_NODE && xmlIsBlankNode(tail)) {
                xmlNode *ws = xmlNewDocText(parent->doc, indent);
                xmlFree(indent);
                /* element first: libxml2 merges a text node added next to another text node */
                if (!ws || !xmlAddPrevSibling(tail, el) || !xmlAddPrevSibling(el, ws))
                        return -ENOMEM;
                return 0;
        }
        xmlFree(indent);
        return xmlAddChild(parent, el) ? 0 : -ENOMEM;
}

static xmlNode *new_el(xmlDoc *doc, xmlNs *ns, const char *name)
{
        return xmlNewDocNode(doc, ns, BAD_CAST name, NULL);
}

static bool set(xmlNode *n, const char *name, const char *value)
{
        return xmlSetProp(n, BAD_CAST name, BAD_CAST value) != NULL;
}

/* domain='0xDDDD' bus='0xBB' slot='0xSS' function='0xF' on @addr, as libvirt formats them. */
static bool set_pci_address(xmlNode *addr, const struct gpuh_pci_addr *a)
{
        char v[16];

        snprintf(v, sizeof(v), "0x%04x", (unsigned) a->domain);
        if (!set(addr, "domain", v))
                return false;
        snprintf(v, sizeof(v), "0x%02x", a->bus);
        if (!set(addr, "bus", v))
                return false;
        snprintf(v, sizeof(v), "0x%02x", a->slot);
        if (!set(addr, "slot", v))
                return false;
        snprintf(v, sizeof(v), "0x%x", a->func);
        return set(addr, "function", v);
}

int gpuh_domxml_set_hostdev_addr(struct gpuh_domxml *d, size_t i, const struct gpuh_pci_addr *a)
{
        struct gpuh_dom_hostdev *h;
        xmlNode *addr;

        if (i >= d->n_hostdevs || d->hostdevs[i].is_mdev)
                return -EINVAL;
        h = &d->hostdevs[i];
        addr = child_el(child_el(h->node, NULL, "source"), NULL, "address");
        if (!addr)
                return -EINVAL;
        if (!set_pci_address(addr, a))
                return -ENOMEM;
        h->addr = *a;
        h->agent_split = false;
        return 0;
}

static xmlNode *pci_hostdev(xmlDoc *doc, const struct gpuh_pci_addr *a, bool managed)
{
        xmlNode *h = new_el(doc, NULL, "hostdev"), *drv, *src, *addr;

        if (!h)
                return NULL;
        drv = xmlNewChild(h, NULL, BAD_CAST "driver", NULL);
        src = xmlNewChild(h, NULL, BAD_CAST "source", NULL);
        addr = src ? xmlNewChild(src, NULL, BAD_CAST "address", NULL) : NULL;
        if (!drv || !addr || !set(h, "mode", "subsystem") || !set(h, "type", "pci") ||
            !set(h, "managed", managed ? "yes" : "no") || !set(drv, "name", "vfio"))
                goto fail;
        if (!set_pci_address(addr, a))
                goto fail;
        return h;
fail:
        xmlFreeNode(h);
        return NULL;
}

static xmlNode *mdev_hostdev(xmlDoc *doc, const char *uuid, bool display)
{
        xmlNode *h = new_el(doc, NULL, "hostdev"), *src, *addr;

        if (!h)
                return NULL;
        src = xmlNewChild(h, NULL, BAD_CAST "source", NULL);
        addr = src ? xmlNewChild(src, NULL, BAD_CAST "address", NULL) : NULL;
        if (!addr || !set(h, "mode", "subsystem") || !set(h, "type", "mdev") || !set(h, "model", "vfio-pci") ||
            !set(h, "display", display ? "on" : "off") || (display && !set(h, "ramfb", "on")) ||
            !set(addr, "uuid", uuid)) {
                xmlFreeNode(h);
                return NULL;
        }
        return h;
}

/* Our wrapper, in the first <metadata> (created, or moved there: libvirt keeps only the first). */
static xmlNode *ensure_wrapper(struct gpuh_domxml *d)
{
        xmlNode *root = xmlDocGetRootElement(d->doc), *meta = child_el(root, NULL, "metadata");

        if (!meta) {
                xmlNode *after = child_el(root, NULL, "uuid");
                if (!after)
                        after = child_el(root, NULL, "name");
                meta = new_el(d->doc, NULL, "metadata");
                if (!meta)
                        return NULL;
                if (after) {
                        xmlNode *ws = after->prev && after->prev->type == XML_TEXT_NODE &&
                                      xmlIsBlankNode(after->prev) ? xmlCopyNode(after->prev, 1) : NULL;
                        if (!xmlAddNextSibling(after, meta))
                                return NULL;
                        if (ws && !xmlAddPrevSibling(meta, ws))
                                return NULL;
                } else if (!xmlAddChild(root, meta))
                        return NULL;
        }
        if (d->wrapper && d->wrapper->parent == meta)
                return d->wrapper;
        if (d->wrapper)
                xmlUnlinkNode(d->wrapper);
        else {
                xmlNs *ns;
                d->wrapper = new_el(d->doc, NULL, "gpu");
                if (!d->wrapper || !(ns = xmlNewNs(d->wrapper, BAD_CAST GPUH_DOMXML_NS, BAD_CAST "gpuhooks")))
                        return NULL;
                xmlSetNs(d->wrapper, ns);
        }
        return append_child(meta, d->wrapper) < 0 ? NULL : d->wrapper;
}

int gpuh_domxml_apply(struct gpuh_domxml *d, const struct gpuh_alloc *allocs, size_t n, bool managed_by_libvirt)
{
        xmlNode *root = xmlDocGetRootElement(d->doc), *devices = NULL, *wrapper, *record;
        xmlNs *ns;

        for (xmlNode *c = root->children; c; c = c->next)
                if (is_el(c, NULL, "devices"))
                        devices = c;
        if (!devices)
                return -EBADMSG;

        /* CloudStack's own GPU hostdevs: kept, completed. */
        for (size_t i = 0; i < d->n_hostdevs; i++) {
                struct gpuh_dom_hostdev *h = &d->hostdevs[i];
                bool ours = false, vendor = false;

                for (size_t k = 0; k < n; k++) {
                        const struct gpuh_alloc *a = &allocs[k];
                        if (a->request != GPUH_ALLOC_REQUEST_CLOUDSTACK)
                                continue;
                        if ((h->is_mdev && a->kind == GPUH_ALLOC_MDEV && streq(a->uuid, h->uuid)) ||
                            (!h->is_mdev && a->kind != GPUH_ALLOC_MDEV && gpuh_pci_addr_cmp(&a->addr, &h->addr) == 0)) {
                                ours = true;
                                vendor = a->kind == GPUH_ALLOC_VENDOR_VGPU;
                        }
                }
                if (!ours)
                        continue;
                if (h->is_mdev) {
                        _cleanup_xml_ char *model = attr(h->node, "model");
                        if (!model && !set(h->node, "model", "vfio-pci"))
                                return -ENOMEM;
                } else if (!set(h->node, "managed", managed_by_libvirt && !vendor ? "yes" : "no"))
                        return -ENOMEM;
        }

        /* New hostdevs, after what the last <devices> holds. */
        for (size_t k = 0; k < n; k++) {
                const struct gpuh_alloc *a = &allocs[k];
                bool managed = managed_by_libvirt && a->kind != GPUH_ALLOC_VENDOR_VGPU;
                xmlNode *h;

                if (a->request == GPUH_ALLOC_REQUEST_CLOUDSTACK) {
                        /* only its companions are new */
                        for (size_t c = 0; c < a->n_companions; c++)
                                if (!(h = pci_hostdev(d->doc, &a->companions[c], managed)) || append_child(devices, h) < 0)
                                        return -ENOMEM;
                        continue;
                }
                h = a->kind == GPUH_ALLOC_MDEV ? mdev_hostdev(d->doc, a->uuid, a->display)
                                               : pci_hostdev(d->doc, &a->addr, managed);
                if (!h || append_child(devices, h) < 0)
                        return -ENOMEM;
                for (size_t c = 0; c < a->n_companions; c++)
                        if (!(h = pci_hostdev(d->doc, &a->companions[c], managed)) || append_child(devices, h) < 0)
                                return -ENOMEM;
        }

        /* The allocation record, replacing an older one. */
        wrapper = ensure_wrapper(d);
        if (!wrapper)
                return -ENOMEM;
        for (xmlNode *c = wrapper->children, *next; c; c = next) {
                next = c->next;
                if (is_el(c, GPUH_DOMXML_NS, "allocation")) {
                        if (c->prev && c->prev->type == XML_TEXT_NODE && xmlIsBlankNode(c->prev)) {
                                xmlNode *ws = c->prev;
                                xmlUnlinkNode(ws);
                                xmlFreeNode(ws);
                        }
                        xmlUnlinkNode(c);
                        xmlFreeNode(c);
                }
        }
        ns = xmlSearchNsByHref(d->doc, wrapper, BAD_CAST GPUH_DOMXML_NS);
        record = new_el(d->doc, ns, "allocation");
        if (!record || !set(record, "version", "1"))
                return -ENOMEM;
        for (size_t k = 0; k < n; k++) {
                xmlNode *dev;
                if (gpuh_alloc_to_record(d->doc, ns, &allocs[k], managed_by_libvirt, &dev) < 0)
                        return -ENOMEM;
                if (!xmlAddChild(record, dev)) {
                        xmlFreeNode(dev);
                        return -ENOMEM;
                }
        }
        if (append_child(wrapper, record) < 0)
                return -ENOMEM;
        d->has_record = true;
        return 0;
}

int gpuh_domxml_serialize(struct gpuh_domxml *d, char **ret, size_t *ret_len)
{
        xmlBuffer *buf = xmlBufferCreate();
        xmlSaveCtxt *ctx;
        char *out;
        int opts = d->has_decl ? 0 : XML_SAVE_NO_DECL;

        if (!buf)
                return -ENOMEM;
        ctx = xmlSaveToBuffer(buf, "UTF-8", opts);
        if (!ctx) {
                xmlBufferFree(buf);
                return -ENOMEM;
        }
        if (xmlSaveDoc(ctx, d->doc) < 0) {
                xmlSaveClose(ctx);
                xmlBufferFree(buf);
                return -EIO;
        }
        xmlSaveClose(ctx);
        out = strndup((const char *) xmlBufferContent(buf), (size_t) xmlBufferLength(buf));
        *ret_len = (size_t) xmlBufferLength(buf);
        xmlBufferFree(buf);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}
