/* SPDX-License-Identifier: Apache-2.0 */
/* layout_mig.c: MIG-backed profiles of a vGPU layout: GPU-instance placements for its slots. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout_mig.h"

static int fail(struct gpuh_gpu_layout *gl, int err, const char *fmt, ...) _printf_(3, 4);
static int fail(struct gpuh_gpu_layout *gl, int err, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = gpuh_layout_vfail(gl, err, fmt, ap);
        va_end(ap);
        return r;
}

const struct gpuh_nvml_type *gpuh_layout_mig_type(const struct gpuh_inventory *inv, const struct gpuh_gpu *g,
                                                  const char *profile)
{
        const struct gpuh_nvml_gpu *n = NULL;
        const char *num = startswith(profile, "nvidia-");
        char buf[256], *end = NULL;
        unsigned long id = num && *num ? strtoul(num, &end, 10) : 0;

        if (gpuh_inventory_nvml(inv, g, buf, sizeof(buf), &n))
                return NULL;
        for (size_t i = 0; i < n->n_types; i++)
                if (n->types[i].gi_profile_id >= 0 &&
                    (streq(n->types[i].name, profile) || (end && !*end && n->types[i].id == id)))
                        return &n->types[i];
        return NULL;
}

int gpuh_layout_mig_gi_profile(const struct gpuh_inventory *inv, const struct gpuh_gpu_layout *gl,
                               const struct gpuh_layout_resolved *rp)
{
        const struct gpuh_nvml_gpu *n = NULL;
        const struct gpuh_nvml_type *t;
        char buf[256];

        if (gpuh_inventory_nvml(inv, gl->gpu, buf, sizeof(buf), &n))
                return -1;
        if (gl->kind == GPUH_LAYOUT_VENDOR_VF)
                t = gpuh_nvml_gpu_type(n, rp->vgpu_type);
        else if (!(t = gpuh_layout_mig_type(inv, gl->gpu, rp->type_id)) && rp->type_name)
                t = gpuh_layout_mig_type(inv, gl->gpu, rp->type_name);
        return t && t->gi_profile_id >= 0 ? (int) t->gi_profile_id : -1;
}

/* NVIDIA names MIG-backed vGPU types GPU-SLICES-MEMORY (A100-1-5C, H100-3-40C, A100-1-5CME;
 * NVIDIA vGPU user guide, "MIG-backed vGPU types"): how a profile is recognised without NVML. */
static bool looks_mig(const char *name)
{
        size_t n = strlen(name), i = n;

        while (i > 0 && isupper((unsigned char) name[i - 1]))
                i--;
        if (i == n || i == 0 || !isdigit((unsigned char) name[i - 1]))
                return false;
        while (i > 0 && isdigit((unsigned char) name[i - 1]))
                i--;
        if (i < 2 || name[i - 1] != '-' || !isdigit((unsigned char) name[i - 2]))
                return false;
        for (i -= 2; i > 0 && isdigit((unsigned char) name[i - 1]); i--)
                ;
        return i > 0 && name[i - 1] == '-';
}

static const struct gpuh_nvml_profile *gi_profile(const struct gpuh_nvml_gpu *n, unsigned id)
{
        for (size_t i = 0; i < n->n_profiles; i++)
                if (n->profiles[i].id == id)
                        return &n->profiles[i];
        return NULL;
}

static bool overlaps(unsigned s1, unsigned z1, unsigned s2, unsigned z2)
{
        return s1 < s2 + z2 && s2 < s1 + z1;
}

/* Whether the profiles are MIG-backed and MIG mode allows them: 1 yes, 0 time-sliced, or
 * @gl->error set (0); -ENOMEM. */
static int check_mode(const struct gpuh_inventory *inv, struct gpuh_gpu_layout *gl, const struct gpuh_nvml_gpu **ret)
{
        const struct gpuh_layout_resolved *mig = NULL, *ts = NULL;
        char buf[256];
        const char *why = gpuh_inventory_nvml(inv, gl->gpu, buf, sizeof(buf), ret);

        for (size_t p = 0; p < gl->n_profiles; p++) {
                const struct gpuh_layout_resolved *rp = &gl->profiles[p];

                if (rp->gi_profile >= 0 || (why && looks_mig(rp->type_name ? rp->type_name : rp->profile)))
                        mig = mig ? mig : rp;
                else
                        ts = ts ? ts : rp;
        }
        if (why && (mig || gl->entry->mig))
                return fail(gl, -ENOENT, "%s%s%s needs NVML, which tells nothing of this GPU: %s",
                            mig ? "MIG-backed profile '" : "\"mig\": true", mig ? mig->profile : "",
                            mig ? "'" : "", why);
        if (!mig)
                return 0;
        if (ts)
                return fail(gl, -EINVAL, "'%s' is MIG-backed and '%s' time-sliced: a GPU is in MIG mode "
                            "or not, its profiles are all one or all the other", mig->profile, ts->profile);
        if ((*ret)->mig_current < 0)
                return fail(gl, -EINVAL, "'%s' is MIG-backed but NVML says the GPU has no MIG mode", mig->profile);
        if ((*ret)->mig_current == 0 && !gl->entry->mig)
                return fail(gl, -EINVAL, "MIG mode is off%s and '%s' is MIG-backed: set \"mig\": true in its "
                            "layout to let gpuhooks switch it on while no VM uses the GPU, or enable it",
                            (*ret)->mig_pending == 1 ? " (on is pending a GPU reset)" : "", mig->profile);
        if ((*ret)->n_profiles == 0)
                return fail(gl, -ENOENT, "NVML lists no GPU-instance profile for it%s%s",
                            (*ret)->profiles_error ? ": " : "",
                            (*ret)->profiles_error ? (*ret)->profiles_error : "");
        return 1;
}

static int cmp_start(const void *a, const void *b)
{
        const unsigned *x = a, *y = b;

        return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Whether placement @pl overlaps one of @taken[0..@n). */
static bool clashes(const unsigned pl[2], unsigned (*taken)[2], size_t n)
{
        for (size_t k = 0; k < n; k++)
                if (overlaps(pl[0], pl[1], taken[k][0], taken[k][1]))
                        return true;
        return false;
}

/* One profile's slots: the lowest-start placements of its GI profile free of @taken (the
 * profiles before it and its own slots), appended to @taken. */
static int plan_profile(struct gpuh_gpu_layout *gl, size_t p, const struct gpuh_nvml_profile *gp, unsigned parents,
                        struct gpuh_layout_mig *m, unsigned (*taken)[2], size_t *n_taken)
{
        struct gpuh_layout_resolved *rp = &gl->profiles[p];
        unsigned pl[GPUH_NVML_MAX_PLACEMENTS][2], want = rp->count_given ? rp->count : GPUH_LAYOUT_MAX_COUNT, n = 0,
                 free_before = 0, limit = gp->instances < parents ? gp->instances : parents;
        size_t before = *n_taken;

        for (size_t i = 0; i < gp->n_placements; i++) {
                pl[i][0] = gp->placements[i].start;
                pl[i][1] = gp->placements[i].size;
        }
        qsort(pl, gp->n_placements, sizeof(pl[0]), cmp_start);
        for (size_t i = 0; i < gp->n_placements; i++) {
                free_before += !clashes(pl[i], taken, before);
                if (n >= want || n >= limit || clashes(pl[i], taken, *n_taken))
                        continue;
                m->pl[p][n].start = pl[i][0];
                m->pl[p][n].size = pl[i][1];
                taken[*n_taken][0] = pl[i][0];
                taken[(*n_taken)++][1] = pl[i][1];
                n++;
        }
        if (n == 0 || (rp->count_given && n < want))
                return fail(gl, -ENOSPC, "'%s' x %u does not fit: %u fit%s, GPU-instance profile %u (%s) "
                            "having %u of its %zu placements free of the profiles before it, at most %u "
                            "instances, %u VFs left", rp->profile, rp->count_given ? want : 1, n,
                            n == 1 ? "s" : "", gp->id, gp->name[0] ? gp->name : "unnamed", free_before,
                            gp->n_placements, gp->instances, parents);
        rp->count = n;
        return 0;
}

int gpuh_layout_mig_plan(const struct gpuh_inventory *inv, struct gpuh_gpu_layout *gl, unsigned parents,
                         struct gpuh_layout_mig *m)
{
        unsigned taken[GPUH_LAYOUT_MAX_PROFILES * GPUH_NVML_MAX_PLACEMENTS][2];
        size_t n_taken = 0;
        int r;

        *m = (struct gpuh_layout_mig) { 0 };
        r = check_mode(inv, gl, &m->nvml);
        if (r <= 0 || gl->error)
                return r;
        for (size_t p = 0; p < gl->n_profiles && p < GPUH_LAYOUT_MAX_PROFILES; p++) {
                const struct gpuh_layout_resolved *rp = &gl->profiles[p];
                const struct gpuh_nvml_profile *gp = gi_profile(m->nvml, (unsigned) rp->gi_profile);
                unsigned used = (unsigned) n_taken;

                if (!gp)
                        return fail(gl, -ENOENT, "'%s' needs GPU-instance profile %d, which NVML does not "
                                    "list for it", rp->profile, rp->gi_profile);
                r = plan_profile(gl, p, gp, parents > used ? parents - used : 0, m, taken, &n_taken);
                if (r < 0 || gl->error)
                        return r;
        }
        return 1;
}

void gpuh_layout_mig_slot(const struct gpuh_layout_mig *m, const struct gpuh_gpu_layout *gl, struct gpuh_layout_slot *s)
{
        const struct gpuh_layout_resolved *rp = &gl->profiles[s->profile];

        if (s->profile >= GPUH_LAYOUT_MAX_PROFILES || s->number >= GPUH_NVML_MAX_PLACEMENTS || rp->gi_profile < 0)
                return;
        s->gi = true;
        s->gi_profile = (unsigned) rp->gi_profile;
        s->gi_start = m->pl[s->profile][s->number].start;
        s->gi_size = m->pl[s->profile][s->number].size;
        s->gi_exists = false;
        for (size_t i = 0; i < m->nvml->n_gis; i++) {
                const struct gpuh_nvml_gi *gi = &m->nvml->gis[i];
                s->gi_exists = s->gi_exists || (gi->profile_id == s->gi_profile && gi->placement_start == s->gi_start &&
                                                gi->placement_size == s->gi_size);
        }
}

/* "slice 4", "slices 4-7" */
static const char *slices(unsigned start, unsigned size, char buf[static 32])
{
        if (size > 1)
                snprintf(buf, 32, "slices %u-%u", start, start + size - 1);
        else
                snprintf(buf, 32, "slice %u", start);
        return buf;
}

int gpuh_layout_mig_blocked(const struct gpuh_layout_mig *m, struct gpuh_gpu_layout *gl, const struct gpuh_layout_slot *s)
{
        char a[GPUH_PCI_ADDR_MAX], sl[32], gsl[32], **nv, *line;

        for (size_t i = 0; s->gi && i < m->nvml->n_gis; i++) {
                const struct gpuh_nvml_gi *gi = &m->nvml->gis[i];

                if (!overlaps(gi->placement_start, gi->placement_size, s->gi_start, s->gi_size) ||
                    (gi->profile_id == s->gi_profile && gi->placement_start == s->gi_start &&
                     gi->placement_size == s->gi_size))
                        continue;
                if (asprintf(&line, "layout of GPU %s: slot %u of '%s' (GPU-instance profile %u at %s) is not offered "
                             "now: GPU instance %u (profile %u%s%s%s, %s) is in the way",
                             gpuh_pci_addr_format(&gl->gpu->dev->addr, a), s->number, gl->profiles[s->profile].profile,
                             s->gi_profile, slices(s->gi_start, s->gi_size, sl), gi->id, gi->profile_id,
                             gi->profile_name[0] ? " '" : "", gi->profile_name, gi->profile_name[0] ? "'" : "",
                             slices(gi->placement_start, gi->placement_size, gsl)) < 0)
                        return -ENOMEM;
                nv = reallocarray(gl->notes, gl->n_notes + 1, sizeof(*nv));
                if (!nv) {
                        free(line);
                        return -ENOMEM;
                }
                gl->notes = nv;
                gl->notes[gl->n_notes++] = line;
                return 1;
        }
        return 0;
}
