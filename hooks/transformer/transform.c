/* SPDX-License-Identifier: Apache-2.0 */
/* transform.c: the transformer's pipeline, from XML in to XML out. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "agent_addr.h"
#include "alloc_codec.h"
#include "clock.h"
#include "cpuset.h"
#include "domxml.h"
#include "error_json.h"
#include "log.h"
#include "occupancy.h"
#include "quarantine.h"
#include "reserve.h"
#include "rule.h"
#include "select.h"
#include "sysfs.h"
#include "transform.h"
#include "vgpu_names.h"

/* @s for an error line: at most @size - 4 bytes of it (the joined cpusets of 150,000
 * <vcpupin>s are megabytes), control characters as '?', "..." when cut. */
static const char *one_line(const char *s, char *buf, size_t size)
{
        size_t n = 0;

        for (; s[n] && n + 4 < size; n++)
                buf[n] = (unsigned char) s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n];
        strcpy(buf + n, s[n] ? "..." : "");
        return buf;
}

/* What was asked, in one line: a reservation is reused only for the same requests. */
static char *signature(const struct gpuh_domxml *d, const struct gpuh_request *rq, size_t n, bool cloudstack)
{
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);

        if (!f)
                return NULL;
        if (cloudstack) {
                char a[GPUH_PCI_ADDR_MAX];
                fputs("cloudstack", f);
                for (size_t i = 0; i < d->n_hostdevs; i++)
                        fprintf(f, " %s", d->hostdevs[i].is_mdev ? d->hostdevs[i].uuid
                                                               : gpuh_pci_addr_format(&d->hostdevs[i].addr, a));
        } else
                for (size_t i = 0; i < n; i++)
                        fprintf(f, "%s%u:%s:%d:%d:%s:%s:%s:%d", i ? ";" : "", rq[i].count,
                                gpuh_req_mode_to_string(rq[i].mode), rq[i].vendor, rq[i].device,
                                rq[i].model ? rq[i].model : "", rq[i].profile ? rq[i].profile : "",
                                gpuh_req_numa_to_string(rq[i].numa), rq[i].display);
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

static json_object *requests_json(const struct gpuh_request *rq, size_t n, const char *source)
{
        json_object *arr = json_object_new_array();

        for (size_t i = 0; arr && i < n; i++) {
                json_object *o = json_object_new_object();
                char id[16];

                json_object_object_add(o, "source", json_object_new_string(source));
                json_object_object_add(o, "mode", json_object_new_string(gpuh_req_mode_to_string(rq[i].mode)));
                json_object_object_add(o, "count", json_object_new_int((int) rq[i].count));
                if (rq[i].vendor >= 0) {
                        snprintf(id, sizeof(id), "%04x", (unsigned) rq[i].vendor);
                        json_object_object_add(o, "vendor", json_object_new_string(id));
                }
                if (rq[i].device >= 0) {
                        snprintf(id, sizeof(id), "%04x", (unsigned) rq[i].device);
                        json_object_object_add(o, "device", json_object_new_string(id));
                }
                if (rq[i].model)
                        json_object_object_add(o, "model", json_object_new_string(rq[i].model));
                if (rq[i].profile)
                        json_object_object_add(o, "profile", json_object_new_string(rq[i].profile));
                json_object_object_add(o, "numa", json_object_new_string(gpuh_req_numa_to_string(rq[i].numa)));
                json_object_object_add(o, "display", json_object_new_boolean(rq[i].display));
                json_object_array_add(arr, o);
        }
        return arr;
}

/* Our record in the document, with each of its devices still there: a transform of our own
 * output. Then the record is the plan. */
static bool record_intact(const struct gpuh_domxml *d)
{
        if (!d->has_record || d->n_record == 0)
                return false;
        for (size_t i = 0; i < d->n_record; i++) {
                const struct gpuh_alloc *a = &d->record[i];
                bool found = false;

                for (size_t k = 0; k < d->n_hostdevs && !found; k++)
                        found = a->kind == GPUH_ALLOC_MDEV ? d->hostdevs[k].is_mdev && streq(d->hostdevs[k].uuid, a->uuid)
                                                           : !d->hostdevs[k].is_mdev &&
                                                             gpuh_pci_addr_cmp(&d->hostdevs[k].addr, &a->addr) == 0;
                if (!found)
                        return false;
        }
        return true;
}

/*
 * A record is a claim, never an authority: each of its devices must be one selection could
 * have chosen on this host, a GPU of the inventory (with companions of its slot), a VF of one,
 * or an mdev on one of them; anything else (an NVMe drive, a NIC, an NVSwitch) is refused.
 * Returns: NULL, or the first device that is none of these (one line in @why).
 */
static bool vf_of(const struct gpuh_gpu *g, const struct gpuh_pci_addr *a)
{
        for (size_t v = 0; v < g->n_vfs; v++)
                if (gpuh_pci_addr_cmp(&g->vfs[v].dev->addr, a) == 0)
                        return true;
        /* VFs not enabled yet (state_change.enable_sriov): they appear on the PF's bus */
        return g->n_vfs == 0 && g->dev->sriov_totalvfs > 0 && a->domain == g->dev->addr.domain &&
               a->bus == g->dev->addr.bus && gpuh_pci_addr_cmp(a, &g->dev->addr) != 0;
}

/* A record device's GPU instance is the one its layout slot has (prepare creates it: a claim
 * to check like the device itself). */
static bool gi_is_slots(const struct gpuh_inventory *inv, const struct gpuh_alloc *a)
{
        const struct gpuh_layout_slot *slot = a->kind == GPUH_ALLOC_MDEV ? gpuh_layouts_find_mdev(inv->layouts, a->uuid, NULL)
                                                                         : gpuh_layouts_find_vf(inv->layouts, &a->addr, NULL);

        return slot && slot->gi && slot->gi_profile == a->gi_profile && slot->gi_start == a->gi_start &&
               slot->gi_size == a->gi_size;
}

static const char *record_implausible(const struct gpuh_inventory *inv, const struct gpuh_alloc *plan, size_t n,
                                      char *why, size_t size)
{
        for (size_t i = 0; i < n; i++) {
                const struct gpuh_alloc *a = &plan[i];
                const struct gpuh_pci_addr *fn = a->kind == GPUH_ALLOC_MDEV ? &a->parent : &a->addr;
                char name[GPUH_PCI_ADDR_MAX];
                bool ok = false;

                for (size_t k = 0; k < inv->n_gpus && !ok; k++) {
                        const struct gpuh_gpu *g = &inv->gpus[k];
                        bool is_gpu = gpuh_pci_addr_cmp(&g->dev->addr, fn) == 0;

                        switch (a->kind) {
                        case GPUH_ALLOC_PCI:
                                ok = is_gpu;
                                for (size_t c = 0; ok && c < a->n_companions; c++)
                                        ok = gpuh_pci_addr_same_slot(&a->companions[c], fn) &&
                                             gpuh_pci_addr_cmp(&a->companions[c], fn) != 0;
                                break;
                        case GPUH_ALLOC_VF:
                        case GPUH_ALLOC_VENDOR_VGPU:
                                ok = gpuh_pci_addr_cmp(&g->dev->addr, &a->parent) == 0 && vf_of(g, &a->addr);
                                break;
                        case GPUH_ALLOC_MDEV:
                                ok = is_gpu || vf_of(g, fn);
                                break;
                        default:
                                break;
                        }
                }
                if (!ok) {
                        snprintf(why, size, "its allocation record names %s %s, which is not a device gpuhooks hands out "
                                 "on this host", gpuh_alloc_kind_to_string(a->kind),
                                 a->kind == GPUH_ALLOC_MDEV ? a->uuid : gpuh_pci_addr_format(fn, name));
                        return why;
                }
                if (a->gi && !gi_is_slots(inv, a)) {
                        snprintf(why, size, "its allocation record gives %s a GPU instance (profile %u at %u:%u) that no "
                                 "layout slot of this host has", a->kind == GPUH_ALLOC_MDEV ? a->uuid :
                                 gpuh_pci_addr_format(fn, name), a->gi_profile, a->gi_start, a->gi_size);
                        return why;
                }
        }
        return NULL;
}

/* A reservation marked running whose domain does not run any more (stopped without release,
 * host rebooted): only when usage came from a real source, never on a guess. */
static bool orphaned(const struct gpuh_vm_usage *u, const struct gpuh_reservation *r)
{
        const struct gpuh_vm *vm;

        if (!r->state || !streq(r->state, "running") || !u || gpuh_vm_usage_source(u) == GPUH_VM_SOURCE_NONE)
                return false;
        vm = gpuh_vm_usage_find(u, r->domain);
        return !vm || !gpuh_vm_state_is_active(vm->state);
}

/* Is any device of @plan held by a domain other than @name, or another live reservation?
 * The occupancy model's answer, as selection's (common/occupancy.h). */
static const char *conflict(const struct gpuh_inventory *inv, const char *name, const struct gpuh_alloc *plan,
                            size_t n, const struct gpuh_reservation *others, size_t n_others, int64_t now)
{
        struct gpuh_occupancy o = { .self = name, .now = now, .res = others, .n_res = n_others, .usage = inv->usage };

        for (size_t i = 0; i < n; i++) {
                const char *h = plan[i].kind == GPUH_ALLOC_MDEV ? gpuh_occupancy_holder_mdev(&o, plan[i].uuid)
                                                                : gpuh_occupancy_holder_pci(&o, &plan[i].addr);
                if (h)
                        return h;
        }
        return NULL;
}

static size_t split_candidates(const struct gpuh_inventory *inv, const struct gpuh_agent_split *s,
                               struct gpuh_pci_addr *ret, size_t max);

/* With a broken configuration: does a hostdev of @d name a GPU or one of its VFs (as
 * gpuh_select_cloudstack() judges them, or in an old agent's form: tf_agent_addresses()), or
 * an mdev? */
static bool cloudstack_gpu(const struct gpuh_inventory *inv, const struct gpuh_domxml *d)
{
        for (size_t i = 0; i < d->n_hostdevs; i++) {
                if (d->hostdevs[i].is_mdev ||
                    (d->hostdevs[i].agent_split && split_candidates(inv, &d->hostdevs[i].split, NULL, 0) > 0))
                        return true;
                for (size_t g = 0; g < inv->n_gpus; g++) {
                        if (gpuh_pci_addr_cmp(&inv->gpus[g].dev->addr, &d->hostdevs[i].addr) == 0)
                                return true;
                        for (size_t v = 0; v < inv->gpus[g].n_vfs; v++)
                                if (gpuh_pci_addr_cmp(&inv->gpus[g].vfs[v].dev->addr, &d->hostdevs[i].addr) == 0)
                                        return true;
                }
        }
        return false;
}

static int config_refused(const struct gpuh_transform_opts *o, const struct gpuh_domxml *d, const char *why,
                          char **reterr)
{
        return gpuh_error(reterr, -EBADMSG, "domain %s asks for GPUs (%s) but the configuration is unusable, nothing "
                          "reserved: %s", d->name, why, o->config_error);
}

/* One transform's state, from the document parsed to the reservation written: what each step
 * of gpuh_transform() reads and leaves for the next. Owned: d, host, state, res, others, plan,
 * qdev, quar, ex, sig, out, err. */
struct tf {
        const struct gpuh_transform_opts *o;
        const struct gpuh_config *cfg;
        char **reterr;
        int64_t now;
        struct gpuh_domxml *d;
        json_object *ex;                        /* the plan: --explain's, and the audit record's */
        const struct gpuh_request *req;         /* what is asked, as source says */
        size_t n_req;
        const char *source;                     /* "metadata", "rule", "cloudstack"; NULL: nothing */
        struct gpuh_host *host;
        struct gpuh_layouts *layouts;           /* the configuration's vGPU layouts on this host */
        int node;                               /* the vCPUs' NUMA node, -1 none or several */
        const char *state_dir;
        struct gpuh_state *state;
        struct gpuh_reservation *res, *own;     /* own points into res */
        struct gpuh_reservation *others;        /* shallow copies of res's, and the quarantine's */
        size_t n_res, n_others;
        struct gpuh_quarantined *quar;
        size_t n_quar;
        struct gpuh_alloc *qdev;                /* the quarantine as one more reservation's devices */
        struct gpuh_alloc *plan;
        size_t n_plan;
        bool from_record, cloudstack;
        char *sig, *out, *err;
};

/* A step's answer besides 0 (go on) and -errno: the document passes unchanged. */
#define TF_UNCHANGED 1

/* Nothing for this domain: with --explain, an empty request list. */
static int tf_unchanged(struct tf *t)
{
        if (t->ex)
                json_object_object_add(t->ex, "requests", json_object_new_array());
        return TF_UNCHANGED;
}

/* The domain XML, parsed, and the explain object started with its name. */
static int tf_parse(struct tf *t, const char *in, size_t len)
{
        int r;

        r = gpuh_domxml_parse(in, len, &t->d, &t->err);
        if (r < 0) {
                if (r != -ENOMEM)
                        gpuh_error(t->reterr, r, "%s", t->err ? t->err : "unusable domain XML");
                return r;
        }
        /* always: the audit record is made of it (tf_audit()) */
        t->ex = json_object_new_object();
        if (!t->ex)
                return -ENOMEM;
        json_object_object_add(t->ex, "domain", json_object_new_string(t->d->name));
        return 0;
}

/* What is asked: CloudStack's hostdevs (judged against the inventory later), else our request
 * element, else the first matching rule. Nothing at all: the XML passes. A broken
 * configuration refuses a domain that asks for GPUs here (its rules may be kept without their
 * requests: then a match sets only the source). */
static int tf_find_requests(struct tf *t)
{
        const struct gpuh_domxml *d = t->d;

        if (d->n_requests > 0) {
                t->req = d->requests;
                t->n_req = d->n_requests;
                t->source = "metadata";
        } else
                for (size_t i = 0; i < t->cfg->n_rules && !t->req; i++)
                        if (gpuh_rule_matches(&t->cfg->rules[i].match, d->name, &d->cs)) {
                                t->req = t->cfg->rules[i].requests;
                                t->n_req = t->cfg->rules[i].n_requests;
                                t->source = "rule";
                        }
        if (!t->source && d->n_hostdevs == 0 && !d->has_record)
                return tf_unchanged(t);

        if (t->o->config_error && (t->source || d->has_record))
                return config_refused(t->o, d, !t->source ? "its gpuhooks allocation record" :
                                      streq(t->source, "rule") ? "a transformer.rules entry" :
                                      "its gpuhooks:request element", t->reterr);
        return 0;
}

/* The host: inventory and usage, then (a broken configuration leaves only hostdevs to judge:
 * CloudStack's GPUs are refused, others pass) the vCPUs' NUMA node. */
static int tf_scan_host(struct tf *t)
{
        const struct gpuh_domxml *d = t->d;
        int r;

        r = gpuh_host_scan(&t->o->host, &t->host, &t->err);
        if (r < 0) {
                if (r != -ENOMEM)
                        gpuh_error(t->reterr, r, "%s", t->err ? t->err : "cannot read the host");
                return r;
        }

        if (t->o->config_error) {
                if (cloudstack_gpu(t->host->inv, d))
                        return config_refused(t->o, d, "CloudStack's GPU hostdevs", t->reterr);
                return tf_unchanged(t);
        }
        /* CloudStack's hostdevs may name vGPUs a layout advertised and nobody created yet; the
         * slots are gpudiscovery's only with the vGPU type names it saw (a full GPU's VFs list
         * none: vgpu_names.h) */
        if (t->cfg->n_layouts > 0 &&
            gpuh_vgpu_names_update(t->host->inv, t->o->state_dir && *t->o->state_dir ? t->o->state_dir
                                                                                     : GPUH_STATE_DIR_DEFAULT) < 0)
                return -ENOMEM;
        r = gpuh_layouts_resolve(t->host->inv, t->cfg, &t->layouts);
        if (r < 0)
                return r;
        t->host->inv->layouts = t->layouts;
        if (d->cpuset && gpuh_cpuset_node(t->host->sysfs->root_fd, d->cpuset, &t->node) == -EINVAL) {
                char shown[68];

                return gpuh_error(t->reterr, -EBADMSG, "domain %s: unparsable vCPU cpuset '%s'", d->name,
                                  one_line(d->cpuset, shown, sizeof(shown)));
        }
        return 0;
}

/* The state directory opened and locked (--explain writes nothing), the reservations read,
 * and which devices domains use known, or nothing is handed out (fail closed). */
static int tf_open_state(struct tf *t)
{
        const struct gpuh_transform_opts *o = t->o;
        struct gpuh_warnings *w = &t->host->inv->warnings;
        int r;

        t->state_dir = o->state_dir && *o->state_dir ? o->state_dir : GPUH_STATE_DIR_DEFAULT;
        r = gpuh_state_open(t->state_dir, !o->explain, &t->state, t->reterr);
        if (r < 0)
                return gpuh_error(t->reterr, r, "cannot use state directory '%s': %s", t->state_dir, strerror(-r));
        r = gpuh_state_lock(t->state, !o->explain, o->lock_timeout_ms > 0 ? o->lock_timeout_ms : 10000);
        if (r < 0)
                return gpuh_error(t->reterr, r, "cannot take the host lock in '%s': %s", t->state_dir,
                                  r == -ETIMEDOUT ? "another transform holds it too long" : strerror(-r));
        r = gpuh_reservations_load(t->state, &t->res, &t->n_res, w);
        if (r < 0)
                return gpuh_error(t->reterr, r, r == -EBADMSG && w->n > 0
                                  ? "%s: nothing is handed out while it is unreadable (remove it if its domain is gone)"
                                  : "cannot read reservations: %s",
                                  r == -EBADMSG && w->n > 0 ? w->v[w->n - 1] : strerror(-r));

        if (gpuh_vm_usage_source(t->host->usage) == GPUH_VM_SOURCE_NONE)
                return gpuh_error(t->reterr, -EIO, "cannot tell which devices domains use: neither libvirt nor its "
                                  "domain XML files could be read");
        return 0;
}

/* The reservations sorted: ours, the others' live ones; expired and orphaned ones are
 * reclaimed. Quarantined functions (docs/state-change.md) are nobody's to have: to selection
 * they are held, as by one more live reservation. */
static int tf_claims(struct tf *t)
{
        int r;

        t->others = calloc(t->n_res + 1, sizeof(*t->others));
        if (!t->others)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_res; i++) {
                struct gpuh_reservation *rv = &t->res[i];

                if (streq(rv->domain, t->d->name)) {
                        t->own = rv;
                        continue;
                }
                if (!gpuh_reservation_live(rv, t->now) || orphaned(t->host->usage, rv)) {
                        if (!t->o->explain) {
                                gpuh_log(LOG_INFO, "reclaiming the %s reservation of %s",
                                         gpuh_reservation_live(rv, t->now) ? "orphaned" : "expired", rv->domain);
                                gpuh_reservation_remove(t->state, rv->domain);
                        }
                        continue;
                }
                t->others[t->n_others++] = *rv;         /* shallow: res owns the memory */
        }
        r = gpuh_quarantine_load(t->state_dir, &t->quar, &t->n_quar);
        if (r < 0)
                return gpuh_error(t->reterr, r, "cannot read the quarantine in '%s': %s", t->state_dir, strerror(-r));
        if (t->n_quar > 0) {
                t->qdev = calloc(t->n_quar, sizeof(*t->qdev));
                if (!t->qdev)
                        return -ENOMEM;
                for (size_t i = 0; i < t->n_quar; i++)
                        t->qdev[i] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_PCI, .addr = t->quar[i].addr };
                t->others[t->n_others++] = (struct gpuh_reservation) {
                        .domain = (char *) "(quarantined)", .state = (char *) "running", .devices = t->qdev,
                        .n_devices = t->n_quar,
                };
        }
        return 0;
}

/* The functions CloudStack may have allocated (the inventory's GPUs and their VFs) on bus
 * @s->domain:@s->bus, up to @max of them; returns how many there are. */
static size_t split_candidates(const struct gpuh_inventory *inv, const struct gpuh_agent_split *s,
                               struct gpuh_pci_addr *ret, size_t max)
{
        size_t n = 0;

        for (size_t g = 0; g < inv->n_gpus; g++) {
                const struct gpuh_gpu *gpu = &inv->gpus[g];

                for (size_t v = 0; v <= gpu->n_vfs; v++) {
                        const struct gpuh_pci_addr *a = v == 0 ? &gpu->dev->addr : &gpu->vfs[v - 1].dev->addr;
                        if (a->domain == s->domain && a->bus == s->bus && n++ < max)
                                ret[n - 1] = *a;
                }
        }
        return n;
}

/*
 * CloudStack's hostdevs as agents before 4.22.1 write them for a device outside PCI domain
 * 0000 (common/agent_addr.h): rewritten to the device the agent meant when the address as
 * written names no device and exactly one GPU or VF is on the bus it meant; refused when
 * that is ambiguous; left as written when no such device is there.
 */
static int tf_agent_addresses(struct tf *t)
{
        struct gpuh_domxml *d = t->d;

        for (size_t i = 0; i < d->n_hostdevs; i++) {
                struct gpuh_dom_hostdev *h = &d->hostdevs[i];
                struct gpuh_pci_addr cands[4], real;
                char rel[64], l[GPUH_PCI_ADDR_MAX], why[384];
                size_t n;
                int r;

                if (h->is_mdev || !h->agent_split)
                        continue;
                n = split_candidates(t->host->inv, &h->split, cands, ARRAY_SIZE(cands));
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s", gpuh_pci_addr_format(&h->addr, l));
                r = gpuh_agent_split_resolve(&h->split, &h->addr, gpuh_sysfs_exists(t->host->sysfs->root_fd, rel) == 1,
                                             cands, n < ARRAY_SIZE(cands) ? n : ARRAY_SIZE(cands), &real, why,
                                             sizeof(why));
                if (r < 0)
                        return gpuh_error(t->reterr, -EBADMSG, "domain %s: %s", d->name, why);
                if (r == 0)
                        continue;
                r = gpuh_domxml_set_hostdev_addr(d, i, &real);
                if (r < 0)
                        return r;
                gpuh_log(LOG_WARNING, "%s: hostdev address %s rewritten to %s: a CloudStack agent before 4.22.1 "
                         "(apache/cloudstack PR #12981) wrote %s as bus 0x%04x, slot 0x%02x", d->name, l,
                         gpuh_pci_addr_format(&real, rel), rel, (unsigned) h->split.domain, h->split.bus);
        }
        return 0;
}

/* Our own output again (record intact): its record is the plan, if plausible on this host. */
static int tf_plan_from_record(struct tf *t)
{
        char why[256];

        t->n_plan = t->d->n_record;
        t->plan = calloc(t->n_plan + 1, sizeof(*t->plan));
        if (!t->plan)
                return -ENOMEM;
        memcpy(t->plan, t->d->record, t->n_plan * sizeof(*t->plan));
        t->from_record = true;
        if (record_implausible(t->host->inv, t->plan, t->n_plan, why, sizeof(why)))
                return gpuh_error(t->reterr, -EPERM, "domain %s: %s", t->d->name, why);
        t->source = t->d->record[0].request == GPUH_ALLOC_REQUEST_CLOUDSTACK ? "cloudstack" : t->source;
        return 0;
}

/* For requests: this domain's live reservation when made for the same requests (and the same
 * domain UUID), else a new selection. */
static int tf_plan_requests(struct tf *t, const struct gpuh_select_in *sin)
{
        const struct gpuh_reservation *own = t->own;
        int r;

        if (own && gpuh_reservation_live(own, t->now) && own->signature && streq(own->signature, t->sig) &&
            (!own->uuid || !t->d->uuid || streq(own->uuid, t->d->uuid))) {
                t->plan = calloc(own->n_devices + 1, sizeof(*t->plan));
                if (!t->plan)
                        return -ENOMEM;
                memcpy(t->plan, own->devices, own->n_devices * sizeof(*t->plan));
                t->n_plan = own->n_devices;
                return 0;
        }
        r = gpuh_select_requests(sin, &t->plan, &t->n_plan, t->ex, &t->err);
        if (r < 0 && r != -ENOMEM)
                gpuh_error(t->reterr, r, "domain %s: %s", t->d->name, t->err ? t->err : "no devices");
        return r < 0 ? r : 0;
}

/* The plan: our record's, else CloudStack's own GPU hostdevs (requests and rules only speak
 * for a domain that has none), else for the requests; hostdevs but none a GPU: unchanged. */
static int tf_plan(struct tf *t)
{
        struct gpuh_domxml *d = t->d;
        struct gpuh_select_in sin = {
                .inv = t->host->inv, .domain = d->name, .uuid = d->uuid, .others = t->others,
                .n_others = t->n_others, .dom = d, .requests = t->req, .n_requests = t->n_req,
                .numa_node = t->node, .allow_mixed = t->cfg->allow_mixed,
        };
        int r;

        if (record_intact(d)) {
                r = tf_plan_from_record(t);
                if (r < 0)
                        return r;
        } else if (d->n_hostdevs > 0) {
                r = gpuh_select_cloudstack(&sin, &t->plan, &t->n_plan, &t->err);
                if (r < 0) {
                        t->source = "cloudstack";       /* for the audit record: they were what it asked */
                        return gpuh_error(t->reterr, r, "domain %s: %s", d->name,
                                          t->err ? t->err : "cannot use its GPU hostdevs");
                }
                t->cloudstack = t->n_plan > 0;
        }
        if (t->cloudstack) {
                t->req = NULL;
                t->n_req = 0;
                t->source = "cloudstack";
        } else if (!t->from_record && !t->req)
                return tf_unchanged(t);
        if (t->ex)
                json_object_object_add(t->ex, "requests", requests_json(t->req, t->n_req, t->source));
        t->sig = signature(d, t->req, t->n_req, t->cloudstack);
        if (!t->sig)
                return -ENOMEM;
        if (!t->from_record && !t->cloudstack)
                return tf_plan_requests(t, &sin);
        return 0;
}

/* With --explain, when selection did not say: the plan as chosen by CloudStack, our record or
 * this domain's reservation. */
static void tf_explain_chosen(struct tf *t)
{
        json_object *chosen;
        const char *why;

        if (!t->ex || json_object_object_get_ex(t->ex, "chosen", NULL))
                return;
        chosen = json_object_new_array();
        why = t->cloudstack ? "CloudStack's own hostdev" :
              t->from_record ? "the domain's allocation record" : "the domain's live reservation";
        for (size_t i = 0; chosen && i < t->n_plan; i++) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "request", t->plan[i].request == GPUH_ALLOC_REQUEST_CLOUDSTACK
                                       ? json_object_new_string("cloudstack") : json_object_new_int(t->plan[i].request));
                gpuh_alloc_explain(&t->plan[i], e);
                json_object_object_add(e, "why", json_object_new_string(why));
                json_object_array_add(chosen, e);
        }
        json_object_object_add(t->ex, "candidates", json_object_new_array());
        json_object_object_add(t->ex, "chosen", chosen);
}

/* The plan, whatever it came from, checked: not more devices than one domain may have, none
 * quarantined (nor a VF's or an mdev's GPU), none held by another domain or reservation. */
static int tf_check_plan(struct tf *t)
{
        const char *held;

        if (t->n_plan > GPUH_DOMXML_MAX_DEVICES)
                /* CloudStack's hostdevs of a host with many VFs: a record this long would be refused
                 * when read back (gpuh_domxml_parse), by prepare and by a second transform */
                return gpuh_error(t->reterr, -E2BIG, "domain %s: %zu GPU <hostdev> elements, more than the %d one "
                                  "domain may have", t->d->name, t->n_plan, GPUH_DOMXML_MAX_DEVICES);
        for (size_t i = 0; i < t->n_plan && t->n_quar > 0; i++) {
                struct gpuh_occupancy qo = { .quarantined = t->quar, .n_quarantined = t->n_quar };
                const struct gpuh_alloc *a = &t->plan[i];
                char why[768];

                if (gpuh_occupancy_pci(&qo, a->kind == GPUH_ALLOC_MDEV ? &a->parent : &a->addr,
                                       a->kind == GPUH_ALLOC_PCI ? NULL : &a->parent, why, sizeof(why)))
                        return gpuh_error(t->reterr, -EBUSY, "domain %s: %s", t->d->name, why);
        }
        if ((held = conflict(t->host->inv, t->d->name, t->plan, t->n_plan, t->others, t->n_others, t->now)))
                return gpuh_error(t->reterr, -EBUSY, "domain %s: a device it holds is now used by %s", t->d->name,
                                  held);
        return 0;
}

/* The document completed (not for our own output, which is complete) and, unless --explain,
 * the reservation written. */
static int tf_write(struct tf *t, size_t *ret_len)
{
        const struct gpuh_reservation *own = t->own;
        int r;

        if (!t->from_record) {
                r = gpuh_domxml_apply(t->d, t->plan, t->n_plan, t->cfg->managed_by_libvirt);
                if (r < 0) {
                        if (r == -EBADMSG)
                                gpuh_error(t->reterr, r, "domain %s has no <devices> element", t->d->name);
                        return r;
                }
                r = gpuh_domxml_serialize(t->d, &t->out, ret_len);
                if (r < 0)
                        return r;
        }

        if (!t->o->explain) {
                struct gpuh_reservation rv = {
                        .domain = t->d->name, .uuid = t->d->uuid, .created = own ? own->created : t->now,
                        .state = own && own->state && streq(own->state, "running") ? own->state : (char *) "reserved",
                        .expires = t->now + t->cfg->reservation_ttl_s, .signature = t->sig, .devices = t->plan,
                        .n_devices = t->n_plan,
                };
                r = gpuh_reservation_write(t->state, &rv);
                if (r < 0)
                        return gpuh_error(t->reterr, r, "cannot write the reservation of %s: %s", t->d->name,
                                          strerror(-r));
        }
        return 0;
}

/*
 * The audit record of a decision, to the log sink in the state-change hook's form (one JSON
 * object per record, facility daemon; docs/logging.md): "allocate" with the requests, the
 * devices chosen and why each, or "refuse" with the requests, the device the refusal names and
 * its cause. A domain that asks for no GPU is no decision (none is written); neither is
 * --explain, which reserves nothing (as the state-change hook's --dry-run logs no step).
 */
static void tf_audit(const struct tf *t, int r, const char *err, int64_t t0)
{
        json_object *o, *v;
        const char *text;
        char dev[GPUH_ERROR_DEVICE_MAX], ms[32];

        if (t->o->explain || (r >= 0 && (r == TF_UNCHANGED || t->n_plan == 0)))
                return;
        o = json_object_new_object();
        if (!o)
                return;
        json_object_object_add(o, "event", json_object_new_string(r < 0 ? "refuse" : "allocate"));
        json_object_object_add(o, "vm", json_object_new_string(t->d ? t->d->name : ""));
        if (t->source)
                json_object_object_add(o, "source", json_object_new_string(t->source));
        if (t->ex && json_object_object_get_ex(t->ex, "requests", &v))
                json_object_object_add(o, "requests", json_object_get(v));
        if (r >= 0 && t->ex && json_object_object_get_ex(t->ex, "chosen", &v))
                json_object_object_add(o, "devices", json_object_get(v));
        if (r < 0 && gpuh_error_device(err, dev))
                json_object_object_add(o, "device", json_object_new_string(dev));
        snprintf(ms, sizeof(ms), "%.3f", (double) (gpuh_mono_us() - t0) / 1000.0);
        json_object_object_add(o, "duration_ms", json_object_new_double_s(atof(ms), ms));
        json_object_object_add(o, "errno", json_object_new_int(r < 0 ? -r : 0));
        if (r < 0)
                json_object_object_add(o, "error", json_object_new_string(err ? err : strerror(-r)));
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        gpuh_log(r < 0 ? LOG_WARNING : LOG_INFO, "%s", text ? text : "transform");
        json_object_put(o);
}

static void tf_free(struct tf *t)
{
        free(t->out);
        free(t->err);
        free(t->sig);
        free(t->plan);
        free(t->others);
        free(t->qdev);
        free(t->quar);
        gpuh_reservations_free(t->res, t->n_res);
        gpuh_state_free(t->state);
        gpuh_host_free(t->host);
        gpuh_layouts_free(t->layouts);
        gpuh_domxml_free(t->d);
}

int gpuh_transform(const struct gpuh_transform_opts *o, const char *in, size_t len,
                   char **ret_out, size_t *ret_len, json_object **ret_explain, char **reterr)
{
        struct tf t = {
                .o = o, .cfg = o->host.cfg, .reterr = reterr, .now = (int64_t) time(NULL), .node = -1,
        };
        int64_t t0 = gpuh_mono_us();
        int r;

        *ret_out = NULL;
        *ret_len = 0;
        if (ret_explain)
                *ret_explain = NULL;
        *reterr = NULL;

        if ((r = tf_parse(&t, in, len)) != 0 ||
            (r = tf_find_requests(&t)) != 0 ||
            (r = tf_scan_host(&t)) != 0 ||
            (r = tf_open_state(&t)) != 0 ||
            (r = tf_claims(&t)) != 0 ||
            (r = tf_agent_addresses(&t)) != 0 ||
            (r = tf_plan(&t)) != 0)
                goto out;
        tf_explain_chosen(&t);
        if ((r = tf_check_plan(&t)) != 0 ||
            (r = tf_write(&t, ret_len)) != 0)
                goto out;
        *ret_out = TAKE_PTR(t.out);
out:
        if (r < 0 && !*reterr && r != -ENOMEM)
                gpuh_error(reterr, r, "%s", strerror(-r));
        if (r != -ENOMEM)
                tf_audit(&t, r, *reterr, t0);
        if (r == TF_UNCHANGED)
                r = 0;
        if (t.ex) {
                json_object_object_add(t.ex, "error", r < 0 && *reterr ? json_object_new_string(*reterr) : NULL);
                if (ret_explain && o->explain)
                        *ret_explain = TAKE_PTR(t.ex);
                else
                        json_object_put(t.ex);
        }
        tf_free(&t);
        return r;
}
