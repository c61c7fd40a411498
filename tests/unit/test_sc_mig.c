/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sc_mig: a MIG-backed layout slot (hooks/state-change/mig.c) on the fake kernel and the
 * fake libnvidia-ml.so.1 (tests/fakenvml, its state a JSON file): prepare creates the slot's GPU
 * instance with its placement before setting the VF's vGPU type, switching MIG mode on first
 * when the layout says "mig": true; release, a failed prepare and reconcile after a crash
 * destroy what was made and switch MIG mode off only when this domain switched it on.
 *
 * The fake kernel does not tell the fake NVML about sriov_numvfs (the FUSE emulator does, in
 * the mig/ end-to-end tests): the state here says VFs are off as far as NVML's MIG-mode rule
 * goes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "sctest.h"

#define VM "i-2-41-VM"
#define VM_UUID "0c4b40fc-0b03-40c5-b04e-28a15fe12241"
#define VM2 "i-2-42-VM"
#define VM2_UUID "0c4b40fc-0b03-40c5-b04e-28a15fe12242"
#define PF "0000:ae:00.0"

static char lib[4096], state[4096];

/* An H100 PCIe (fixtures/hosts/h100-mig-vendor-vgpu) as NVML sees it, at @pci: MIG mode @mig
 * (< 0: the GPU has no MIG), GIs @gis. */
static void nvml_state_at(const char *pci, int mig, bool needs_reset, const char *gis)
{
        FILE *f = fopen(state, "w");
        char m[128] = "";

        assert_non_null(f);
        if (mig >= 0)
                snprintf(m, sizeof(m), " \"mig\": {\"current\": %d, \"pending\": %d%s},", mig, mig,
                         needs_reset ? ", \"needs_reset\": 1" : "");
        fprintf(f, "{\"gpus\": [{\"pci_bus_id\": \"%s\", \"vfs_enabled\": 0,%s"
                " \"gi_profiles\": [{\"index\": 0, \"id\": 19, \"name\": \"MIG 1g.10gb\", \"slices\": 1, \"instances\": 7,"
                "   \"memory_mib\": 9856, \"placements\": [{\"start\": 0, \"size\": 1}, {\"start\": 1, \"size\": 1},"
                "   {\"start\": 2, \"size\": 1}, {\"start\": 3, \"size\": 1}, {\"start\": 4, \"size\": 1},"
                "   {\"start\": 5, \"size\": 1}, {\"start\": 6, \"size\": 1}]},"
                "  {\"index\": 1, \"id\": 14, \"name\": \"MIG 2g.20gb\", \"slices\": 2, \"instances\": 3,"
                "   \"memory_mib\": 19968, \"placements\": [{\"start\": 0, \"size\": 2}, {\"start\": 2, \"size\": 2},"
                "   {\"start\": 4, \"size\": 2}]}],"
                " \"gpu_instances\": [%s],"
                " \"vgpu_types\": [{\"id\": 1700, \"name\": \"NVIDIA H100-1-10C\", \"framebuffer_mib\": 10240,"
                "   \"max_instances\": 7, \"gi_profile_id\": 19},"
                "  {\"id\": 1702, \"name\": \"NVIDIA H100-2-20C\", \"framebuffer_mib\": 20480, \"max_instances\": 3,"
                "   \"gi_profile_id\": 14}]}]}\n",
                pci, m, gis ? gis : "");
        assert_int_equal(fclose(f), 0);
}

static void nvml_state(int mig, bool needs_reset, const char *gis)
{
        nvml_state_at(PF, mig, needs_reset, gis);
}

/* NVML's state now: MIG mode, and the GIs as "PROFILE@START:SIZE[*]" (* in use), joined. */
static int nvml_now(char *gis, size_t size)
{
        json_object *o = json_object_from_file(state), *g, *v, *a;
        int mig;

        assert_non_null(o);
        g = json_object_array_get_idx(json_object_object_get(o, "gpus"), 0);
        mig = json_object_get_int(json_object_object_get(json_object_object_get(g, "mig"), "current"));
        gis[0] = '\0';
        a = json_object_object_get(g, "gpu_instances");
        for (size_t i = 0; a && i < json_object_array_length(a); i++) {
                v = json_object_array_get_idx(a, i);
                snprintf(gis + strlen(gis), size - strlen(gis), "%s%d@%d:%d", i ? " " : "",
                         json_object_get_int(json_object_object_get(v, "profile_id")),
                         json_object_get_int(json_object_object_get(v, "start")),
                         json_object_get_int(json_object_object_get(v, "size")));
        }
        json_object_put(o);
        return mig;
}

/* The H100 in the fake kernel: 4 vendor vGPU VFs (@vfs of them enabled), two MIG-backed types;
 * a layout for it (with @mig), as the configuration's "layouts" holds it. */
static void host_h100(struct sct *t, unsigned vfs, bool mig)
{
        static const struct fk_vgpu_type vgpu[] = {
                { 1700, "NVIDIA H100-1-10C", 10240 }, { 1702, "NVIDIA H100-2-20C", 20480 },
        };

        assert_int_equal(fk_add_fn(t->k, &(struct fk_fn) { .bdf = PF, .vendor = 0x10de, .device = 0x2331,
                                                           .class_code = 0x030200, .group = 35, .driver = "nvidia" }), 0);
        assert_int_equal(fk_sriov(t->k, PF, &(struct fk_sriov) {
                .total = 4, .offset = 4, .stride = 1, .enabled = vfs, .vf_device = 0x2331, .vf_class = 0x030200,
                .vf_driver = "nvidia", .vgpu = vgpu, .n_vgpu = 2, .gpu_fb_mb = 81920 }), 0);
        t->cfg->layouts = calloc(1, sizeof(*t->cfg->layouts));
        assert_non_null(t->cfg->layouts);
        t->cfg->layouts[0] = (struct gpuh_layout) {
                .match = { .vendor = 0x10de, .device = 0x2331, .subsystem_vendor = -1, .subsystem_device = -1 },
                .mig = mig };
        t->cfg->n_layouts = 1;
}

/* The slot: VF ae:00.5 with H100-2-20C on a 2g.20gb GI at slices 2-3. */
static struct gpuh_alloc slot(const char *vf)
{
        struct gpuh_alloc a = sct_vgpu(vf, PF, 1702);

        a.gi = true;
        a.gi_profile = 14;
        a.gi_start = 2;
        a.gi_size = 2;
        return a;
}

static const char *rd(struct sct *t, const char *rel)
{
        static char buf[4][4096];
        static int k;

        return fk_read(t->k, rel, buf[k++ % 4], sizeof(buf[0]));
}

static int setup(void **s)
{
        const char *bin = getenv("GPUH_TEST_BINDIR");
        struct sct *t = sct_new();

        snprintf(lib, sizeof(lib), "%s/tests/fakenvml/libnvidia-ml.so.1", bin ? bin : ".");
        snprintf(state, sizeof(state), "%s/nvml.json", fk_dir(t->k));
        setenv("GPUH_FAKE_NVML_STATE", state, 1);
        t->o.nvml_lib = lib;
        *s = t;
        return 0;
}

static int teardown(void **s)
{
        sct_free(*s);
        return 0;
}

/* MIG on: the GI made with the slot's placement, then the type; release undoes both. */
static void test_gi_round_trip(void **s)
{
        struct sct *t = *s;
        struct gpuh_alloc a = slot("0000:ae:00.5");
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, &a, 1), *err = NULL, *before = NULL, *after = NULL;
        char gis[256];

        host_h100(t, 4, false);
        nvml_state(1, false, "{\"id\": 1, \"profile_id\": 19, \"start\": 0, \"size\": 1}");
        before = fk_snapshot(t->k);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        assert_null(err);
        assert_int_equal(nvml_now(gis, sizeof(gis)), 1);
        assert_string_equal(gis, "19@0:1 14@2:2");
        assert_string_equal(rd(t, "bus/pci/devices/0000:ae:00.5/nvidia/current_vgpu_type"), "1702");
        assert_int_equal(sct_events(t, "\"event\":\"gi-create\""), 1);
        /* a second prepare (libvirt retrying) finds the GI there and makes no other */
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        nvml_now(gis, sizeof(gis));
        assert_string_equal(gis, "19@0:1 14@2:2");

        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_null(err);
        assert_int_equal(nvml_now(gis, sizeof(gis)), 1);
        assert_string_equal(gis, "19@0:1");     /* the operator's GI stays */
        assert_false(sct_has_journal(t, VM));
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

/* A GI of that profile and placement exists: used, not created, not destroyed at release. */
static void test_gi_existing(void **s)
{
        struct sct *t = *s;
        struct gpuh_alloc a = slot("0000:ae:00.5");
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, &a, 1), *err = NULL;
        char gis[256];

        host_h100(t, 4, false);
        nvml_state(1, false, "{\"id\": 3, \"profile_id\": 14, \"start\": 2, \"size\": 2}");
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        assert_int_equal(sct_events(t, "\"event\":\"gi-create\""), 0);
        assert_int_equal(sct_release(t, VM, &err), 0);
        nvml_now(gis, sizeof(gis));
        assert_string_equal(gis, "14@2:2");
        assert_string_equal(rd(t, "bus/pci/devices/0000:ae:00.5/nvidia/current_vgpu_type"), "0");
}

/* MIG off, the layout allows it, VFs enabled and unused: VFs off, MIG on, VFs on, GI, type;
 * release puts all of it back, MIG mode off again. */
static void test_mig_switched(void **s)
{
        struct sct *t = *s;
        struct gpuh_alloc a = slot("0000:ae:00.5");
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, &a, 1), *err = NULL, *before = NULL, *after = NULL;
        char gis[256];

        host_h100(t, 4, true);
        nvml_state(0, false, NULL);
        before = fk_snapshot(t->k);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        assert_null(err);
        assert_int_equal(nvml_now(gis, sizeof(gis)), 1);
        assert_string_equal(gis, "14@2:2");
        assert_string_equal(rd(t, "bus/pci/devices/" PF "/sriov_numvfs"), "4");
        assert_string_equal(rd(t, "bus/pci/devices/0000:ae:00.5/nvidia/current_vgpu_type"), "1702");
        /* the VFs went off before MIG mode changed, on again after */
        assert_int_equal(fk_count_writes(t->k, "bus/pci/devices/" PF "/sriov_numvfs", "0"), 1);
        assert_int_equal(fk_count_writes(t->k, "bus/pci/devices/" PF "/sriov_numvfs", "4"), 1);
        assert_int_equal(sct_events(t, "\"event\":\"mig-on\""), 1);

        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_null(err);
        assert_int_equal(nvml_now(gis, sizeof(gis)), 0);
        assert_string_equal(gis, "");
        assert_false(sct_has_journal(t, VM));
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

/* MIG off and the layout does not say "mig": true; or a VF of the GPU in use: refused, nothing
 * changed. */
static void test_mig_refused(void **s)
{
        struct sct *t = *s;
        struct gpuh_alloc a = slot("0000:ae:00.5");
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, &a, 1), *err = NULL, *before = NULL, *after = NULL;
        char gis[64];
        size_t writes;

        host_h100(t, 4, false);
        nvml_state(0, false, NULL);
        before = fk_snapshot(t->k);
        assert_int_equal(sct_prepare(t, xml, &err), -EPERM);
        assert_non_null(strstr(err, PF ": MIG mode is off, and its layout does not let gpuhooks switch it on "
                                    "(\"mig\": true)"));
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
        assert_int_equal(nvml_now(gis, sizeof(gis)), 0);

        t->cfg->layouts[0].mig = true;
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:ae:00.6/nvidia/current_vgpu_type", "1700"), 0);
        fk_forget_writes(t->k);
        assert_int_equal(sct_prepare(t, xml, sct_err(&err)), -EBUSY);
        assert_non_null(strstr(err, "MIG mode is off and cannot be switched on while the GPU is in use: "
                                    "0000:ae:00.6 has vGPU type 1700"));
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
        assert_int_equal(nvml_now(gis, sizeof(gis)), 0);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:ae:00.6/nvidia/current_vgpu_type", "0"), 0);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
        assert_false(sct_has_journal(t, VM));
}

/* A mode change left pending a reset (Ampere): refused, and rolled back (VFs as they were). */
static void test_mig_pending(void **s)
{
        struct sct *t = *s;
        struct gpuh_alloc a = slot("0000:ae:00.5");
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, &a, 1), *err = NULL, *before = NULL, *after = NULL;
        char gis[64];

        host_h100(t, 4, true);
        nvml_state(0, true, NULL);
        before = fk_snapshot(t->k);
        assert_int_equal(sct_prepare(t, xml, &err), -EAGAIN);
        assert_non_null(strstr(err, PF ": MIG mode switched on is pending a GPU reset"));
        assert_null(strstr(err, "rollback incomplete"));
        assert_int_equal(nvml_now(gis, sizeof(gis)), 0);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
        assert_false(sct_has_journal(t, VM));
}

/* The type cannot be set after the GI was made: the rollback destroys the GI and puts MIG mode
 * back; a dry run lists the NVML calls without making them. */
static void test_rollback_and_dry_run(void **s)
{
        struct sct *t = *s;
        struct gpuh_alloc a = slot("0000:ae:00.5");
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, &a, 1), *err = NULL, *before = NULL, *after = NULL;
        json_object *plan = NULL;
        const char *p;
        char gis[64];

        host_h100(t, 4, true);
        nvml_state(0, false, NULL);
        before = fk_snapshot(t->k);
        t->o.dry_run = true;
        assert_int_equal(gpuh_sc_prepare(&t->o, xml, strlen(xml), &plan, &err), 0);
        t->o.dry_run = false;
        p = json_object_to_json_string_ext(plan, JSON_C_TO_STRING_PLAIN);
        assert_non_null(strstr(p, "{\"step\":\"nvml\",\"op\":\"set-mig-mode\",\"device\":\"" PF "\",\"args\":[1]}"));
        assert_non_null(strstr(p, "{\"step\":\"nvml\",\"op\":\"create-gpu-instance\",\"device\":\"" PF
                                  "\",\"args\":[14,2,2]}"));
        /* the VFs off first, then MIG mode, the GI after it */
        assert_non_null(strstr(p, "sriov_numvfs\",\"value\":\"0\""));
        assert_true(strstr(p, "sriov_numvfs") < strstr(p, "set-mig-mode"));
        assert_true(strstr(p, "set-mig-mode") < strstr(p, "create-gpu-instance"));
        json_object_put(plan);
        assert_int_equal(nvml_now(gis, sizeof(gis)), 0);

        fk_fail(t->k, "bus/pci/devices/0000:ae:00.5/nvidia/current_vgpu_type", "1702", EIO, -1);
        assert_int_equal(sct_prepare(t, xml, &err), -EIO);
        assert_null(strstr(err, "rollback incomplete"));
        assert_int_equal(nvml_now(gis, sizeof(gis)), 0);
        assert_string_equal(gis, "");
        assert_int_equal(sct_events(t, "\"event\":\"gi-destroy\""), 1);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
        assert_false(sct_has_journal(t, VM));
}

/* A crash between the GI's creation and the type's: the journal names the GI; reconcile
 * destroys it. A GI a vGPU sits on is kept, its entry with it. */
static void test_crash_reconcile(void **s)
{
        struct sct *t = *s;
        struct gpuh_jentry e = { .op = GPUH_JOP_GI, .gi_profile = 14, .gi_start = 2, .gi_size = 2 };
        _cleanup_free_ char *err = NULL;
        char gis[64];

        host_h100(t, 4, false);
        assert_int_equal(gpuh_pci_addr_parse(PF, &e.dev), 0);
        nvml_state(1, false, "{\"id\": 2, \"profile_id\": 14, \"start\": 2, \"size\": 2, \"in_use\": 1}");
        sct_journal(t, VM, &e, 1);
        assert_true(sct_reconcile(t, &err) < 0);
        assert_non_null(strstr(err, "NVML_ERROR_IN_USE"));
        assert_true(sct_has_journal(t, VM));

        nvml_state(1, false, "{\"id\": 2, \"profile_id\": 14, \"start\": 2, \"size\": 2}");
        assert_int_equal(sct_reconcile(t, sct_err(&err)), 0);
        assert_null(err);
        nvml_now(gis, sizeof(gis));
        assert_string_equal(gis, "");
        assert_false(sct_has_journal(t, VM));
}

/* MIG mode switched on by one domain while another's slot sits on the GPU: its release hands
 * MIG mode over; the last one out switches it off. */
static void test_mig_handed_over(void **s)
{
        struct sct *t = *s;
        struct gpuh_alloc a = slot("0000:ae:00.5"), b = slot("0000:ae:00.6");
        _cleanup_free_ char *x1 = NULL, *x2 = NULL, *err = NULL;
        char gis[64];

        b.gi_start = 4;
        b.vgpu_type = 1702;
        x1 = sct_domain(VM, VM_UUID, &a, 1);
        x2 = sct_domain(VM2, VM2_UUID, &b, 1);
        host_h100(t, 0, true);
        nvml_state(0, false, NULL);
        assert_int_equal(sct_prepare(t, x1, &err), 0);
        assert_int_equal(sct_prepare(t, x2, &err), 0);
        assert_null(err);
        nvml_now(gis, sizeof(gis));
        assert_string_equal(gis, "14@2:2 14@4:2");

        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_null(err);
        assert_int_equal(nvml_now(gis, sizeof(gis)), 1);
        assert_string_equal(gis, "14@4:2");
        assert_string_equal(rd(t, "bus/pci/devices/" PF "/sriov_numvfs"), "4");

        assert_int_equal(sct_release(t, VM2, &err), 0);
        assert_null(err);
        assert_int_equal(nvml_now(gis, sizeof(gis)), 0);
        assert_string_equal(gis, "");
        assert_string_equal(rd(t, "bus/pci/devices/" PF "/sriov_numvfs"), "0");
        assert_false(sct_has_journal(t, VM2));
}

/* NVML unusable, or a GPU without MIG: refused before anything changes, naming why. */
static void test_no_nvml_no_mig(void **s)
{
        struct sct *t = *s;
        struct gpuh_alloc a = slot("0000:ae:00.5");
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, &a, 1), *err = NULL;
        size_t writes;

        host_h100(t, 4, true);
        t->o.nvml_lib = "/nonexistent/libnvidia-ml.so.1";
        assert_int_equal(sct_prepare(t, xml, &err), -ENOENT);
        assert_non_null(strstr(err, PF ": reading its MIG mode: cannot load NVML: /nonexistent/libnvidia-ml.so.1"));
        t->o.nvml_lib = lib;
        nvml_state(-1, false, NULL);
        assert_int_equal(sct_prepare(t, xml, sct_err(&err)), -EOPNOTSUPP);
        assert_non_null(strstr(err, PF ": the slot is MIG-backed but the GPU has no MIG mode"));
        fk_writes(t->k, &writes);
        assert_int_equal(writes, 0);
        assert_false(sct_has_journal(t, VM));
}

/* MIG mode switched on by this domain, then a GPU instance made by hand: release destroys its
 * own GI and leaves MIG mode on, not ours to break. */
static void test_mig_left_on(void **s)
{
        struct sct *t = *s;
        struct gpuh_alloc a = slot("0000:ae:00.5");
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, &a, 1), *err = NULL;
        json_object *o, *gis;
        char now[64];

        host_h100(t, 0, true);
        nvml_state(0, false, NULL);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        /* the operator's GI, as nvidia-smi would make it */
        o = json_object_from_file(state);
        gis = json_object_object_get(json_object_array_get_idx(json_object_object_get(o, "gpus"), 0), "gpu_instances");
        json_object_array_add(gis, json_tokener_parse("{\"id\": 7, \"profile_id\": 19, \"start\": 6, \"size\": 1}"));
        assert_int_equal(json_object_to_file(state, o), 0);
        json_object_put(o);
        assert_int_equal(sct_release(t, VM, &err), 0);
        assert_null(err);
        assert_int_equal(nvml_now(now, sizeof(now)), 1);
        assert_string_equal(now, "19@6:1");
        assert_int_equal(sct_events(t, "MIG mode left on: 1 GPU instances exist (GI 7 first)"), 1);
        assert_false(sct_has_journal(t, VM));
}

/* An A100-like mdev slot on a VF (the A2 host's VFs, their PF in MIG mode): the GI goes on the
 * VF's PF, then the mdev on the VF; release removes both. */
static void test_mdev_slot(void **s)
{
        struct sct *t = *s;
        struct gpuh_alloc a = sct_mdev("c728e022-f16f-434b-ad2c-9665ee634d3d", "0000:08:00.5", "nvidia-746");
        _cleanup_free_ char *xml = NULL, *err = NULL, *before = NULL, *after = NULL;
        char gis[64];

        a.gi = true;
        a.gi_profile = 19;
        a.gi_start = 4;
        a.gi_size = 1;
        xml = sct_domain(VM, VM_UUID, &a, 1);
        sct_host_a2(t, true);
        nvml_state_at("0000:08:00.0", 1, false, NULL);
        before = fk_snapshot(t->k);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        assert_null(err);
        nvml_now(gis, sizeof(gis));
        assert_string_equal(gis, "19@4:1");
        assert_true(fk_exists(t->k, "bus/mdev/devices/c728e022-f16f-434b-ad2c-9665ee634d3d"));
        assert_int_equal(sct_release(t, VM, &err), 0);
        nvml_now(gis, sizeof(gis));
        assert_string_equal(gis, "");
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_gi_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_gi_existing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mig_switched, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mig_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mig_pending, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rollback_and_dry_run, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_reconcile, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mig_handed_over, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_nvml_no_mig, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mig_left_on, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mdev_slot, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
