/* SPDX-License-Identifier: Apache-2.0 */
/* select.c: the deterministic choice among a request's candidates, request by request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <uuid/uuid.h>

#include "alloc_codec.h"
#include "log.h"
#include "select_internal.h"

static void describe(const struct gpuh_request *r, char *buf, size_t size)
{
        snprintf(buf, size, "%u x %s%s%s%s%s", r->count, gpuh_req_mode_to_string(r->mode),
                 r->profile ? " '" : "", r->profile ? r->profile : "", r->profile ? "'" : "",
                 r->model ? " of the given model" : (r->vendor >= 0 || r->device >= 0) ? " of the given ids" : "");
}

static int derive_uuid(const char *domain_uuid, size_t slot, char *out)
{
        uuid_t ns, u;
        char name[64];

        if (!domain_uuid || uuid_parse(domain_uuid, ns) < 0)
                return -EINVAL;
        snprintf(name, sizeof(name), "gpuhooks-mdev-%zu", slot);
        uuid_generate_sha1(u, ns, name, strlen(name));
        uuid_unparse_lower(u, out);
        return 0;
}

static json_object *cand_json(const struct sel_cand *cd)
{
        char a[GPUH_PCI_ADDR_MAX];

        return json_object_new_string(cd->a.kind == GPUH_ALLOC_MDEV ? gpuh_pci_addr_format(&cd->a.parent, a)
                                                                    : gpuh_pci_addr_format(&cd->a.addr, a));
}

/* Sort @v best first (sel_cand_cmp()) for @rq. Returns the first that may be given (numa=require:
 * on the vCPUs' node), SIZE_MAX when none may; *@fitting: how many may. */
static size_t rank(const struct sel *c, const struct gpuh_request *rq, struct sel_cand *v, size_t n, size_t *fitting)
{
        int want_node = rq->numa == GPUH_NUMA_ANY ? -1 : c->in->numa_node;
        size_t best = SIZE_MAX;

        if (n > 1)
                qsort_r(v, n, sizeof(*v), sel_cand_cmp, &want_node);
        for (size_t i = 0; i < n && best == SIZE_MAX; i++)
                if (rq->numa != GPUH_NUMA_REQUIRE || v[i].node == c->in->numa_node)
                        best = i;
        *fitting = 0;
        for (size_t i = 0; i < n; i++)
                *fitting += rq->numa != GPUH_NUMA_REQUIRE || v[i].node == c->in->numa_node;
        return best;
}

/* --explain: request @ri's free candidates @v, best first. */
static void explain_free(json_object *jcand, size_t ri, const struct sel_cand *v, size_t n)
{
        json_object *e = json_object_new_object(), *free_list = json_object_new_array();

        json_object_object_add(e, "request", json_object_new_int((int) ri));
        for (size_t i = 0; i < n; i++)
                json_object_array_add(free_list, cand_json(&v[i]));
        json_object_object_add(e, "free", free_list);
        json_object_array_add(jcand, e);
}

/* --explain: the device chosen for request @ri, and why. */
static void explain_chosen(json_object *jchosen, size_t ri, const struct sel_cand *cd, int numa_node)
{
        json_object *e = json_object_new_object();
        char why[128];

        json_object_object_add(e, "request", json_object_new_int((int) ri));
        gpuh_alloc_explain(&cd->a, e);
        snprintf(why, sizeof(why), "numa node %d%s, %u vGPUs on the GPU, %s", cd->node,
                 numa_node >= 0 && cd->node == numa_node ? " (the vCPUs')" : "",
                 cd->load, cd->rank_reuse ? "to create or set" : "ready as it is");
        json_object_object_add(e, "why", json_object_new_string(why));
        json_object_array_add(jchosen, e);
}

/* The error line of request @ri (@what) when nothing is left for it: @n_free could be given,
 * and why the GPUs that refused it did. Returns -ENOSPC. */
static int refuse(struct sel *c, size_t ri, const struct gpuh_request *rq, const char *what, size_t n_free,
                  char **reterr)
{
        char full[512], modes[512], users[512];

        return gpuh_error(reterr, -ENOSPC, "request %zu asks for %s%s, only %zu free on this host%s%s%s", ri,
                          what, rq->numa == GPUH_NUMA_REQUIRE ? " on the vCPUs' NUMA node" : "",
                          n_free, sel_full_list(c, full, sizeof(full)),
                          sel_mode_list(c, modes, sizeof(modes)),
                          rq->mode == GPUH_REQ_VENDOR_VGPU ?
                          sel_users_of_type(c, sel_vgpu_type_id(c->in->inv, rq->profile), rq->profile, users, sizeof(users)) : "");
}

/* Answer request @ri: its count of devices one by one, each the best of the candidates left
 * by the plan so far, which it joins. Returns 0; -EINVAL; -ENOSPC; -ENOMEM. */
static int select_request(struct sel *c, size_t ri, json_object *jcand, json_object *jchosen, char **reterr)
{
        const struct gpuh_request *rq = &c->in->requests[ri];
        size_t free_at_start = 0;
        char what[400];
        int r;

        describe(rq, what, sizeof(what));
        if (rq->numa == GPUH_NUMA_REQUIRE && c->in->numa_node < 0)
                return gpuh_error(reterr, -EINVAL, "request %zu (%s) requires the NUMA node of the vCPUs, which are not pinned to one node",
                                  ri, what);
        for (unsigned k = 0; k < rq->count; k++) {
                _cleanup_free_ struct sel_cand *v = NULL;
                size_t n = 0, best, fitting;

                r = sel_candidates(c, rq, (int) ri, &v, &n);
                if (r == -ENOENT)
                        return gpuh_error(reterr, -EINVAL, "request %zu: vGPU type '%s' is not known on this host: no VF "
                                          "lists it as creatable now or has it set%s", ri, rq->profile,
                                          sel_equal_size_busy(c->in->inv) ? " (a GPU in equal-size vGPU mode lists only "
                                          "the size it carries; NVML, which names every type, did not answer)" : "");
                if (r < 0)
                        return r;
                best = rank(c, rq, v, n, &fitting);
                if (k == 0) {
                        free_at_start = fitting;
                        if (jcand)
                                explain_free(jcand, ri, v, n);
                }
                /* what could be given: candidates count one by one, but some share a budget (a
                 * GPU's framebuffer), so count what was picked */
                if (best == SIZE_MAX)
                        return refuse(c, ri, rq, what, k > 0 ? (size_t) k : free_at_start, reterr);
                if (v[best].a.kind == GPUH_ALLOC_MDEV && v[best].a.mdev_new &&
                    derive_uuid(c->in->uuid, c->n_new_mdevs++, v[best].a.uuid) < 0)
                        return gpuh_error(reterr, -EINVAL, "request %zu: an mdev needs the domain's <uuid>", ri);
                if (jchosen)
                        explain_chosen(jchosen, ri, &v[best], c->in->numa_node);
                if ((r = sel_push(c, &v[best].a)) < 0)
                        return r;
        }
        return 0;
}

int gpuh_select_requests(const struct gpuh_select_in *in, struct gpuh_alloc **ret, size_t *ret_n,
                         json_object *explain, char **reterr)
{
        struct sel c = { .in = in };
        json_object *jcand = explain ? json_object_new_array() : NULL, *jchosen = explain ? json_object_new_array() : NULL;
        bool pass = false, vgpu = false;
        int r;

        if (explain) {
                json_object_object_add(explain, "candidates", jcand);
                json_object_object_add(explain, "chosen", jchosen);
        }
        for (size_t i = 0; i < in->n_requests; i++) {
                pass |= in->requests[i].mode == GPUH_REQ_PASSTHROUGH;
                vgpu |= in->requests[i].mode != GPUH_REQ_PASSTHROUGH;
        }
        if (pass && vgpu && !in->allow_mixed)
                return gpuh_error(reterr, -EINVAL, "it mixes passthrough and vGPU requests (transformer.allow_mixed is off)");
        for (size_t ri = 0; ri < in->n_requests; ri++)
                if ((r = select_request(&c, ri, jcand, jchosen, reterr)) < 0) {
                        free(c.plan);
                        return r;
                }
        *ret = c.plan;
        *ret_n = c.n_plan;
        return 0;
}
