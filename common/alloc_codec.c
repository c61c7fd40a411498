/* SPDX-License-Identifier: Apache-2.0 */
/* alloc_codec.c: a device of an allocation as the record (libxml2), a reservation and --explain
 * (json-c) write it, from one table of field names and one of the fields each kind carries. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <uuid/uuid.h>

#include "alloc_codec.h"
#include "log.h"
#include "macro.h"

enum field {
        F_END,                  /* ends a kind's list */
        F_KIND,
        F_ADDRESS,
        F_PARENT,
        F_UUID,
        F_MDEV_TYPE,
        F_NEW,
        F_VGPU_TYPE,
        F_REQUEST,
        F_DISPLAY,
        F_COMPANIONS,
        F_MANAGED,
        F_GI_PROFILE,
        F_GI_PLACEMENT,
        _F_MAX,
};

/* Each field's name in the record (an attribute of <gpuhooks:device>; for the companions the
 * child element, whose `address` holds one) and in JSON (reservations, --explain); what a
 * reader's error calls it when not its name. The readers take the fields in this order, so the
 * first malformed one in it is the one reported. */
static const struct {
        const char *xml, *json, *what;
        bool read;              /* false: written for the reader's eye, never read back */
} fields[_F_MAX] = {
        [F_KIND]        = { "kind", "kind", "device kind", true },
        [F_ADDRESS]     = { "address", "address", NULL, true },
        [F_PARENT]      = { "parent", "parent", NULL, true },
        [F_UUID]        = { "uuid", "uuid", NULL, true },
        [F_MDEV_TYPE]   = { "mdev-type", "mdev_type", NULL, true },
        [F_NEW]         = { "new", "new", NULL, true },
        [F_VGPU_TYPE]   = { "vgpu-type", "vgpu_type", NULL, true },
        [F_REQUEST]     = { "request", "request", NULL, true },
        [F_DISPLAY]     = { "display", "display", NULL, true },
        [F_COMPANIONS]  = { "companion", "companions", "companion address", true },
        [F_MANAGED]     = { "managed", NULL, NULL, false },
        [F_GI_PROFILE]  = { "gi-profile", "gi_profile", "GPU-instance profile", true },
        [F_GI_PLACEMENT] = { "gi-placement", "gi_placement", "GPU-instance placement", true },
};

#define KIND_FIELDS_MAX 11

/* The fields each kind carries in each form, in the order they are written. */
static const enum field record_fields[_GPUH_ALLOC_KIND_MAX][KIND_FIELDS_MAX] = {
        [GPUH_ALLOC_PCI]         = { F_KIND, F_ADDRESS, F_MANAGED, F_REQUEST, F_COMPANIONS },
        [GPUH_ALLOC_VF]          = { F_KIND, F_ADDRESS, F_PARENT, F_MANAGED, F_REQUEST, F_COMPANIONS },
        [GPUH_ALLOC_MDEV]        = { F_KIND, F_UUID, F_PARENT, F_MDEV_TYPE, F_NEW, F_GI_PROFILE, F_GI_PLACEMENT,
                                     F_DISPLAY, F_REQUEST, F_COMPANIONS },
        [GPUH_ALLOC_VENDOR_VGPU] = { F_KIND, F_ADDRESS, F_PARENT, F_MANAGED, F_VGPU_TYPE, F_GI_PROFILE,
                                     F_GI_PLACEMENT, F_REQUEST, F_COMPANIONS },
};

static const enum field json_fields[_GPUH_ALLOC_KIND_MAX][KIND_FIELDS_MAX] = {
        [GPUH_ALLOC_PCI]         = { F_KIND, F_ADDRESS, F_REQUEST, F_COMPANIONS },
        [GPUH_ALLOC_VF]          = { F_KIND, F_ADDRESS, F_PARENT, F_REQUEST, F_COMPANIONS },
        [GPUH_ALLOC_MDEV]        = { F_KIND, F_PARENT, F_UUID, F_MDEV_TYPE, F_NEW, F_GI_PROFILE, F_GI_PLACEMENT,
                                     F_DISPLAY, F_REQUEST, F_COMPANIONS },
        [GPUH_ALLOC_VENDOR_VGPU] = { F_KIND, F_ADDRESS, F_PARENT, F_VGPU_TYPE, F_GI_PROFILE, F_GI_PLACEMENT,
                                     F_REQUEST, F_COMPANIONS },
};

static const enum field explain_fields[_GPUH_ALLOC_KIND_MAX][KIND_FIELDS_MAX] = {
        [GPUH_ALLOC_PCI]         = { F_KIND, F_ADDRESS },
        [GPUH_ALLOC_VF]          = { F_KIND, F_ADDRESS },
        [GPUH_ALLOC_MDEV]        = { F_KIND, F_PARENT, F_UUID, F_MDEV_TYPE, F_GI_PROFILE, F_GI_PLACEMENT },
        [GPUH_ALLOC_VENDOR_VGPU] = { F_KIND, F_ADDRESS, F_GI_PROFILE, F_GI_PLACEMENT },
};

/* NVIDIA's vGPU type IDs (nvidia/creatable_vgpu_types) are small positive numbers. */
#define VGPU_TYPE_MAX 0xffffffUL

#define TEXT_MAX 64             /* the longest text a field has: an mdev type name, 63 bytes */

static const enum field *kind_fields(const enum field table[][KIND_FIELDS_MAX], enum gpuh_alloc_kind k)
{
        static const enum field none[] = { F_KIND, F_END };

        return (unsigned) k < _GPUH_ALLOC_KIND_MAX ? table[k] : none;
}

/* ---- writing ---- */

/* @f's value as text, as the record (and for the string fields JSON too) writes it, in @buf;
 * NULL: the field is left out for this device. Not for the companions. */
static const char *field_text(enum field f, const struct gpuh_alloc *a, bool managed, char buf[static TEXT_MAX])
{
        switch (f) {
        case F_KIND:
                return gpuh_alloc_kind_to_string(a->kind);
        case F_ADDRESS:
                return gpuh_pci_addr_format(&a->addr, buf);
        case F_PARENT:
                return gpuh_pci_addr_format(&a->parent, buf);
        case F_UUID:
                return a->uuid;
        case F_MDEV_TYPE:
                return a->mdev_type;
        case F_NEW:
                return a->mdev_new ? "yes" : "no";
        case F_VGPU_TYPE:
                snprintf(buf, TEXT_MAX, "%u", a->vgpu_type);
                return buf;
        case F_REQUEST:
                if (a->request == GPUH_ALLOC_REQUEST_CLOUDSTACK)
                        return "cloudstack";
                snprintf(buf, TEXT_MAX, "%d", a->request);
                return buf;
        case F_DISPLAY:
                return a->display ? "on" : NULL;
        case F_MANAGED:
                return managed && a->kind != GPUH_ALLOC_VENDOR_VGPU ? "yes" : "no";
        case F_GI_PROFILE:
                if (!a->gi)
                        return NULL;
                snprintf(buf, TEXT_MAX, "%u", a->gi_profile);
                return buf;
        case F_GI_PLACEMENT:
                /* as nvidia-smi writes a placement: START:SIZE */
                if (!a->gi)
                        return NULL;
                snprintf(buf, TEXT_MAX, "%u:%u", a->gi_start, a->gi_size);
                return buf;
        default:
                return NULL;
        }
}

int gpuh_alloc_to_record(xmlDoc *doc, xmlNs *ns, const struct gpuh_alloc *a, bool managed_by_libvirt,
                         xmlNode **ret)
{
        xmlNode *dev = xmlNewDocNode(doc, ns, BAD_CAST GPUH_ALLOC_RECORD_DEVICE, NULL);
        char buf[TEXT_MAX];

        if (!dev)
                return -ENOMEM;
        for (const enum field *f = kind_fields(record_fields, a->kind); *f != F_END; f++) {
                const char *v;

                if (*f == F_COMPANIONS) {
                        for (size_t i = 0; i < a->n_companions; i++) {
                                xmlNode *c = xmlNewChild(dev, ns, BAD_CAST fields[F_COMPANIONS].xml, NULL);
                                if (!c || !xmlSetProp(c, BAD_CAST "address",
                                                      BAD_CAST gpuh_pci_addr_format(&a->companions[i], buf)))
                                        goto fail;
                        }
                        continue;
                }
                v = field_text(*f, a, managed_by_libvirt, buf);
                if (v && !xmlSetProp(dev, BAD_CAST fields[*f].xml, BAD_CAST v))
                        goto fail;
        }
        *ret = dev;
        return 0;
fail:
        xmlFreeNode(dev);
        return -ENOMEM;
}

/* Adds @f of @a to @o, unless this device leaves it out. */
static int json_put(json_object *o, enum field f, const struct gpuh_alloc *a)
{
        char buf[TEXT_MAX];
        json_object *v;

        switch (f) {
        case F_NEW:
                v = json_object_new_boolean(a->mdev_new);
                break;
        case F_DISPLAY:
                v = json_object_new_boolean(a->display);
                break;
        case F_VGPU_TYPE:
                v = json_object_new_int64(a->vgpu_type);
                break;
        case F_GI_PROFILE:
                if (!a->gi)
                        return 0;
                v = json_object_new_int64(a->gi_profile);
                break;
        case F_GI_PLACEMENT:
                if (!a->gi)
                        return 0;
                v = json_object_new_string(field_text(f, a, false, buf));
                break;
        case F_REQUEST:
                if (a->request == GPUH_ALLOC_REQUEST_CLOUDSTACK)
                        return 0;
                v = json_object_new_int(a->request);
                break;
        case F_COMPANIONS:
                v = json_object_new_array();
                for (size_t i = 0; v && i < a->n_companions; i++) {
                        json_object *c = json_object_new_string(gpuh_pci_addr_format(&a->companions[i], buf));
                        if (!c || json_object_array_add(v, c) < 0) {
                                json_object_put(c);
                                json_object_put(v);
                                return -ENOMEM;
                        }
                }
                break;
        default:
                v = json_object_new_string(field_text(f, a, false, buf));
                break;
        }
        if (!v || json_object_object_add(o, fields[f].json, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int json_put_all(json_object *o, const enum field table[][KIND_FIELDS_MAX], const struct gpuh_alloc *a)
{
        for (const enum field *f = kind_fields(table, a->kind); *f != F_END; f++) {
                int r = json_put(o, *f, a);
                if (r < 0)
                        return r;
        }
        return 0;
}

int gpuh_alloc_to_json(const struct gpuh_alloc *a, json_object **ret)
{
        json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        r = json_put_all(o, json_fields, a);
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        *ret = o;
        return 0;
}

int gpuh_alloc_explain(const struct gpuh_alloc *a, json_object *o)
{
        return json_put_all(o, explain_fields, a);
}

/* ---- reading ---- */

/* A decimal number below 2^32, nothing else. */
static int parse_u32(const char *s, char **end, unsigned *ret)
{
        unsigned long long v;

        errno = 0;
        v = strtoull(s, end, 10);
        if (!isdigit((unsigned char) s[0]) || errno || v > 0xffffffffULL)
                return -EBADMSG;
        *ret = (unsigned) v;
        return 0;
}

static int vgpu_type_set(struct gpuh_alloc *a, uint64_t t)
{
        if (t == 0 || t > VGPU_TYPE_MAX)
                return -EBADMSG;
        a->vgpu_type = (unsigned) t;
        return 0;
}

/* Sets @f of @a from its text @s, as the record writes it; one companion for F_COMPANIONS.
 * Returns: 0; -EBADMSG. */
static int field_from_text(enum field f, const char *s, struct gpuh_alloc *a)
{
        switch (f) {
        case F_KIND: {
                int k = gpuh_alloc_kind_from_string(s);
                if (k < 0)
                        return -EBADMSG;
                a->kind = (enum gpuh_alloc_kind) k;
                return 0;
        }
        case F_ADDRESS:
                return gpuh_pci_addr_parse(s, &a->addr) < 0 ? -EBADMSG : 0;
        case F_PARENT:
                return gpuh_pci_addr_parse(s, &a->parent) < 0 ? -EBADMSG : 0;
        case F_UUID: {
                uuid_t u;
                if (!gpuh_uuid_is_valid(s) || uuid_parse(s, u) < 0)
                        return -EBADMSG;
                uuid_unparse_lower(u, a->uuid);
                return 0;
        }
        case F_MDEV_TYPE:
                if (!gpuh_mdev_type_name_ok(s))
                        return -EBADMSG;
                snprintf(a->mdev_type, sizeof(a->mdev_type), "%s", s);
                return 0;
        case F_NEW:
                a->mdev_new = streq(s, "yes");
                return 0;
        case F_VGPU_TYPE: {
                unsigned long long t;
                char *end;

                errno = 0;
                t = strtoull(s, &end, 10);
                if (!isdigit((unsigned char) s[0]) || *end || errno)
                        return -EBADMSG;
                return vgpu_type_set(a, t);
        }
        case F_GI_PROFILE: {
                char *end;
                if (parse_u32(s, &end, &a->gi_profile) < 0 || *end)
                        return -EBADMSG;
                a->gi = true;
                return 0;
        }
        case F_GI_PLACEMENT: {
                char *end;
                if (parse_u32(s, &end, &a->gi_start) < 0 || *end != ':' ||
                    parse_u32(end + 1, &end, &a->gi_size) < 0 || *end || a->gi_size == 0)
                        return -EBADMSG;
                return 0;
        }
        case F_REQUEST:
                a->request = streq(s, "cloudstack") ? GPUH_ALLOC_REQUEST_CLOUDSTACK : atoi(s);
                return 0;
        case F_DISPLAY:
                a->display = streq(s, "on");
                return 0;
        case F_COMPANIONS:
                if (a->n_companions >= GPUH_ALLOC_MAX_COMPANIONS)
                        return 0;
                if (gpuh_pci_addr_parse(s, &a->companions[a->n_companions]) < 0)
                        return -EBADMSG;
                a->n_companions++;
                return 0;
        default:
                return 0;
        }
}

/* A GPU instance needs both its profile and its placement: the field missing, or _F_MAX. */
static enum field gi_incomplete(const struct gpuh_alloc *a)
{
        if (a->gi && a->gi_size == 0)
                return F_GI_PLACEMENT;
        if (!a->gi && a->gi_size > 0)
                return F_GI_PROFILE;
        return _F_MAX;
}

static int bad(char **reterr, const char *form, enum field f, const char *name)
{
        return gpuh_error(reterr, -EBADMSG, "%s: bad %s", form, fields[f].what ? fields[f].what : name);
}

static char *xml_attr(const xmlNode *n, const char *name)
{
        return (char *) xmlGetNoNsProp(n, BAD_CAST name);
}

static void xml_freep(char **p)
{
        if (*p)
                xmlFree(*p);
}

static bool is_companion(const xmlNode *c, const xmlNode *dev)
{
        if (c->type != XML_ELEMENT_NODE || !xmlStrEqual(c->name, BAD_CAST fields[F_COMPANIONS].xml))
                return false;
        if (!dev->ns || !c->ns)
                return !dev->ns && !c->ns;
        return xmlStrEqual(c->ns->href, dev->ns->href);
}

/* The <gpuhooks:companion address=…/> children of @dev, into @a. */
static int record_companions(const xmlNode *dev, struct gpuh_alloc *a)
{
        for (const xmlNode *c = dev->children; c; c = c->next) {
                _cleanup_(xml_freep) char *v = NULL;

                if (!is_companion(c, dev) || a->n_companions >= GPUH_ALLOC_MAX_COMPANIONS)
                        continue;
                v = xml_attr(c, "address");
                if (!v || field_from_text(F_COMPANIONS, v, a) < 0)
                        return -EBADMSG;
        }
        return 0;
}

int gpuh_alloc_from_record(const xmlNode *dev, struct gpuh_alloc *ret, char **reterr)
{
        struct gpuh_alloc a = { .request = GPUH_ALLOC_REQUEST_CLOUDSTACK };

        for (enum field f = F_KIND; f < _F_MAX; f++) {
                _cleanup_(xml_freep) char *v = NULL;
                int r;

                if (!fields[f].read)
                        continue;
                if (f == F_COMPANIONS)
                        r = record_companions(dev, &a);
                else {
                        v = xml_attr(dev, fields[f].xml);
                        /* a kind is never absent: the kind of no name is refused */
                        r = v || f == F_KIND ? field_from_text(f, v, &a) : 0;
                }
                if (r < 0)
                        return bad(reterr, "gpuhooks:allocation", f, fields[f].xml);
        }
        if (gi_incomplete(&a) != _F_MAX)
                return bad(reterr, "gpuhooks:allocation", gi_incomplete(&a), NULL);
        *ret = a;
        return 0;
}

/* Sets @f of @a from @v, the value of its key in a reservation's device. */
static int field_from_json(enum field f, json_object *v, struct gpuh_alloc *a)
{
        switch (f) {
        case F_NEW:
                a->mdev_new = json_object_get_boolean(v);
                return 0;
        case F_DISPLAY:
                a->display = json_object_get_boolean(v);
                return 0;
        case F_VGPU_TYPE:
                if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
                        return -EBADMSG;
                return vgpu_type_set(a, (uint64_t) json_object_get_int64(v));
        case F_GI_PROFILE:
                if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
                    json_object_get_int64(v) > 0xffffffffLL)
                        return -EBADMSG;
                a->gi_profile = (unsigned) json_object_get_int64(v);
                a->gi = true;
                return 0;
        case F_REQUEST:
                if (json_object_is_type(v, json_type_int))
                        a->request = json_object_get_int(v);
                return 0;
        case F_COMPANIONS:
                if (!json_object_is_type(v, json_type_array))
                        return 0;
                for (size_t i = 0; i < json_object_array_length(v) && a->n_companions < GPUH_ALLOC_MAX_COMPANIONS; i++) {
                        json_object *c = json_object_array_get_idx(v, i);
                        if (!json_object_is_type(c, json_type_string) ||
                            field_from_text(f, json_object_get_string(c), a) < 0)
                                return -EBADMSG;
                }
                return 0;
        default:
                /* a string field of another type is absent; the kind never is */
                if (!json_object_is_type(v, json_type_string))
                        return f == F_KIND ? -EBADMSG : 0;
                return field_from_text(f, json_object_get_string(v), a);
        }
}

int gpuh_alloc_from_json(json_object *o, struct gpuh_alloc *ret, char **reterr)
{
        const char *form = "reservation device";
        struct gpuh_alloc a = { .request = GPUH_ALLOC_REQUEST_CLOUDSTACK };

        if (!json_object_is_type(o, json_type_object))
                return gpuh_error(reterr, -EBADMSG, "%s: not a JSON object", form);
        for (enum field f = F_KIND; f < _F_MAX; f++) {
                json_object *v = NULL;

                if (!fields[f].read)
                        continue;
                if (!json_object_object_get_ex(o, fields[f].json, &v) && f != F_KIND)
                        continue;
                if (field_from_json(f, v, &a) < 0)
                        return bad(reterr, form, f, fields[f].json);
        }
        if (gi_incomplete(&a) != _F_MAX)
                return bad(reterr, form, gi_incomplete(&a), NULL);
        *ret = a;
        return 0;
}
