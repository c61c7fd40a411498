/* SPDX-License-Identifier: Apache-2.0 */
/* transform.c: the transformer's pipeline, from XML in to XML out. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "domxml.h"
#include "log.h"
#include "reserve.h"
#include "rule.h"
#include "select.h"
#include "transform.h"

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

/* Is any device of @plan held by a domain other than @name, or another live reservation? */
static const char *conflict(const struct gpuh_inventory *inv, const char *name, const struct gpuh_alloc *plan,
                            size_t n, const struct gpuh_reservation *others, size_t n_others)
{
        const struct gpuh_vm *vms[8];

        for (size_t i = 0; i < n; i++) {
                const struct gpuh_alloc *a = &plan[i];
                size_t k = a->kind == GPUH_ALLOC_MDEV
                           ? (inv->usage ? gpuh_vm_usage_mdev(inv->usage, a->uuid, vms, ARRAY_SIZE(vms)) : 0)
                           : (inv->usage ? gpuh_vm_usage_pci(inv->usage, &a->addr, vms, ARRAY_SIZE(vms)) : 0);
                for (size_t u = 0; u < k && u < ARRAY_SIZE(vms); u++)
                        if (!streq(vms[u]->name, name))
                                return vms[u]->name;
                for (size_t r = 0; r < n_others; r++)
                        for (size_t d = 0; d < others[r].n_devices; d++)
                                if ((a->kind == GPUH_ALLOC_MDEV && others[r].devices[d].kind == GPUH_ALLOC_MDEV &&
                                     streq(a->uuid, others[r].devices[d].uuid)) ||
                                    (a->kind != GPUH_ALLOC_MDEV && gpuh_alloc_holds_pci(&others[r].devices[d], &a->addr)))
                                        return others[r].domain;
        }
        return NULL;
}

int gpuh_transform(const struct gpuh_transform_opts *o, const char *in, size_t len,
                   char **ret_out, size_t *ret_len, json_object **ret_explain, char **reterr)
{
        const struct gpuh_config *cfg = o->host.cfg;
        struct gpuh_domxml *d = NULL;
        struct gpuh_host *host = NULL;
        struct gpuh_state *state = NULL;
        struct gpuh_reservation *res = NULL, *others = NULL, *own = NULL;
        size_t n_res = 0, n_others = 0, n_plan = 0, n_req = 0;
        struct gpuh_alloc *plan = NULL;
        const struct gpuh_request *req = NULL;
        json_object *ex = NULL;
        char *sig = NULL, *out = NULL, *err = NULL;
        const char *state_dir, *source = NULL, *held;
        bool from_record = false, cloudstack = false;
        int64_t now = (int64_t) time(NULL);
        int node = -1, r;

        *ret_out = NULL;
        *ret_len = 0;
        if (ret_explain)
                *ret_explain = NULL;
        *reterr = NULL;

        r = gpuh_domxml_parse(in, len, &d, &err);
        if (r < 0) {
                if (r != -ENOMEM)
                        gpuh_error(reterr, r, "%s", err ? err : "unusable domain XML");
                goto out;
        }
        if (o->explain) {
                ex = json_object_new_object();
                if (!ex) {
                        r = -ENOMEM;
                        goto out;
                }
                json_object_object_add(ex, "domain", json_object_new_string(d->name));
        }

        /* What is asked: CloudStack's hostdevs (judged against the inventory below), else our
         * request element, else the first matching rule. Nothing at all: the XML passes. */
        if (d->n_requests > 0) {
                req = d->requests;
                n_req = d->n_requests;
                source = "metadata";
        } else
                for (size_t i = 0; i < cfg->n_rules && !req; i++)
                        if (gpuh_rule_matches(&cfg->rules[i].match, d->name, &d->cs)) {
                                req = cfg->rules[i].requests;
                                n_req = cfg->rules[i].n_requests;
                                source = "rule";
                        }
        if (!req && d->n_hostdevs == 0 && !d->has_record) {
                if (ex)
                        json_object_object_add(ex, "requests", json_object_new_array());
                r = 0;
                goto out;
        }

        r = gpuh_host_scan(&o->host, &host, &err);
        if (r < 0) {
                if (r != -ENOMEM)
                        gpuh_error(reterr, r, "%s", err ? err : "cannot read the host");
                goto out;
        }
        if (d->cpuset && gpuh_cpuset_node(host->sysfs->root_fd, d->cpuset, &node) == -EINVAL) {
                char shown[68];

                r = gpuh_error(reterr, -EBADMSG, "domain %s: unparsable vCPU cpuset '%s'", d->name,
                               one_line(d->cpuset, shown, sizeof(shown)));
                goto out;
        }

        state_dir = o->state_dir ? o->state_dir : secure_getenv("GPUHOOKS_STATE_DIR");
        if (!state_dir || !*state_dir)
                state_dir = GPUH_STATE_DIR_DEFAULT;
        r = gpuh_state_open(state_dir, &state);
        if (r < 0) {
                gpuh_error(reterr, r, "cannot use state directory '%s': %s", state_dir, strerror(-r));
                goto out;
        }
        r = gpuh_state_lock(state, !o->explain, o->lock_timeout_ms > 0 ? o->lock_timeout_ms : 10000);
        if (r < 0) {
                gpuh_error(reterr, r, "cannot take the host lock in '%s': %s", state_dir,
                     r == -ETIMEDOUT ? "another transform holds it too long" : strerror(-r));
                goto out;
        }
        r = gpuh_reservations_load(state, &res, &n_res, &host->inv->warnings);
        if (r < 0) {
                gpuh_error(reterr, r, r == -EBADMSG && host->inv->warnings.n > 0
                     ? "%s: nothing is handed out while it is unreadable (remove it if its domain is gone)"
                     : "cannot read reservations: %s",
                     r == -EBADMSG && host->inv->warnings.n > 0 ? host->inv->warnings.v[host->inv->warnings.n - 1]
                                                                 : strerror(-r));
                goto out;
        }

        /* Which devices domains use must be known, or nothing is handed out (fail closed). */
        if (gpuh_vm_usage_source(host->usage) == GPUH_VM_SOURCE_NONE) {
                r = gpuh_error(reterr, -EIO, "cannot tell which devices domains use: neither libvirt nor its domain XML files "
                         "could be read");
                goto out;
        }

        /* Ours, the others' live ones; expired ones are reclaimed. */
        others = calloc(n_res + 1, sizeof(*others));
        if (!others) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n_res; i++) {
                if (streq(res[i].domain, d->name)) {
                        own = &res[i];
                        continue;
                }
                if (!gpuh_reservation_live(&res[i], now) || orphaned(host->usage, &res[i])) {
                        if (!o->explain) {
                                gpuh_log(LOG_INFO, "reclaiming the %s reservation of %s",
                                         gpuh_reservation_live(&res[i], now) ? "orphaned" : "expired", res[i].domain);
                                gpuh_reservation_remove(state, res[i].domain);
                        }
                        continue;
                }
                others[n_others++] = res[i];    /* shallow: res owns the memory */
        }

        {
                struct gpuh_select_in sin = {
                        .inv = host->inv, .domain = d->name, .uuid = d->uuid, .others = others,
                        .n_others = n_others, .dom = d, .requests = req, .n_requests = n_req,
                        .numa_node = node, .allow_mixed = cfg->allow_mixed,
                };

                if (record_intact(d)) {
                        /* our own output again: same devices, same document */
                        n_plan = d->n_record;
                        plan = calloc(n_plan + 1, sizeof(*plan));
                        if (!plan) {
                                r = -ENOMEM;
                                goto out;
                        }
                        memcpy(plan, d->record, n_plan * sizeof(*plan));
                        from_record = true;
                        source = d->record[0].request == GPUH_ALLOC_REQUEST_CLOUDSTACK ? "cloudstack" : source;
                } else if (d->n_hostdevs > 0) {
                        /* CloudStack's own GPU hostdevs come first: requests and rules only
                         * speak for a domain that has none */
                        r = gpuh_select_cloudstack(&sin, &plan, &n_plan, &err);
                        if (r < 0) {
                                gpuh_error(reterr, r, "domain %s: %s", d->name, err ? err : "cannot use its GPU hostdevs");
                                goto out;
                        }
                        cloudstack = n_plan > 0;
                }
                if (cloudstack) {
                        req = NULL;
                        n_req = 0;
                        source = "cloudstack";
                } else if (!from_record && !req) {
                        if (ex)
                                json_object_object_add(ex, "requests", json_object_new_array());
                        r = 0;  /* hostdevs, but none a GPU: nothing to do */
                        goto out;
                }
                if (ex)
                        json_object_object_add(ex, "requests", requests_json(req, n_req, source));
                sig = signature(d, req, n_req, cloudstack);
                if (!sig) {
                        r = -ENOMEM;
                        goto out;
                }
                if (!from_record && !cloudstack && own && gpuh_reservation_live(own, now) && own->signature &&
                    streq(own->signature, sig) && (!own->uuid || !d->uuid || streq(own->uuid, d->uuid))) {
                        plan = calloc(own->n_devices + 1, sizeof(*plan));
                        if (!plan) {
                                r = -ENOMEM;
                                goto out;
                        }
                        memcpy(plan, own->devices, own->n_devices * sizeof(*plan));
                        n_plan = own->n_devices;
                } else if (!from_record && !cloudstack) {
                        r = gpuh_select_requests(&sin, &plan, &n_plan, ex, &err);
                        if (r < 0) {
                                if (r != -ENOMEM)
                                        gpuh_error(reterr, r, "domain %s: %s", d->name, err ? err : "no devices");
                                goto out;
                        }
                }
        }
        if (ex && !json_object_object_get_ex(ex, "chosen", NULL)) {
                /* not chosen now: CloudStack's, our record's, or this domain's reservation */
                json_object *chosen = json_object_new_array();
                const char *why = cloudstack ? "CloudStack's own hostdev" :
                                  from_record ? "the domain's allocation record" : "the domain's live reservation";
                for (size_t i = 0; chosen && i < n_plan; i++) {
                        json_object *e = json_object_new_object();
                        json_object_object_add(e, "request", plan[i].request == GPUH_ALLOC_REQUEST_CLOUDSTACK
                                               ? json_object_new_string("cloudstack") : json_object_new_int(plan[i].request));
                        gpuh_alloc_explain(&plan[i], e);
                        json_object_object_add(e, "why", json_object_new_string(why));
                        json_object_array_add(chosen, e);
                }
                json_object_object_add(ex, "candidates", json_object_new_array());
                json_object_object_add(ex, "chosen", chosen);
        }
        if (n_plan > GPUH_DOMXML_MAX_DEVICES) {
                /* CloudStack's hostdevs of a host with many VFs: a record this long would be refused
                 * when read back (gpuh_domxml_parse), by prepare and by a second transform */
                r = gpuh_error(reterr, -E2BIG, "domain %s: %zu GPU <hostdev> elements, more than the %d one domain may have",
                               d->name, n_plan, GPUH_DOMXML_MAX_DEVICES);
                goto out;
        }
        if ((held = conflict(host->inv, d->name, plan, n_plan, others, n_others))) {
                r = gpuh_error(reterr, -EBUSY, "domain %s: a device it holds is now used by %s", d->name, held);
                goto out;
        }

        if (!from_record) {
                r = gpuh_domxml_apply(d, plan, n_plan, cfg->managed_by_libvirt);
                if (r < 0) {
                        if (r == -EBADMSG)
                                gpuh_error(reterr, r, "domain %s has no <devices> element", d->name);
                        goto out;
                }
                r = gpuh_domxml_serialize(d, &out, ret_len);
                if (r < 0)
                        goto out;
        }

        if (!o->explain) {
                struct gpuh_reservation rv = {
                        .domain = d->name, .uuid = d->uuid, .created = own ? own->created : now,
                        .state = own && own->state && streq(own->state, "running") ? own->state : (char *) "reserved",
                        .expires = now + cfg->reservation_ttl_s, .signature = sig, .devices = plan, .n_devices = n_plan,
                };
                r = gpuh_reservation_write(state, &rv);
                if (r < 0) {
                        gpuh_error(reterr, r, "cannot write the reservation of %s: %s", d->name, strerror(-r));
                        goto out;
                }
        }
        for (size_t i = 0; i < n_plan; i++) {
                char a[GPUH_PCI_ADDR_MAX];
                gpuh_log(LOG_INFO, "%s: %s %s%s%s%s", d->name, gpuh_alloc_kind_to_string(plan[i].kind),
                         gpuh_pci_addr_format(plan[i].kind == GPUH_ALLOC_MDEV ? &plan[i].parent : &plan[i].addr, a),
                         plan[i].kind == GPUH_ALLOC_MDEV ? " " : "", plan[i].kind == GPUH_ALLOC_MDEV ? plan[i].mdev_type : "",
                         o->explain ? " (explain: not reserved)" : "");
        }
        *ret_out = TAKE_PTR(out);
        r = 0;
out:
        if (ex) {
                json_object_object_add(ex, "error", r < 0 && *reterr ? json_object_new_string(*reterr) : NULL);
                if (ret_explain)
                        *ret_explain = TAKE_PTR(ex);
                else
                        json_object_put(ex);
        }
        if (r < 0 && !*reterr && r != -ENOMEM)
                gpuh_error(reterr, r, "%s", strerror(-r));
        free(out);
        free(err);
        free(sig);
        free(plan);
        free(others);
        gpuh_reservations_free(res, n_res);
        gpuh_state_free(state);
        gpuh_host_free(host);
        gpuh_domxml_free(d);
        return r;
}
