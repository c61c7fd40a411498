/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_select_capacity: a physical GPU's framebuffer is a budget that mdev and NVIDIA vendor
 * vGPU selection both respect (issue 8, items 10 and 15), on hand-built inventories.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "capacity.h"
#include "select.h"
#include "vendor_vgpu.h"

#define MAX_VFS 8

/*
 * L40S-like GPUs (10de:26b9, 48 GB): A = 0000:26:00.0 with @n VFs 0000:26:00.4.., free, on
 * NVIDIA's vendor interface; optionally B = 0000:3d:00.0, full: VF 3d:00.4 set to L40S-48Q,
 * VF 3d:00.5 free with an empty creatable list (the driver lists nothing on a full GPU).
 */
struct host {
        struct gpuh_inventory inv;
        struct gpuh_gpu gpus[2];
        struct gpuh_pci_dev pf[2], vfdev[2][MAX_VFS];
        struct gpuh_vf vfs[2][MAX_VFS];
        struct gpuh_vgpu_type full[3];
        struct gpuh_mdev_type mtypes[MAX_VFS];
};

static void dev_init(struct gpuh_pci_dev *d, uint8_t bus, unsigned fn)
{
        *d = (struct gpuh_pci_dev) { .addr = { 0, bus, (uint8_t) (fn >> 3), (uint8_t) (fn & 7) },
                                     .vendor_id = 0x10de, .device_id = 0x26b9, .numa_node = 0,
                                     .iommu_group = 40 + (int) fn, .sriov_vf_device = -1,
                                     .subsys_vendor_id = -1, .subsys_device_id = -1, .revision = -1 };
        gpuh_pci_addr_format(&d->addr, d->name);
}

static void gpu_init(struct host *h, size_t gi, uint8_t bus, size_t n)
{
        struct gpuh_gpu *g = &h->gpus[gi];

        dev_init(&h->pf[gi], bus, 0);
        *g = (struct gpuh_gpu) { .dev = &h->pf[gi], .vfs = h->vfs[gi], .n_vfs = n, .group_viable = 1,
                                 .blockers = GPUH_BLOCK_VFS_ENABLED };
        for (size_t i = 0; i < n; i++) {
                dev_init(&h->vfdev[gi][i], bus, 4 + (unsigned) i);
                h->vfdev[gi][i].is_vf = true;
                h->vfdev[gi][i].physfn = h->pf[gi].addr;
                h->vfs[gi][i] = (struct gpuh_vf) { .dev = &h->vfdev[gi][i], .index = (int) i, .has_vendor_vgpu = true,
                                                   .vendor_vgpu = { 0, h->full, ARRAY_SIZE(h->full), -1 } };
        }
}

/* VF @i of GPU @gi has type @id set: as the driver shows it, its own list is empty then. */
static void set_type(struct host *h, size_t gi, size_t i, unsigned id)
{
        h->vfs[gi][i].vendor_vgpu = (struct gpuh_vendor_vgpu) { id, NULL, 0, -1 };
        h->vfs[gi][i].current_type_name = gpuh_vgpu_type_name(h->full, ARRAY_SIZE(h->full), id);
}

/* The free VFs of GPU @gi list only @n of @types now (what still fits). */
static void shrink(struct host *h, size_t gi, struct gpuh_vgpu_type *types, size_t n)
{
        for (size_t i = 0; i < h->gpus[gi].n_vfs; i++)
                if (h->vfs[gi][i].vendor_vgpu.current_type == 0)
                        h->vfs[gi][i].vendor_vgpu = (struct gpuh_vendor_vgpu) { 0, types, n, -1 };
}

static void host_init(struct host *h, size_t n, bool with_b)
{
        memset(h, 0, sizeof(*h));
        h->full[0] = (struct gpuh_vgpu_type) { 1152, (char *) "NVIDIA L40S-8Q" };
        h->full[1] = (struct gpuh_vgpu_type) { 1155, (char *) "NVIDIA L40S-24Q" };
        h->full[2] = (struct gpuh_vgpu_type) { 1156, (char *) "NVIDIA L40S-48Q" };
        gpu_init(h, 0, 0x26, n);
        if (with_b) {
                gpu_init(h, 1, 0x3d, 2);
                set_type(h, 1, 0, 1156);
                shrink(h, 1, NULL, 0);
        }
        h->inv.gpus = h->gpus;
        h->inv.n_gpus = with_b ? 2 : 1;
        h->inv.iommu = true;
}

static int ask(struct host *h, enum gpuh_req_mode mode, const char *profile, unsigned count,
               const struct gpuh_reservation *others, size_t n_others, size_t *ret_n, char **reterr)
{
        char prof[64];
        struct gpuh_request rq = { .count = count, .mode = mode, .vendor = -1, .device = -1, .profile = prof };
        struct gpuh_select_in in = { .inv = &h->inv, .domain = "i-2-99-VM",
                                     .uuid = "0c0d3f2e-5b7a-4f1e-8a90-6f1d2c3b4d99", .others = others,
                                     .n_others = n_others, .requests = &rq, .n_requests = 1, .numa_node = -1 };
        struct gpuh_alloc *a = NULL;
        int r;

        snprintf(prof, sizeof(prof), "%s", profile);
        *ret_n = 0;
        r = gpuh_select_requests(&in, &a, ret_n, NULL, reterr);
        free(a);
        return r;
}

/* 16 x L40S-48Q on one 48 GB L40S: one fits, the next is refused naming the GPU. */
static void test_vendor_48q(void **state)
{
        struct host h;
        char *err = NULL;
        size_t n;

        host_init(&h, 4, false);
        assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-48Q", 1, NULL, 0, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-48Q", 2, NULL, 0, &n, &err), -ENOSPC);
        assert_non_null(err);
        assert_non_null(strstr(err, "0000:26:00.0"));
        assert_non_null(strstr(err, "49152 of 49152 MiB"));
        assert_null(strchr(err, '\n'));
        free(err);
        err = NULL;
        /* by number as well as by name */
        assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "1156", 2, NULL, 0, &n, &err), -ENOSPC);
        free(err);
}

/* What another domain's live reservation promised counts before it is set. */
static void test_vendor_reserved(void **state)
{
        struct host h;
        struct gpuh_alloc dev = { .kind = GPUH_ALLOC_VENDOR_VGPU, .vgpu_type = 1156, .request = 0 };
        struct gpuh_reservation res = { .domain = (char *) "i-2-98-VM", .state = (char *) "reserved",
                                        .devices = &dev, .n_devices = 1 };
        char *err = NULL;
        size_t n;

        host_init(&h, 4, false);
        dev.addr = h.vfdev[0][2].addr;
        dev.parent = h.pf[0].addr;
        assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-48Q", 1, &res, 1, &n, &err), -ENOSPC);
        assert_non_null(strstr(err, "0000:26:00.0"));
        free(err);
        err = NULL;
        /* half of it: room for one 24 GB vGPU beside the reservation */
        dev.vgpu_type = 1155;
        assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-24Q", 1, &res, 1, &n, &err), 0);
        assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-24Q", 2, &res, 1, &n, &err), -ENOSPC);
        free(err);
}

/* gpuh_gpu_capacity() on the same host: the row of a type is the smaller of the free VFs that
 * list it and the framebuffer's room; a promise takes its VF and its framebuffer. */
static const struct gpuh_profile_cap *cap_row(const struct gpuh_profile_cap *c, size_t n, const char *type_id)
{
        for (size_t i = 0; i < n; i++)
                if (streq(c[i].type_id, type_id))
                        return &c[i];
        fail_msg("no capacity row for type %s", type_id);
        return NULL;
}

static void test_capacity_rows(void **state)
{
        struct host h;
        struct gpuh_alloc dev = { .kind = GPUH_ALLOC_VENDOR_VGPU, .vgpu_type = 1155, .request = 0 };
        struct gpuh_reservation res = { .domain = (char *) "i-2-98-VM", .state = (char *) "reserved",
                                        .devices = &dev, .n_devices = 1 };
        struct gpuh_promised p = { .res = &res, .n_res = 1 };
        struct gpuh_profile_cap *c = NULL;
        const struct gpuh_profile_cap *r;
        size_t n = 0;

        host_init(&h, 8, true);                         /* B names the model's 48 GB */
        set_type(&h, 0, 0, 1152);                       /* one 8Q set: 8192 of 49152 MiB taken */
        shrink(&h, 0, h.full, 2);                       /* the free VFs list what fits: 8Q, 24Q */
        assert_int_equal(gpuh_gpu_capacity(&h.inv, &h.gpus[0], NULL, &c, &n), 2);
        /* 8Q: (6 x 8192 - 8192) / 8192 = 5 by framebuffer, 7 free VFs -> 5 */
        r = cap_row(c, n, "1152");
        assert_int_equal(r->kind, GPUH_CAP_VENDOR_VGPU);
        assert_int_equal(r->created, 1);
        assert_int_equal(r->in_use, 0);                 /* no usage table: nobody uses it */
        assert_int_equal(r->free_slots, 7);
        assert_int_equal(r->fb_more, 5);
        assert_int_equal(r->more, 5);
        /* 24Q: (2 x 24576 - 8192) / 24576 = 1; 48Q no longer offered: no row */
        assert_int_equal(cap_row(c, n, "1155")->more, 1);
        assert_string_equal(cap_row(c, n, "1155")->name, "NVIDIA L40S-24Q");
        free(c);

        /* a 24Q promised on VF 2: that VF is no longer free and 24576 MiB more are taken */
        dev.addr = h.vfdev[0][2].addr;
        dev.parent = h.pf[0].addr;
        assert_int_equal(gpuh_gpu_capacity(&h.inv, &h.gpus[0], &p, &c, &n), 2);
        r = cap_row(c, n, "1152");
        assert_int_equal(r->free_slots, 6);
        assert_int_equal(r->fb_more, 2);                /* (49152 - 8192 - 24576) / 8192 */
        assert_int_equal(r->more, 2);
        assert_int_equal(cap_row(c, n, "1155")->more, 0);
        free(c);

        /* a GPU offered for passthrough has a passthrough row first */
        h.gpus[0].blockers = 0;
        h.gpus[0].n_vfs = 0;
        assert_int_equal(gpuh_gpu_capacity(&h.inv, &h.gpus[0], NULL, &c, &n), 1);
        assert_int_equal(c[0].kind, GPUH_CAP_PASSTHROUGH);
        assert_int_equal(c[0].more, 1);
        assert_string_equal(gpuh_cap_kind_to_string(c[0].kind), "passthrough");
        free(c);
}

/* Types set on VFs (used or not) take their framebuffer; a VF set to the type asked is reused.
 * The GPU's size comes from another GPU of the model (B, full with one 48 GB vGPU). */
static void test_vendor_set_types(void **state)
{
        struct host h;
        char *err = NULL;
        size_t n;

        /* equal-size mode: two 8 GB set, the free VFs list only 8 GB types */
        host_init(&h, 8, true);
        set_type(&h, 0, 0, 1152);
        set_type(&h, 0, 1, 1152);
        shrink(&h, 0, &h.full[0], 1);
        /* 48 GB holds 6 x 8 GB: the two set ones (reused first) and 4 more */
        assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-8Q", 6, NULL, 0, &n, &err), 0);
        assert_int_equal(n, 6);
        assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-8Q", 7, NULL, 0, &n, &err), -ENOSPC);
        assert_non_null(strstr(err, "GPU 0000:26:00.0 (49152 of 49152 MiB"));
        free(err);
        err = NULL;

        /* equal-size mode, the driver's default without NVML: no other size joins the 8 GB ones,
         * even where a list (wrongly) offers it */
        shrink(&h, 0, &h.full[0], 2);
        assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-24Q", 1, NULL, 0, &n, &err), -ENOSPC);
        assert_non_null(strstr(err, "equal-size vGPU mode (the driver's default, NVML did not say) keeps one size per "
                                    "GPU: 0000:26:00.0 has NVIDIA L40S-8Q"));
        err = (free(err), NULL);

        /* mixed-size mode (NVML says so): 16 GB set, 8 and 24 GB still listed; one 24 GB fits, not two */
        {
                struct gpuh_nvml_gpu ng = { .addr = h.pf[0].addr, .mig_current = -1, .mig_pending = -1,
                                            .vgpu_mode = GPUH_VGPU_MODE_MIXED };
                struct gpuh_nvml_info info = { .gpus = &ng, .n_gpus = 1 };

                h.pf[0].driver = (char *) "nvidia";
                h.inv.nvml = &info;
                assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-24Q", 1, NULL, 0, &n, &err), 0);
                assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-24Q", 2, NULL, 0, &n, &err), -ENOSPC);
                assert_null(strstr(err, "0000:26:00.0 has"));     /* B (3d:00.0) is still equal-size */
                free(err);
                h.inv.nvml = NULL;
                h.pf[0].driver = NULL;
        }
}

/* A type no creatable list shows is still known when NVML lists it: the refusal says there is
 * none free, not that the type is unknown. */
static void test_vendor_type_known_by_nvml(void **state)
{
        struct host h;
        char *err = NULL;
        size_t n;
        struct gpuh_nvml_type t = { .id = 1153, .name = "NVIDIA L40S-12Q", .fb_mib = 12288, .max_instances = 4,
                                    .gi_profile_id = -1 };
        struct gpuh_nvml_gpu ng = { .mig_current = -1, .mig_pending = -1, .vgpu_mode = GPUH_VGPU_MODE_EQUAL,
                                    .types = &t, .n_types = 1 };
        struct gpuh_nvml_info info = { .gpus = &ng, .n_gpus = 1 };

        host_init(&h, 4, false);
        assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-12Q", 1, NULL, 0, &n, &err), -EINVAL);
        assert_non_null(strstr(err, "is not known on this host"));
        err = (free(err), NULL);
        ng.addr = h.pf[0].addr;
        h.pf[0].driver = (char *) "nvidia";
        h.inv.nvml = &info;
        assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-12Q", 1, NULL, 0, &n, &err), -ENOSPC);
        assert_null(strstr(err, "not known"));
        free(err);
        h.inv.nvml = NULL;
        h.pf[0].driver = NULL;
}

/* No list on the host names the model's whole framebuffer: what is set plus the largest type
 * still listed is all that is known to fit (a lower bound: promises past it wait). */
static void test_vendor_size_unknown(void **state)
{
        struct host h;
        char *err = NULL;
        size_t n;

        host_init(&h, 8, false);
        set_type(&h, 0, 0, 1152);
        set_type(&h, 0, 1, 1152);
        shrink(&h, 0, &h.full[0], 1);
        assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-8Q", 3, NULL, 0, &n, &err), 0);
        assert_int_equal(ask(&h, GPUH_REQ_VENDOR_VGPU, "NVIDIA L40S-8Q", 4, NULL, 0, &n, &err), -ENOSPC);
        free(err);
}

/* Hostile mdev type numbers: max_instance x framebuffer past INT64_MAX must not overflow (item
 * 15); such a GPU has room (available_instances still decides). */
static void test_mdev_huge_numbers(void **state)
{
        struct host h;
        char *err = NULL;
        size_t n;

        host_init(&h, 2, false);
        for (size_t i = 0; i < 2; i++) {
                h.mtypes[i] = (struct gpuh_mdev_type) { .type_id = (char *) "nvidia-9", .name = (char *) "NVIDIA X-4Q",
                                                        .available_instances = 1,
                                                        .params = { INT64_MAX / 2 + 1, 4, -1, -1, -1 } };
                h.vfs[0][i].has_vendor_vgpu = false;
                h.vfs[0][i].vendor_vgpu = (struct gpuh_vendor_vgpu) { 0 };
                h.vfs[0][i].types = &h.mtypes[i];
                h.vfs[0][i].n_types = 1;
        }
        assert_int_equal(ask(&h, GPUH_REQ_MDEV, "NVIDIA X-4Q", 2, NULL, 0, &n, &err), 0);
        assert_int_equal(n, 2);
        /* and a framebuffer that alone is past any budget sum */
        for (size_t i = 0; i < 2; i++)
                h.mtypes[i].params = (struct gpuh_vgpu_params) { 3, INT64_MAX / 2, -1, -1, -1 };
        assert_int_equal(ask(&h, GPUH_REQ_MDEV, "NVIDIA X-4Q", 2, NULL, 0, &n, &err), 0);
        free(err);
}

/* The one capacity rule both kinds share. */
static void test_vgpu_fits(void **state)
{
        struct gpuh_vgpu_params a2_4q = { 4, 4096, 1, 4096, 2400 };     /* A2-4Q: 4 x 4 GB on 16 GB */
        struct gpuh_vgpu_params unknown = { -1, 4096, -1, -1, -1 };
        struct gpuh_fb_room r;

        assert_true(gpuh_vgpu_fits(&a2_4q, 0, &r));
        assert_int_equal(r.total, 16384);
        assert_int_equal(r.need, 4096);
        assert_int_equal(r.max_instances, 4);
        assert_true(gpuh_vgpu_fits(&a2_4q, 12288, NULL));
        assert_false(gpuh_vgpu_fits(&a2_4q, 12289, &r));
        assert_int_equal(r.used, 12289);
        assert_false(gpuh_vgpu_fits(&a2_4q, 16384, NULL));
        assert_true(gpuh_vgpu_fits(&a2_4q, -5, &r));    /* nothing known used */
        assert_int_equal(r.used, 0);
        /* unknown numbers: the caller's other checks decide */
        assert_true(gpuh_vgpu_fits(&unknown, INT64_MAX, &r));
        assert_int_equal(r.total, -1);
        unknown = (struct gpuh_vgpu_params) { 4, -1, -1, -1, -1 };
        assert_true(gpuh_vgpu_fits(&unknown, INT64_MAX, NULL));
}

/* Hostile numbers saturate instead of overflowing (item 15). */
static void test_vgpu_fits_overflow(void **state)
{
        struct gpuh_vgpu_params huge = { INT64_MAX / 2 + 1, 4, -1, -1, -1 };
        struct gpuh_fb_room r;

        assert_true(gpuh_vgpu_fits(&huge, 0, &r));
        assert_int_equal(r.total, INT64_MAX);
        assert_true(gpuh_vgpu_fits(&huge, INT64_MAX - 4, NULL));
        assert_false(gpuh_vgpu_fits(&huge, INT64_MAX - 3, NULL));
        assert_false(gpuh_vgpu_fits(&huge, INT64_MAX, NULL));   /* used + need past INT64_MAX */
        huge = (struct gpuh_vgpu_params) { INT64_MAX, INT64_MAX, -1, -1, -1 };
        assert_true(gpuh_vgpu_fits(&huge, 0, &r));
        assert_int_equal(r.total, INT64_MAX);
        assert_false(gpuh_vgpu_fits(&huge, 1, NULL));

        assert_int_equal(gpuh_fb_add(1, 2), 3);
        assert_int_equal(gpuh_fb_add(INT64_MAX, 1), INT64_MAX);
        assert_int_equal(gpuh_fb_add(INT64_MAX / 2 + 1, INT64_MAX / 2 + 1), INT64_MAX);
        assert_int_equal(gpuh_fb_add(-1, 7), 7);
        assert_int_equal(gpuh_fb_add(7, INT64_MIN), 7);
}

/* Vendor vGPU sizes come from NVIDIA's type names. */
static void test_type_name_fb(void **state)
{
        assert_int_equal(gpuh_vgpu_type_name_fb("NVIDIA L40S-8Q"), 8192);
        assert_int_equal(gpuh_vgpu_type_name_fb("NVIDIA L40S-48Q"), 49152);
        assert_int_equal(gpuh_vgpu_type_name_fb("NVIDIA L40S-1B"), 1024);
        assert_int_equal(gpuh_vgpu_type_name_fb("GRID M60-0B"), 512);
        assert_int_equal(gpuh_vgpu_type_name_fb("NVIDIA H100-1-10C"), 10240);
        assert_int_equal(gpuh_vgpu_type_name_fb("NVIDIA A100-1-5CME"), 5120);
        assert_int_equal(gpuh_vgpu_type_name_fb("NVIDIA RTX Pro 6000 Blackwell DC-4Q"), 4096);
        assert_int_equal(gpuh_vgpu_type_name_fb("NVIDIA L40S"), -1);
        assert_int_equal(gpuh_vgpu_type_name_fb("NVIDIA L40S-Q"), -1);
        assert_int_equal(gpuh_vgpu_type_name_fb("NVIDIA L40S-8"), -1);
        assert_int_equal(gpuh_vgpu_type_name_fb("NVIDIA L40S-8q"), -1);
        assert_int_equal(gpuh_vgpu_type_name_fb("NVIDIA L40S-8Q "), -1);
        assert_int_equal(gpuh_vgpu_type_name_fb("NVIDIA X-99999999999999999999999Q"), -1);
        assert_int_equal(gpuh_vgpu_type_name_fb(""), -1);
        assert_int_equal(gpuh_vgpu_type_name_fb(NULL), -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vgpu_fits),
                cmocka_unit_test(test_vgpu_fits_overflow),
                cmocka_unit_test(test_type_name_fb),
                cmocka_unit_test(test_vendor_48q),
                cmocka_unit_test(test_vendor_reserved),
                cmocka_unit_test(test_capacity_rows),
                cmocka_unit_test(test_vendor_set_types),
                cmocka_unit_test(test_vendor_size_unknown),
                cmocka_unit_test(test_vendor_type_known_by_nvml),
                cmocka_unit_test(test_mdev_huge_numbers),
        };
        return cmocka_run_group_tests_name("select_capacity", tests, NULL, NULL);
}
