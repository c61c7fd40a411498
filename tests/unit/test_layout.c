/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_layout: vGPU layouts (common/layout.c): the configuration's entries, which entry a GPU
 * takes, the slots' derived UUIDs, and slot resolution on hand-built inventories: counts, the
 * capacity rule, where each slot goes, and that it moves only when the hardware does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "inventory.h"
#include "layout.h"
#include "testutil.h"

#define MAX_VFS 8

static int load_text(const char *text, struct gpuh_config **c, char **err)
{
        char path[PATH_MAX];

        tu_write(tu_dir, "c.json", text);
        snprintf(path, sizeof(path), "%s/c.json", tu_dir);
        *c = NULL;
        *err = NULL;
        return gpuh_config_load(path, true, c, err);
}

static void expect_rejected(const char *text, const char *needle)
{
        struct gpuh_config *c;
        char *err;

        assert_int_equal(load_text(text, &c, &err), -EBADMSG);
        assert_null(c);
        if (!err || !strstr(err, needle))
                fail_msg("%s: '%s' lacks '%s'", text, err ? err : "(none)", needle);
        free(err);
}

static void test_config(void **state)
{
        struct gpuh_config *c;
        char *err;

        assert_int_equal(load_text("{\"layouts\": [{\"match\": {\"address\": \"0000:26:00.0\"}, \"profiles\": "
                                   "[{\"profile\": \"NVIDIA L40S-8Q\", \"count\": 6}], \"mig\": true}, {\"match\": {\"vendor\": \"10de\", "
                                   "\"device\": \"25b6\", \"subsystem_device\": \"157e\"}, \"profiles\": [{\"profile\": "
                                   "\"NVIDIA A2-4Q\"}, {\"profile\": \"nvidia-754\", \"count\": 0}]}]}", &c, &err), 0);
        assert_int_equal(c->n_layouts, 2);
        assert_string_equal(c->layouts[0].match.address_text, "0000:26:00.0");
        assert_int_equal(c->layouts[0].match.address.bus, 0x26);
        assert_int_equal(c->layouts[0].match.vendor, -1);
        assert_int_equal(c->layouts[0].n_profiles, 1);
        assert_string_equal(c->layouts[0].profiles[0].profile, "NVIDIA L40S-8Q");
        assert_int_equal(c->layouts[0].profiles[0].count, 6);
        assert_null(c->layouts[1].match.address_text);
        assert_int_equal(c->layouts[1].match.vendor, 0x10de);
        assert_int_equal(c->layouts[1].match.device, 0x25b6);
        assert_int_equal(c->layouts[1].match.subsystem_vendor, -1);
        assert_int_equal(c->layouts[1].match.subsystem_device, 0x157e);
        assert_int_equal(c->layouts[1].n_profiles, 2);
        assert_int_equal(c->layouts[1].profiles[0].count, 0);
        assert_true(c->layouts[0].mig);
        assert_false(c->layouts[1].mig);                       /* the default */
        gpuh_config_free(c);

        expect_rejected("{\"layouts\": {}}", "key layouts: must be an array");
        expect_rejected("{\"layouts\": [{\"match\": {\"address\": \"0000:26:00.0\"}}]}", "key layouts[0]: must be an object of");
        expect_rejected("{\"layouts\": [{\"match\": {\"address\": \"0000:26:00.0\", \"vendor\": \"10de\"}, \"profiles\": "
                        "[{\"profile\": \"x\"}]}]}", "key layouts[0].match: must hold 'address' alone");
        expect_rejected("{\"layouts\": [{\"match\": {\"vendor\": \"10de\"}, \"profiles\": [{\"profile\": \"x\"}]}]}",
                        "'vendor' and 'device'");
        expect_rejected("{\"layouts\": [{\"match\": {\"address\": \"26:00.0\"}, \"profiles\": [{\"profile\": \"x\"}]}]}",
                        "key layouts[0].match.address: must be a full PCI address");
        expect_rejected("{\"layouts\": [{\"match\": {\"vendor\": \"10DE\", \"device\": \"26b9\"}, \"profiles\": "
                        "[{\"profile\": \"x\"}]}]}", "key layouts[0].match.vendor: must be 4 lowercase hex digits");
        expect_rejected("{\"layouts\": [{\"match\": {\"address\": \"0000:26:00.0\"}, \"profiles\": []}]}",
                        "key layouts[0].profiles: must be an array of 1 to 32 profiles");
        expect_rejected("{\"layouts\": [{\"match\": {\"address\": \"0000:26:00.0\"}, \"profiles\": [{\"count\": 2}]}]}",
                        "key layouts[0].profiles[0]: must be an object of 'profile'");
        expect_rejected("{\"layouts\": [{\"match\": {\"address\": \"0000:26:00.0\"}, \"profiles\": [{\"profile\": \"x\", "
                        "\"count\": -1}]}]}", "key layouts[0].profiles[0].count: must be an integer from 0 to 1024");
        expect_rejected("{\"layouts\": [{\"match\": {\"address\": \"0000:26:00.0\"}, \"profiles\": [{\"profile\": \"\"}]}]}",
                        "key layouts[0].profiles[0].profile: must be a vGPU profile name");
        expect_rejected("{\"layouts\": [{\"match\": {\"address\": \"0000:26:00.0\"}, \"profiles\": [{\"profile\": \"x\"}]}, "
                        "{\"match\": {\"address\": \"0000:26:00.0\"}, \"profiles\": [{\"profile\": \"y\"}]}]}",
                        "key layouts[1].match: matches the address of 'layouts[0]' again");
        expect_rejected("{\"layouts\": [{\"match\": {\"address\": \"0000:26:00.0\"}, \"profiles\": [{\"profile\": \"x\", "
                        "\"mig\": true}]}]}", "key layouts[0].profiles[0]: must be an object of");
        expect_rejected("{\"layouts\": [{\"match\": {\"address\": \"0000:26:00.0\"}, \"profiles\": [{\"profile\": \"x\"}], "
                        "\"mig\": 1}]}", "key layouts[0].mig: must be true or false");
}

/* A file broken elsewhere keeps its layouts when they are all valid, none when one is not. */
static void test_config_salvage(void **state)
{
        struct gpuh_config *c;
        char path[PATH_MAX], *err;

        snprintf(path, sizeof(path), "%s/c.json", tu_dir);
        tu_write(tu_dir, "c.json", "{\"discovery\": {\"typo\": 1}, \"layouts\": [{\"match\": {\"address\": "
                 "\"0000:26:00.0\"}, \"profiles\": [{\"profile\": \"NVIDIA L40S-8Q\", \"count\": 6}]}]}");
        assert_int_equal(gpuh_config_load_or_default(path, true, &c, &err), 0);
        assert_non_null(err);
        assert_int_equal(c->n_layouts, 1);
        assert_string_equal(c->layouts[0].profiles[0].profile, "NVIDIA L40S-8Q");
        free(err);
        gpuh_config_free(c);
        tu_write(tu_dir, "c.json", "{\"discovery\": {\"typo\": 1}, \"layouts\": [{\"match\": {\"address\": "
                 "\"0000:26:00.0\"}, \"profiles\": [{\"profile\": \"NVIDIA L40S-8Q\"}]}, {\"match\": {}, \"profiles\": "
                 "[{\"profile\": \"x\"}]}]}");
        assert_int_equal(gpuh_config_load_or_default(path, true, &c, &err), 0);
        assert_non_null(err);
        assert_int_equal(c->n_layouts, 0);
        assert_null(c->layouts);
        free(err);
        gpuh_config_free(c);
}

static void dev_init(struct gpuh_pci_dev *d, uint8_t bus, unsigned fn, uint16_t device)
{
        *d = (struct gpuh_pci_dev) { .addr = { 0, bus, (uint8_t) (fn >> 3), (uint8_t) (fn & 7) },
                                     .vendor_id = 0x10de, .device_id = device, .numa_node = 0, .iommu_group = -1,
                                     .sriov_vf_device = -1, .subsys_vendor_id = 0x10de, .subsys_device_id = 0x1851,
                                     .revision = -1 };
        gpuh_pci_addr_format(&d->addr, d->name);
}

static struct gpuh_layout_match by_ids(int vendor, int device, int sv, int sd)
{
        return (struct gpuh_layout_match) { .vendor = vendor, .device = device, .subsystem_vendor = sv,
                                            .subsystem_device = sd };
}

static void test_find(void **state)
{
        struct gpuh_layout e[4] = {
                { .match = by_ids(0x10de, 0x26b9, -1, 0x9999) },
                { .match = by_ids(0x10de, 0x26b9, -1, -1) },
                { .match = by_ids(0x10de, 0x26b9, 0x10de, 0x1851) },
                { .match = { .address_text = (char *) "0000:3d:00.0", .address = { 0, 0x3d, 0, 0 }, .vendor = -1,
                             .device = -1, .subsystem_vendor = -1, .subsystem_device = -1 } },
        };
        struct gpuh_config cfg = { .layouts = e, .n_layouts = ARRAY_SIZE(e) };
        struct gpuh_pci_dev a, b, other;
        bool by_addr;

        dev_init(&a, 0x26, 0, 0x26b9);
        dev_init(&b, 0x3d, 0, 0x26b9);
        dev_init(&other, 0x3e, 0, 0x25b6);
        assert_ptr_equal(gpuh_layout_find(&cfg, &a, &by_addr), &e[1]);         /* the first id match */
        assert_false(by_addr);
        assert_ptr_equal(gpuh_layout_find(&cfg, &b, &by_addr), &e[3]);         /* the address wins */
        assert_true(by_addr);
        assert_null(gpuh_layout_find(&cfg, &other, NULL));
        assert_null(gpuh_layout_find(NULL, &a, NULL));
}

/* RFC 4122 version 5, the same as Python's uuid.uuid5(UUID(GPUH_LAYOUT_UUID_NS), name). */
static void test_slot_uuid(void **state)
{
        struct gpuh_pci_addr p = { 0, 0x3d, 0, 0 };
        char u[GPUH_UUID_STR_LEN + 1], v[GPUH_UUID_STR_LEN + 1];

        gpuh_layout_slot_uuid(&p, "nvidia-18", 2, u);
        assert_string_equal(u, "50385248-24fc-5af7-8e9a-9b85206d2ebe");
        gpuh_layout_slot_uuid(&p, "nvidia-18", 3, v);
        assert_string_not_equal(u, v);
        gpuh_layout_slot_uuid(&p, "nvidia-19", 2, v);
        assert_string_not_equal(u, v);
        p.bus = 0x3e;
        gpuh_layout_slot_uuid(&p, "nvidia-18", 2, v);
        assert_string_not_equal(u, v);
}

/* ---- resolution on hand-built hosts ---- */

struct host {
        struct gpuh_inventory inv;
        struct gpuh_gpu gpu;
        struct gpuh_pci_dev pf, vfdev[MAX_VFS];
        struct gpuh_vf vfs[MAX_VFS];
        struct gpuh_vgpu_type types[3];
        struct gpuh_mdev_type mtypes[4];
        struct gpuh_mdev mdevs[4];
        struct gpuh_vgpu_instance vgpus[4];
        struct gpuh_layout entry;
        struct gpuh_layout_profile profiles[3];
        struct gpuh_config cfg;
        struct gpuh_layouts *l;
};

/* An L40S (48 GB) with @n free VFs on NVIDIA's vendor interface, listing 8Q, 24Q, 48Q. */
static void vendor_host(struct host *h, size_t n)
{
        memset(h, 0, sizeof(*h));
        h->types[0] = (struct gpuh_vgpu_type) { 1152, (char *) "NVIDIA L40S-8Q" };
        h->types[1] = (struct gpuh_vgpu_type) { 1155, (char *) "NVIDIA L40S-24Q" };
        h->types[2] = (struct gpuh_vgpu_type) { 1156, (char *) "NVIDIA L40S-48Q" };
        dev_init(&h->pf, 0x26, 0, 0x26b9);
        h->gpu = (struct gpuh_gpu) { .dev = &h->pf, .vfs = h->vfs, .n_vfs = n };
        for (size_t i = 0; i < n; i++) {
                dev_init(&h->vfdev[i], 0x26, 4 + (unsigned) i, 0x26b9);
                h->vfdev[i].is_vf = true;
                h->vfs[i] = (struct gpuh_vf) { .dev = &h->vfdev[i], .index = (int) i, .has_vendor_vgpu = true,
                                               .vendor_vgpu = { 0, h->types, ARRAY_SIZE(h->types) } };
        }
        h->inv = (struct gpuh_inventory) { .gpus = &h->gpu, .n_gpus = 1 };
}

/* An M60-like GPU (8 GB) with PF types 2Q (nvidia-18, 4 instances) and 4Q (nvidia-20, 2). */
static void pf_host(struct host *h)
{
        memset(h, 0, sizeof(*h));
        dev_init(&h->pf, 0x3d, 0, 0x13f2);
        h->mtypes[0] = (struct gpuh_mdev_type) { .type_id = (char *) "nvidia-18", .name = (char *) "GRID M60-2Q",
                                                 .available_instances = 4, .params = { 4, 2048, 4, -1, -1 } };
        h->mtypes[1] = (struct gpuh_mdev_type) { .type_id = (char *) "nvidia-20", .name = (char *) "GRID M60-4Q",
                                                 .available_instances = 2, .params = { 2, 4096, 4, -1, -1 } };
        h->gpu = (struct gpuh_gpu) { .dev = &h->pf, .types = h->mtypes, .n_types = 2 };
        h->inv = (struct gpuh_inventory) { .gpus = &h->gpu, .n_gpus = 1 };
}

/* An existing mdev @uuid of @type on the PF (the inventory's vgpus, UUID order kept by caller). */
static void add_mdev(struct host *h, const char *uuid, const char *type)
{
        size_t i = h->gpu.n_vgpus++;

        h->gpu.vgpus = h->vgpus;
        snprintf(h->mdevs[i].uuid, sizeof(h->mdevs[i].uuid), "%s", uuid);
        h->mdevs[i].parent = h->pf.addr;
        h->mdevs[i].type_id = (char *) type;
        h->vgpus[i] = (struct gpuh_vgpu_instance) { .mdev = &h->mdevs[i] };
}

static const struct gpuh_gpu_layout *resolve(struct host *h, size_t n, ...)
{
        va_list ap;

        va_start(ap, n);
        for (size_t i = 0; i < n; i++) {
                h->profiles[i].profile = va_arg(ap, char *);
                h->profiles[i].count = va_arg(ap, int);
        }
        va_end(ap);
        h->entry = (struct gpuh_layout) { .match = by_ids(0x10de, h->pf.device_id, -1, -1), .profiles = h->profiles,
                                          .n_profiles = n };
        h->cfg = (struct gpuh_config) { .layouts = &h->entry, .n_layouts = 1 };
        h->l = gpuh_layouts_free(h->l);
        assert_int_equal(gpuh_layouts_resolve(&h->inv, &h->cfg, &h->l), 0);
        assert_int_equal(h->l->n, 1);
        return &h->l->v[0];
}

static void assert_vfs(const struct gpuh_gpu_layout *gl, const int *want, size_t n)
{
        assert_int_equal(gl->n_slots, n);
        for (size_t i = 0; i < n; i++)
                if (gl->slots[i].vf.func + 8 * gl->slots[i].vf.slot != want[i] + 4)
                        fail_msg("slot %zu is on VF %d, not VF %d", i, gl->slots[i].vf.func + 8 * gl->slots[i].vf.slot - 4,
                                 want[i]);
}

static void test_vendor(void **state)
{
        struct host *h = calloc(1, sizeof(*h));
        const struct gpuh_gpu_layout *gl;

        vendor_host(h, MAX_VFS);
        /* the most that fits: 48 GB / 8 GB, on the lowest VFs */
        gl = resolve(h, 1, "NVIDIA L40S-8Q", 0);
        assert_int_equal(gl->error, 0);
        assert_int_equal(gl->kind, GPUH_LAYOUT_VENDOR_VF);
        assert_int_equal(gl->gpu_fb_mib, 49152);
        assert_int_equal(gl->profiles[0].vgpu_type, 1152);
        assert_int_equal(gl->profiles[0].count, 6);
        assert_vfs(gl, (const int[]) { 0, 1, 2, 3, 4, 5 }, 6);
        assert_false(gl->slots[0].exists);
        assert_non_null(gpuh_layouts_find_vf(h->l, &h->vfdev[5].addr, NULL));
        assert_null(gpuh_layouts_find_vf(h->l, &h->vfdev[6].addr, NULL));

        /* VF 3 set to 8Q (a domain got slot 3): the same VFs, VF 3 in use */
        h->vfs[3].vendor_vgpu = (struct gpuh_vendor_vgpu) { .current_type = 1152, .gpu_instance_id = -1 };
        h->vfs[3].current_type_name = "NVIDIA L40S-8Q";
        for (size_t i = 0; i < MAX_VFS; i++)
                if (i != 3)
                        h->vfs[i].vendor_vgpu.n_creatable = 2;  /* 48Q fits no more */
        gl = resolve(h, 1, "NVIDIA L40S-8Q", 0);
        assert_int_equal(gl->gpu_fb_mib, 8192 + 24576);         /* no name says more: set + largest listed */
        h->inv.known_types = &h->types[2];                      /* the name cache remembers the 48Q */
        h->inv.n_known_types = 1;
        gl = resolve(h, 1, "NVIDIA L40S-8Q", 0);
        assert_int_equal(gl->gpu_fb_mib, 49152);
        assert_int_equal(gl->profiles[0].count, 6);
        assert_vfs(gl, (const int[]) { 3, 0, 1, 2, 4, 5 }, 6);
        assert_true(gl->slots[0].exists);
        assert_false(gl->slots[1].exists);

        /* VF 0 carries a type of no profile: it is not a slot, the next free VF is */
        h->vfs[0].vendor_vgpu = (struct gpuh_vendor_vgpu) { .current_type = 1155, .gpu_instance_id = -1 };
        for (size_t i = 1; i < MAX_VFS; i++)
                if (i != 3)
                        h->vfs[i].vendor_vgpu.n_creatable = 1;  /* 16 GB left: 8Q only */
        gl = resolve(h, 1, "NVIDIA L40S-8Q", 0);
        assert_int_equal(gl->profiles[0].count, 6);             /* the hardware's, whatever is set */
        assert_vfs(gl, (const int[]) { 3, 1, 2, 4, 5, 6 }, 6);
        gpuh_layouts_free(h->l);
        free(h);
}

static void test_vendor_fit(void **state)
{
        struct host *h = calloc(1, sizeof(*h));
        const struct gpuh_gpu_layout *gl;
        struct gpuh_nvml_gpu ng = { .addr = { 0, 0x26, 0, 0 }, .mig_current = -1, .mig_pending = -1,
                                    .vgpu_mode = GPUH_VGPU_MODE_EQUAL };
        struct gpuh_nvml_info nvml = { .gpus = &ng, .n_gpus = 1 };

        vendor_host(h, MAX_VFS);
        gl = resolve(h, 1, "NVIDIA L40S-8Q", 7);
        assert_int_equal(gl->error, -ENOSPC);
        assert_int_equal(gl->n_slots, 0);
        if (!strstr(gl->why, "0000:26:00.0") || !strstr(gl->why, "'NVIDIA L40S-8Q' x 7") || !strstr(gl->why, "49152"))
                fail_msg("'%s' does not name the GPU, the profile and the capacity", gl->why);
        /* sizes the vGPU mode cannot mix: equal-size, the driver's default when NVML does not say,
         * or NVML's word */
        gl = resolve(h, 2, "NVIDIA L40S-24Q", 1, "NVIDIA L40S-8Q", 0);
        assert_int_equal(gl->error, -EINVAL);
        assert_int_equal(gl->n_slots, 0);
        if (!strstr(gl->why, "equal-size vGPU mode (the driver's default; NVML did not say)") ||
            !strstr(gl->why, "'NVIDIA L40S-24Q' (24576 MiB) and 'NVIDIA L40S-8Q' (8192 MiB)"))
                fail_msg("'%s' does not name the sizes and the mode", gl->why);
        h->pf.driver = (char *) "nvidia";
        h->inv.nvml = &nvml;
        gl = resolve(h, 2, "NVIDIA L40S-24Q", 1, "NVIDIA L40S-8Q", 0);
        assert_int_equal(gl->error, -EINVAL);
        assert_null(strstr(gl->why, "default"));
        gl = resolve(h, 2, "NVIDIA L40S-8Q", 1, "NVIDIA L40S-8Q", 0);   /* one size: not the mode's */
        assert_int_equal(gl->error, -EINVAL);
        assert_non_null(strstr(gl->why, "listed twice"));
        /* mixed-size mode: sizes share the framebuffer: a 24Q leaves room for three 8Q */
        ng.vgpu_mode = GPUH_VGPU_MODE_MIXED;
        gl = resolve(h, 2, "NVIDIA L40S-24Q", 1, "NVIDIA L40S-8Q", 0);
        assert_int_equal(gl->error, 0);
        assert_int_equal(gl->profiles[1].count, 3);
        assert_vfs(gl, (const int[]) { 0, 1, 2, 3 }, 4);
        gl = resolve(h, 2, "NVIDIA L40S-24Q", 2, "NVIDIA L40S-8Q", 1);
        assert_int_equal(gl->error, -ENOSPC);
        /* the VFs are a limit too */
        h->l = gpuh_layouts_free(h->l);
        vendor_host(h, 4);
        h->pf.driver = (char *) "nvidia";
        h->inv.nvml = &nvml;
        gl = resolve(h, 1, "NVIDIA L40S-8Q", 0);
        assert_int_equal(gl->profiles[0].count, 4);
        gl = resolve(h, 1, "NVIDIA L40S-8Q", 5);
        assert_int_equal(gl->error, -ENOSPC);
        if (!strstr(gl->why, "4 left"))
                fail_msg("'%s' does not say how many VFs are left", gl->why);
        gl = resolve(h, 1, "NVIDIA L40S-9Q", 1);
        assert_int_equal(gl->error, -ENOENT);
        gl = resolve(h, 2, "NVIDIA L40S-8Q", 1, "NVIDIA L40S-8Q", 1);
        assert_int_equal(gl->error, -EINVAL);
        gpuh_layouts_free(h->l);
        free(h);
}

static void test_pf_mdev(void **state)
{
        struct host *h = calloc(1, sizeof(*h));
        const struct gpuh_gpu_layout *gl;
        char d1[GPUH_UUID_STR_LEN + 1], d3[GPUH_UUID_STR_LEN + 1];

        pf_host(h);
        gl = resolve(h, 1, "GRID M60-2Q", 0);
        assert_int_equal(gl->error, 0);
        assert_int_equal(gl->kind, GPUH_LAYOUT_PF_MDEV);
        assert_int_equal(gl->n_slots, 4);
        for (unsigned k = 0; k < 4; k++) {
                char u[GPUH_UUID_STR_LEN + 1];
                gpuh_layout_slot_uuid(&h->pf.addr, "nvidia-18", k, u);
                assert_string_equal(gl->slots[k].uuid, u);
                assert_int_equal(gl->slots[k].number, k);
                assert_false(gl->slots[k].exists);
        }
        gpuh_layout_slot_uuid(&h->pf.addr, "nvidia-18", 1, d1);
        gpuh_layout_slot_uuid(&h->pf.addr, "nvidia-18", 3, d3);
        /* slot 3's mdev created, and an operator's mdev of the type: slot 3 keeps its UUID, the
         * operator's takes the lowest number left (0), slots 1 and 2 keep theirs */
        add_mdev(h, "00000000-0000-4000-8000-000000000001", "nvidia-18");
        add_mdev(h, d3, "nvidia-18");
        gl = resolve(h, 1, "nvidia-18", 0);
        assert_int_equal(gl->n_slots, 4);
        assert_string_equal(gl->slots[0].uuid, "00000000-0000-4000-8000-000000000001");
        assert_true(gl->slots[0].exists && !gl->slots[0].derived);
        assert_string_equal(gl->slots[1].uuid, d1);
        assert_false(gl->slots[1].exists);
        assert_string_equal(gl->slots[3].uuid, d3);
        assert_true(gl->slots[3].exists && gl->slots[3].derived);
        assert_non_null(gpuh_layouts_find_mdev(h->l, d1, NULL));
        /* NVIDIA mdev GPUs hold one size at a time */
        gl = resolve(h, 2, "GRID M60-2Q", 2, "GRID M60-4Q", 1);
        assert_int_equal(gl->error, -EINVAL);
        if (!strstr(gl->why, "cannot share"))
                fail_msg("'%s'", gl->why);
        gl = resolve(h, 1, "GRID M60-4Q", 3);
        assert_int_equal(gl->error, -ENOSPC);
        if (!strstr(gl->why, "2 x 4096 MiB (8192 MiB)"))
                fail_msg("'%s' does not give the capacity", gl->why);
        gpuh_layouts_free(h->l);
        free(h);
}

/* ---- MIG-backed profiles ---- */

/* An A100-SXM4-40GB (NVIDIA MIG user guide, its GI profile table: 1g.5gb id 19 at slices 0-6,
 * 2g.10gb id 14 at 0/2/4, 3g.20gb id 9 at 0/4 (4 slices), 7g.40gb id 0 at 0 (8)) with @n
 * SR-IOV VFs, each an mdev parent listing A100-1-5C, -2-10C, -3-20C (MIG-backed, NVIDIA vGPU
 * user guide) and A100-5C (time-sliced), and what NVML says of it: MIG mode @mig_on, no GI. */
struct mig_host {
        struct host h;
        struct gpuh_nvml_info info;
        struct gpuh_nvml_gpu n;
        struct gpuh_nvml_profile profiles[4];
        struct gpuh_nvml_type types[4];
        struct gpuh_nvml_gi gis[4];
};

static void mig_profile(struct gpuh_nvml_profile *p, unsigned id, unsigned instances, unsigned size, unsigned step)
{
        *p = (struct gpuh_nvml_profile) { .id = id, .slices = size > 4 ? 7 : size == 4 ? 3 : size, .instances = instances,
                                          .memory_mib = -1, .remaining = -1 };
        snprintf(p->name, sizeof(p->name), "MIG %u", id);
        for (unsigned st = 0; st + size <= (size == 8 ? 8 : 7 + (size == 4)) && p->n_placements < instances; st += step) {
                p->placements[p->n_placements].start = st;
                p->placements[p->n_placements++].size = size;
        }
}

static void a100_host(struct mig_host *m, size_t n, int mig_on)
{
        struct host *h = &m->h;
        static const struct { unsigned id; const char *name; int64_t fb, max; int gi; } t[] = {
                { 469, "NVIDIA A100-5C", 5120, 8, -1 },
                { 474, "NVIDIA A100-1-5C", 5120, 7, 19 },
                { 475, "NVIDIA A100-2-10C", 10240, 3, 14 },
                { 476, "NVIDIA A100-3-20C", 20480, 2, 9 },
        };
        static const char *const ids[] = { "nvidia-469", "nvidia-474", "nvidia-475", "nvidia-476" };

        gpuh_layouts_free(h->l);        /* a host rebuilt within a test */
        memset(m, 0, sizeof(*m));
        dev_init(&h->pf, 0x3b, 0, 0x20b0);
        h->pf.driver = (char *) "nvidia";
        for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
                h->mtypes[i] = (struct gpuh_mdev_type) { .type_id = (char *) ids[i], .name = (char *) t[i].name,
                                                         .available_instances = 0, .params = { 1, t[i].fb, 1, -1, -1 } };
                m->types[i] = (struct gpuh_nvml_type) { .id = t[i].id, .fb_mib = t[i].fb, .max_instances = t[i].max,
                                                        .gi_profile_id = t[i].gi };
                snprintf(m->types[i].name, sizeof(m->types[i].name), "%s", t[i].name);
        }
        h->gpu = (struct gpuh_gpu) { .dev = &h->pf, .vfs = h->vfs, .n_vfs = n };
        for (size_t i = 0; i < n; i++) {
                dev_init(&h->vfdev[i], 0x3b, 4 + (unsigned) i, 0x20b0);
                h->vfdev[i].is_vf = true;
                h->vfs[i] = (struct gpuh_vf) { .dev = &h->vfdev[i], .index = (int) i, .types = h->mtypes,
                                               .n_types = ARRAY_SIZE(t) };
        }
        mig_profile(&m->profiles[0], 0, 1, 8, 8);
        mig_profile(&m->profiles[1], 9, 2, 4, 4);
        mig_profile(&m->profiles[2], 14, 3, 2, 2);
        mig_profile(&m->profiles[3], 19, 7, 1, 1);
        m->n = (struct gpuh_nvml_gpu) { .addr = h->pf.addr, .mig_current = mig_on, .mig_pending = mig_on,
                                        .vgpu_mode = GPUH_VGPU_MODE_UNKNOWN, .gis = m->gis, .profiles = m->profiles,
                                        .n_profiles = ARRAY_SIZE(m->profiles), .types = m->types,
                                        .n_types = ARRAY_SIZE(m->types) };
        m->info = (struct gpuh_nvml_info) { .gpus = &m->n, .n_gpus = 1 };
        h->inv = (struct gpuh_inventory) { .gpus = &h->gpu, .n_gpus = 1, .nvml = &m->info };
}

static void assert_gis(const struct gpuh_gpu_layout *gl, unsigned profile, const unsigned *starts, size_t n)
{
        size_t k = 0;

        for (size_t i = 0; i < gl->n_slots; i++) {
                if (gl->slots[i].gi_profile != profile)
                        continue;
                assert_true(gl->slots[i].gi);
                if (k >= n || gl->slots[i].gi_start != starts[k])
                        fail_msg("slot %zu of GI profile %u starts at %u, not %d", i, profile, gl->slots[i].gi_start,
                                 k < n ? (int) starts[k] : -1);
                k++;
        }
        assert_int_equal(k, n);
}

static void expect_why(const struct gpuh_gpu_layout *gl, int err, const char *needle)
{
        assert_int_equal(gl->error, err);
        assert_int_equal(gl->n_slots, 0);
        if (!gl->why || !strstr(gl->why, needle) || !strstr(gl->why, "0000:3b:00.0"))
                fail_msg("'%s' lacks the GPU or '%s'", gl->why ? gl->why : "(none)", needle);
}

/* Placements, not framebuffer: in layout order, the lowest free start of each GI profile. */
static void test_mig_placement(void **state)
{
        struct mig_host *m = calloc(1, sizeof(*m));
        const struct gpuh_gpu_layout *gl;

        a100_host(m, MAX_VFS, 1);
        gl = resolve(&m->h, 1, "NVIDIA A100-1-5C", 0);
        assert_int_equal(gl->error, 0);
        assert_int_equal(gl->kind, GPUH_LAYOUT_VF_MDEV);
        assert_int_equal(gl->profiles[0].gi_profile, 19);
        assert_int_equal(gl->profiles[0].count, 7);                     /* instances, not 40 GB / 5 GB */
        assert_gis(gl, 19, (const unsigned[]) { 0, 1, 2, 3, 4, 5, 6 }, 7);
        assert_vfs(gl, (const int[]) { 0, 1, 2, 3, 4, 5, 6 }, 7);
        assert_int_equal(gl->slots[6].gi_size, 1);
        assert_false(gl->slots[0].gi_exists);
        assert_false(gl->slots[0].exists);

        /* mixed MIG sizes: the 2g.10gb takes slices 0-1, the 1g.5gb the five left */
        gl = resolve(&m->h, 2, "nvidia-475", 1, "NVIDIA A100-1-5C", 0);
        assert_int_equal(gl->error, 0);
        assert_string_equal(gl->profiles[0].type_id, "nvidia-475");
        assert_int_equal(gl->profiles[1].count, 5);
        assert_gis(gl, 14, (const unsigned[]) { 0 }, 1);
        assert_gis(gl, 19, (const unsigned[]) { 2, 3, 4, 5, 6 }, 5);
        assert_int_equal(gl->slots[0].gi_size, 2);

        gl = resolve(&m->h, 1, "NVIDIA A100-3-20C", 2);
        assert_int_equal(gl->error, 0);
        assert_gis(gl, 9, (const unsigned[]) { 0, 4 }, 2);
        assert_int_equal(gl->slots[1].gi_size, 4);

        /* a count that does not fit: the GPU, the profile, what is left */
        gl = resolve(&m->h, 1, "NVIDIA A100-3-20C", 3);
        expect_why(gl, -ENOSPC, "'NVIDIA A100-3-20C' x 3 does not fit: 2 fit");
        gl = resolve(&m->h, 2, "NVIDIA A100-3-20C", 1, "NVIDIA A100-2-10C", 3);
        expect_why(gl, -ENOSPC, "1 of its 3 placements free of the profiles before it");
        /* the VFs are a limit too */
        a100_host(m, 4, 1);
        gl = resolve(&m->h, 1, "NVIDIA A100-1-5C", 0);
        assert_int_equal(gl->profiles[0].count, 4);
        gpuh_layouts_free(m->h.l);
        free(m);
}

static void test_mig_mode(void **state)
{
        struct mig_host *m = calloc(1, sizeof(*m));
        const struct gpuh_gpu_layout *gl;

        a100_host(m, MAX_VFS, 1);
        gl = resolve(&m->h, 2, "NVIDIA A100-1-5C", 1, "NVIDIA A100-5C", 1);
        expect_why(gl, -EINVAL, "'NVIDIA A100-1-5C' is MIG-backed and 'NVIDIA A100-5C' time-sliced");
        /* time-sliced alone: the framebuffer rule, as before */
        gl = resolve(&m->h, 1, "NVIDIA A100-5C", 0);
        assert_int_equal(gl->error, 0);
        assert_int_equal(gl->profiles[0].gi_profile, -1);
        assert_false(gl->slots[0].gi);

        m->n.mig_current = -1;
        gl = resolve(&m->h, 1, "NVIDIA A100-1-5C", 0);
        expect_why(gl, -EINVAL, "NVML says the GPU has no MIG mode");

        /* MIG off: an error unless the entry lets gpuhooks switch it on */
        a100_host(m, MAX_VFS, 0);
        gl = resolve(&m->h, 1, "NVIDIA A100-1-5C", 2);
        expect_why(gl, -EINVAL, "MIG mode is off and 'NVIDIA A100-1-5C' is MIG-backed: set \"mig\": true");
        m->h.entry.mig = true;
        m->h.l = gpuh_layouts_free(m->h.l);
        assert_int_equal(gpuh_layouts_resolve(&m->h.inv, &m->h.cfg, &m->h.l), 0);      /* the same entry, "mig" set */
        gl = &m->h.l->v[0];
        assert_int_equal(gl->error, 0);
        assert_gis(gl, 19, (const unsigned[]) { 0, 1 }, 2);
        m->h.l = gpuh_layouts_free(m->h.l);
        /* NVML answered no profile out of MIG mode: its line */
        m->n.n_profiles = 0;
        m->n.profiles_error = (char *) "NVML_ERROR_NOT_SUPPORTED: not supported on this GPU or in its current mode";
        assert_int_equal(gpuh_layouts_resolve(&m->h.inv, &m->h.cfg, &m->h.l), 0);
        expect_why(&m->h.l->v[0], -ENOENT, "NVML lists no GPU-instance profile for it: NVML_ERROR_NOT_SUPPORTED");
        m->h.l = gpuh_layouts_free(m->h.l);

        /* no NVML data: a MIG-backed name says why it cannot be resolved */
        a100_host(m, MAX_VFS, 1);
        m->n.error = (char *) "nvmlDeviceGetMigMode: NVML_ERROR_GPU_IS_LOST";
        gl = resolve(&m->h, 1, "NVIDIA A100-1-5C", 1);
        expect_why(gl, -ENOENT, "needs NVML, which tells nothing of this GPU: NVML: nvmlDeviceGetMigMode");
        m->h.inv.nvml = NULL;
        gl = resolve(&m->h, 1, "NVIDIA A100-2-10C", 1);
        expect_why(gl, -ENOENT, "NVML not asked");
        gpuh_layouts_free(m->h.l);
        free(m);
}

/* Existing GIs: one of the slot's profile and placement exists; another one blocks slots not
 * created yet (not advertised, a note), never one that exists. */
static void test_mig_gis(void **state)
{
        struct mig_host *m = calloc(1, sizeof(*m));
        const struct gpuh_gpu_layout *gl;
        char u[GPUH_UUID_STR_LEN + 1];

        a100_host(m, MAX_VFS, 1);
        m->gis[0] = (struct gpuh_nvml_gi) { .id = 1, .profile_id = 19, .placement_start = 0, .placement_size = 1 };
        m->gis[1] = (struct gpuh_nvml_gi) { .id = 2, .profile_id = 14, .placement_start = 2, .placement_size = 2,
                                            .profile_name = "MIG 2g.10gb" };
        m->n.n_gis = 2;
        gl = resolve(&m->h, 1, "NVIDIA A100-1-5C", 0);
        assert_int_equal(gl->error, 0);
        assert_int_equal(gl->profiles[0].count, 7);                     /* the plan ignores the GIs */
        assert_int_equal(gl->n_slots, 5);
        assert_gis(gl, 19, (const unsigned[]) { 0, 1, 4, 5, 6 }, 5);
        assert_true(gl->slots[0].gi_exists);
        assert_false(gl->slots[1].gi_exists);
        assert_int_equal(gl->slots[2].number, 4);
        assert_vfs(gl, (const int[]) { 0, 1, 2, 3, 4 }, 5);             /* blocked slots take no VF */
        assert_int_equal(gl->n_notes, 2);
        if (!strstr(gl->notes[0], "0000:3b:00.0") || !strstr(gl->notes[0], "slot 2 of 'NVIDIA A100-1-5C'") ||
            !strstr(gl->notes[0], "GPU instance 2 (profile 14 'MIG 2g.10gb', slices 2-3) is in the way"))
                fail_msg("'%s'", gl->notes[0]);

        /* slot 2's mdev exists (made before the GI moved): it stays a slot */
        gpuh_layout_slot_uuid(&m->h.vfdev[5].addr, "nvidia-474", 2, u);
        add_mdev(&m->h, u, "nvidia-474");
        m->h.mdevs[0].parent = m->h.vfdev[5].addr;
        gl = resolve(&m->h, 1, "NVIDIA A100-1-5C", 0);
        assert_int_equal(gl->n_slots, 6);
        assert_int_equal(gl->n_notes, 1);
        assert_true(gl->slots[2].exists);
        assert_string_equal(gl->slots[2].uuid, u);
        assert_int_equal(gl->slots[2].gi_start, 2);
        gpuh_layouts_free(m->h.l);
        free(m);
}

/* H100 on vendor VFs: the type is in no VF's list while no free GI exists; NVML's supported
 * types give its id. */
static void test_mig_vendor(void **state)
{
        struct mig_host *m = calloc(1, sizeof(*m));
        const struct gpuh_gpu_layout *gl;

        a100_host(m, MAX_VFS, 1);
        for (size_t i = 0; i < MAX_VFS; i++)
                m->h.vfs[i] = (struct gpuh_vf) { .dev = &m->h.vfdev[i], .index = (int) i, .has_vendor_vgpu = true,
                                                 .vendor_vgpu = { .gpu_instance_id = -1 } };
        gl = resolve(&m->h, 1, "NVIDIA A100-2-10C", 0);
        assert_int_equal(gl->error, 0);
        assert_int_equal(gl->kind, GPUH_LAYOUT_VENDOR_VF);
        assert_int_equal(gl->profiles[0].vgpu_type, 475);
        assert_int_equal(gl->profiles[0].count, 3);
        assert_gis(gl, 14, (const unsigned[]) { 0, 2, 4 }, 3);
        assert_vfs(gl, (const int[]) { 0, 1, 2 }, 3);
        gpuh_layouts_free(m->h.l);
        free(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config),
                cmocka_unit_test(test_config_salvage),
                cmocka_unit_test(test_find),
                cmocka_unit_test(test_slot_uuid),
                cmocka_unit_test(test_vendor),
                cmocka_unit_test(test_vendor_fit),
                cmocka_unit_test(test_pf_mdev),
                cmocka_unit_test(test_mig_placement),
                cmocka_unit_test(test_mig_mode),
                cmocka_unit_test(test_mig_gis),
                cmocka_unit_test(test_mig_vendor),
        };
        return cmocka_run_group_tests_name("layout", tests, tu_group_setup, tu_group_teardown);
}
