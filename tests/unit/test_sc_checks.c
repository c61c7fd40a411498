/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sc_checks: what the state-change hook checks before it changes anything
 * (docs/state-change.md, prepare steps 1 to 5, "Occupancy"): CloudStack's own GPU hostdevs
 * without a record, a request without a record, a record without its hostdevs or naming what
 * the transformer never hands out, VMNAME, the reservation, the prepare deadline, the domain
 * lock; and the dry runs of prepare, release, onStop and reconcile. Nothing is written in any.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <json-c/json.h>

#include "sctest.h"

#define VM "i-2-154-VM"
#define VM_UUID "0c4b40fc-0b03-40c5-b04e-28a15fe12244"
#define VM2 "i-2-155-VM"
#define VM2_UUID "0c4b40fc-0b03-40c5-b04e-28a15fe12245"
#define MDEV_UUID "c728e022-f16f-434b-ad2c-9665ee634d3d"

static int setup(void **state)
{
        *state = sct_new();
        return 0;
}

static int teardown(void **state)
{
        sct_free(*state);
        return 0;
}

static size_t n_writes(struct sct *t)
{
        size_t n;

        fk_writes(t->k, &n);
        return n;
}

/* Prepare is refused with @want, naming @needle, and writes nothing. */
static void refused(struct sct *t, const char *xml, int want, const char *needle)
{
        _cleanup_free_ char *err = NULL;

        assert_int_equal(sct_prepare(t, xml, &err), want);
        assert_non_null(err);
        if (!strstr(err, needle))
                fail_msg("'%s' does not say '%s'", err, needle);
        assert_int_equal(n_writes(t), 0);
        assert_false(sct_has_journal(t, VM));
}

static void test_cloudstack_hostdevs(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        static const char *const gpu[] = { "0000:05:00.0", "0000:05:00.1", NULL };
        static const char *const nic[] = { "0000:03:00.0", NULL };
        static const char *const mdev[] = { MDEV_UUID, NULL };
        _cleanup_free_ char *cs = sct_domain_plain(VM, VM_UUID, gpu, NULL, false),
                           *cs_nic = sct_domain_plain(VM, VM_UUID, nic, NULL, false),
                           *cs_mdev = sct_domain_plain(VM, VM_UUID, NULL, mdev, false),
                           *other = sct_domain(VM2, VM2_UUID, a, 1), *err = NULL;

        sct_host_rtx3080(t);
        sct_host_m60(t);
        assert_int_equal(fk_add_mdev(t->k, "0000:3d:00.0", "nvidia-18", MDEV_UUID), 0);
        fk_forget_writes(t->k);
        /* a NIC is not ours to look at: untouched, no file made */
        assert_int_equal(sct_prepare(t, cs_nic, &err), 0);
        assert_int_equal(access(fk_state(t->k), F_OK), -1);
        /* libvirt binds CloudStack's managed hostdevs itself: checked, nothing written */
        assert_int_equal(sct_prepare(t, cs, &err), 0);
        assert_int_equal(sct_prepare(t, cs_mdev, &err), 0);
        assert_int_equal(n_writes(t), 0);
        assert_false(sct_has_journal(t, VM));

        /* another domain holds the GPU: refused, naming it */
        assert_int_equal(sct_prepare(t, other, &err), 0);
        fk_forget_writes(t->k);
        refused(t, cs, -EBUSY, VM2);
        assert_int_equal(sct_release(t, VM2, &err), 0);
        fk_forget_writes(t->k);

        /* a QEMU holds the mdev's group */
        assert_int_equal(fk_hold(t->k, 4242, "qemu-system-x86", "vfio/0"), 0);
        refused(t, cs_mdev, -EBUSY, "pid 4242 (qemu-system-x86)");
        fk_unhold(t->k, 4242);
}

/* CloudStack's GPU hostdev without a record (the transformer refused the domain; the agent
 * starts it with its original XML): another domain's journal, or a QEMU holding the GPU's
 * group, refuses it as a reservation does (test_cloudstack_hostdevs). */
static void test_cloudstack_held_elsewhere(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc m[] = { sct_mdev(MDEV_UUID, "0000:3d:00.0", "nvidia-18") };
        static const char *const gpu[] = { "0000:05:00.0", "0000:05:00.1", NULL };
        struct gpuh_jentry e = { .op = GPUH_JOP_DRIVER, .driver = "nvidia", .to = "vfio-pci" };
        _cleanup_free_ char *cs = sct_domain_plain(VM, VM_UUID, gpu, NULL, false),
                           *other = sct_domain(VM2, VM2_UUID, m, 1), *err = NULL;

        sct_host_rtx3080(t);
        sct_host_m60(t);
        /* a QEMU (another domain's, libvirt or not) holds the GPU's group */
        assert_int_equal(fk_hold(t->k, 4243, "qemu-system-x86", "vfio/24"), 0);
        refused(t, cs, -EBUSY, "pid 4243 (qemu-system-x86)");
        fk_unhold(t->k, 4243);
        /* VM2 (live reservation, for an mdev) changed the GPU's audio function and holds it still */
        assert_int_equal(sct_prepare(t, other, &err), 0);
        gpuh_pci_addr_parse("0000:05:00.1", &e.dev);
        sct_journal(t, VM2, &e, 1);
        fk_forget_writes(t->k);
        refused(t, cs, -EBUSY, "0000:05:00.1: in use by " VM2 " (its journal)");
        /* once VM2's reservation is gone its journal is stale: another domain may take over */
        sct_drop_reservation(t, VM2);
        assert_int_equal(sct_prepare(t, cs, &err), 0);
}

/* CloudStack's whole GPU without a record, whose VFs or mdevs something uses (a domain gpuhooks
 * knows nothing of): libvirt would unbind the PF from its driver, and destroy them. */
static void test_cloudstack_whole_gpu_parts_used(void **state)
{
        struct sct *t = *state;
        static const char *const a2[] = { "0000:08:00.0", NULL };
        static const char *const m60[] = { "0000:3d:00.0", NULL };
        _cleanup_free_ char *cs_a2 = sct_domain_plain(VM, VM_UUID, a2, NULL, false),
                           *cs_m60 = sct_domain_plain(VM, VM_UUID, m60, NULL, false), *err = NULL;

        sct_host_a2(t, true);
        sct_host_m60(t);
        /* nothing on them: passes (libvirt binds it) */
        assert_int_equal(sct_prepare(t, cs_a2, &err), 0);
        assert_int_equal(sct_prepare(t, cs_m60, &err), 0);
        assert_int_equal(fk_add_mdev(t->k, "0000:08:00.5", "nvidia-746", "aaaaaaaa-2222-3333-4444-555555555555"), 0);
        assert_int_equal(fk_add_mdev(t->k, "0000:3d:00.0", "nvidia-18", MDEV_UUID), 0);
        fk_forget_writes(t->k);
        refused(t, cs_a2, -EBUSY, "0000:08:00.0 cannot be passed through whole: 0000:08:00.5 carries mdev");
        refused(t, cs_m60, -EBUSY, "0000:3d:00.0 cannot be passed through whole: it carries mdevs");
}

/* CloudStack agents before 4.22.1 write 000b:01:00.0 as domain 0x0000, bus 0x000b, slot
 * 0x01 (common/agent_addr.h). Without a record prepare cannot rewrite it: libvirt would take
 * 0000:0b:01.0, which does not exist or is another device. Refused, naming the GPU meant. */
static void test_agent_split(void **state)
{
        struct sct *t = *state;
#define SPLIT_XML(bus, slot) "<domain type='kvm'><name>" VM "</name><uuid>" VM_UUID "</uuid><devices>" \
        "<hostdev mode='subsystem' type='pci' managed='yes' display='off'><driver name='vfio'/><source>" \
        "<address domain='0x0000' bus='" bus "' slot='" slot "' function='0x0'/></source></hostdev></devices></domain>"
        const char *split = SPLIT_XML("0x000b", "0x01"), *elsewhere = SPLIT_XML("0x000c", "0x01");
        _cleanup_free_ char *err = NULL;

        /* a POWER8 host's P100 in PCI domain 000b (fixtures/hosts/power8-minsky-p100) */
        assert_int_equal(fk_add_fn(t->k, &(struct fk_fn) { .bdf = "000b:01:00.0", .vendor = 0x10de, .device = 0x15f9,
                                                           .class_code = 0x030200, .group = 7, .driver = "nvidia" }), 0);
        fk_forget_writes(t->k);
        refused(t, split, -ENODEV, "names no device: a CloudStack agent before 4.22.1 wrote it for 000b:01:00.0");
        /* nothing of a GPU on the bus it would mean: not ours (libvirt finds no device) */
        assert_int_equal(sct_prepare(t, elsewhere, &err), 0);
        /* a NIC at 0000:0b:01.0: libvirt would pass it through in the GPU's stead */
        assert_int_equal(fk_add_fn(t->k, &(struct fk_fn) { .bdf = "0000:0b:01.0", .vendor = 0x8086, .device = 0x1521,
                                                           .class_code = 0x020000, .group = 8, .driver = "igb" }), 0);
        fk_forget_writes(t->k);
        refused(t, split, -ENODEV, "0000:0b:01.0 exists, but a CloudStack agent before 4.22.1 writes 000b:01:00.0");
#undef SPLIT_XML
}

static void test_quarantined(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        struct gpuh_alloc m[] = { sct_mdev(MDEV_UUID, "0000:3d:00.0", "nvidia-18") };
        static const char *const gpu[] = { "0000:05:00.0", NULL };
        static const char *const mdev[] = { MDEV_UUID, NULL };
        /* (a refused prepare leaves the reservation it made: each record its own domain) */
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *xm = sct_domain(VM2, VM2_UUID, m, 1),
                           *cs = sct_domain_plain(VM, VM_UUID, gpu, NULL, false),
                           *cs_mdev = sct_domain_plain(VM, VM_UUID, NULL, mdev, false), *err = NULL;

        sct_host_rtx3080(t);
        sct_host_m60(t);
        /* reconcile quarantines what something left mid-change */
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:05:00.0/driver_override", "vfio-pci"), 0);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:3d:00.0/driver_override", "vfio-pci"), 0);
        assert_int_equal(sct_reconcile(t, &err), 0);
        assert_true(sct_quarantined(t, "0000:05:00.0"));
        assert_true(sct_quarantined(t, "0000:3d:00.0"));
        assert_int_equal(fk_add_mdev(t->k, "0000:3d:00.0", "nvidia-18", MDEV_UUID), 0);
        fk_forget_writes(t->k);
        refused(t, xml, -EBUSY, "quarantine");
        refused(t, cs, -EBUSY, "quarantine");
        refused(t, cs_mdev, -EBUSY, "quarantine");
        refused(t, xm, -EBUSY, "quarantine");
}

static void test_request_without_record(void **state)
{
        struct sct *t = *state;
        _cleanup_free_ char *xml = sct_domain_plain(VM, VM_UUID, NULL, NULL, true);

        sct_host_rtx3080(t);
        refused(t, xml, -ENODEV, "the transformer did not run");
}

static void test_record_without_hostdev(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        struct gpuh_alloc m[] = { sct_mdev(MDEV_UUID, "0000:3d:00.0", "nvidia-18") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *bare = sct_strip_hostdevs(xml),
                           *xm = sct_domain(VM, VM_UUID, m, 1), *bare_m = sct_strip_hostdevs(xm);

        sct_host_rtx3080(t);
        sct_host_m60(t);
        refused(t, bare, -ENODEV, "no hostdev for it");
        refused(t, bare_m, -ENODEV, MDEV_UUID);
}

static void test_vmname(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1);

        sct_host_rtx3080(t);
        t->o.vmname = " " VM;
        refused(t, xml, -EBADMSG, "VMNAME");
}

static void test_record_refused(void **state)
{
        struct sct *t = *state;
        struct { struct gpuh_alloc a; int want; const char *why; } cases[] = {
                { sct_pci("0000:09:00.0", NULL), -ENODEV, "no such PCI device" },
                { sct_pci("0000:03:00.0", NULL), -EPERM, "not a GPU" },
                { sct_pci("0000:05:00.0", "0000:03:00.0"), -EPERM, "not another function of its card" },
                { sct_vf("0000:83:02.1", "0000:08:00.0"), -EPERM, "which it is not" },
                { sct_vgpu("0000:05:00.1", "0000:05:00.0", 1152), -EPERM, "which it is not" },
                { sct_mdev(MDEV_UUID, "0000:03:00.0", "nvidia-18"), -EPERM, "not a GPU or a VF of one" },
                /* unbinding the PF would destroy what its VFs give other domains */
                { sct_pci("0000:08:00.0", NULL), -EBUSY, "0000:08:00.5 carries mdev" },
                { sct_pci("0000:af:00.0", NULL), -EBUSY, "0000:af:00.4 has vGPU type 1148" },
                { sct_pci("0000:83:00.0", NULL), -EBUSY, "0000:83:02.0 is on vfio-pci" },
                { sct_pci("0000:3d:00.0", NULL), -EBUSY, "it carries mdevs" },
        };

        sct_host_rtx3080(t);
        sct_host_a2(t, true);
        sct_host_l40s(t, true);
        sct_host_s7150(t, true);
        sct_host_m60(t);
        assert_int_equal(fk_add_mdev(t->k, "0000:08:00.5", "nvidia-746", "aaaaaaaa-2222-3333-4444-555555555555"), 0);
        assert_int_equal(fk_add_mdev(t->k, "0000:3d:00.0", "nvidia-18", "bbbbbbbb-2222-3333-4444-555555555555"), 0);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:af:00.4/nvidia/current_vgpu_type", "1148"), 0);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/devices/0000:83:02.0/driver_override", "vfio-pci"), 0);
        assert_int_equal(fk_kwrite(t->k, "bus/pci/drivers_probe", "0000:83:02.0"), 0);
        fk_forget_writes(t->k);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, &cases[i].a, 1);
                refused(t, xml, cases[i].want, cases[i].why);
        }
}

static void test_reservation(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        struct gpuh_alloc b[] = { sct_mdev(MDEV_UUID, "0000:3d:00.0", "nvidia-18") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *same_name = sct_domain(VM, VM2_UUID, a, 1),
                           *other_dev = sct_domain(VM, VM_UUID, b, 1), *err = NULL;

        sct_host_rtx3080(t);
        sct_host_m60(t);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        fk_forget_writes(t->k);
        /* a live reservation of that name made for another domain (UUID) */
        assert_int_equal(sct_prepare(t, same_name, &err), -EBUSY);
        assert_non_null(strstr(err, "belongs to another domain of that name"));
        /* a record naming what its reservation does not hold */
        assert_int_equal(sct_prepare(t, other_dev, &err), -EBUSY);
        assert_non_null(strstr(err, "its reservation does not hold " MDEV_UUID));
        assert_int_equal(n_writes(t), 0);
        assert_int_equal(sct_release(t, VM, &err), 0);
}

static void test_prepare_deadline(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1);

        sct_host_rtx3080(t);
        /* a deadline already past: no device is begun */
        t->cfg->prepare_timeout_ms = -1;
        refused(t, xml, -ETIMEDOUT, "prepare ran past its deadline");
}

static void test_domain_lock(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL;
        _cleanup_close_ int fd = -EBADF;
        char path[4096];

        sct_host_rtx3080(t);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        /* another hook works on the domain: its lock is held */
        snprintf(path, sizeof(path), "%s/locks/vm-" VM, fk_state(t->k));
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(flock(fd, LOCK_EX), 0);
        t->cfg->lock_timeout_ms = 100;
        fk_forget_writes(t->k);
        assert_int_equal(sct_release(t, VM, &err), -ETIMEDOUT);
        assert_non_null(strstr(err, "another hook is working on it"));
        /* reconcile leaves it for later */
        assert_int_equal(sct_reconcile(t, &err), 0);
        assert_true(sct_has_journal(t, VM));
        assert_int_equal(n_writes(t), 0);
        flock(fd, LOCK_UN);
        assert_int_equal(sct_release(t, VM, &err), 0);
}

static void test_bad_names(void **state)
{
        struct sct *t = *state;
        _cleanup_free_ char *err = NULL;

        assert_int_equal(gpuh_sc_release(&t->o, "a/b", NULL, sct_err(&err)), -EINVAL);
        assert_int_equal(gpuh_sc_started(&t->o, "", sct_err(&err)), -EINVAL);
        assert_int_equal(gpuh_sc_stopped(&t->o, "..", NULL, sct_err(&err)), -EINVAL);
}

/* How many steps of @plan have @key set to @value. */
static size_t count_steps_with(json_object *plan, const char *key, const char *value)
{
        json_object *steps;
        size_t n = 0;

        if (!json_object_object_get_ex(plan, "steps", &steps))
                return 0;
        for (size_t i = 0; i < json_object_array_length(steps); i++) {
                json_object *st = json_object_array_get_idx(steps, i), *k;
                if (json_object_object_get_ex(st, key, &k) && streq(json_object_get_string(k), value))
                        n++;
        }
        return n;
}

static size_t count_steps(json_object *plan, const char *kind)
{
        return count_steps_with(plan, "step", kind);
}

static void test_dry_runs(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *xml2 = sct_domain(VM2, VM2_UUID, a, 1), *err = NULL,
                           *before = NULL, *after = NULL;
        json_object *plan = NULL;

        sct_host_rtx3080(t);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        sct_drop_reservation(t, VM);
        assert_int_equal(fk_hold(t->k, 4242, "nvidia-smi", "vfio/24"), 0);
        before = fk_snapshot(t->k);
        fk_forget_writes(t->k);
        t->o.dry_run = true;

        /* VM2 would take VM's stale entries over; the QEMU holding the group is named */
        assert_int_equal(gpuh_sc_prepare(&t->o, xml2, strlen(xml2), &plan, sct_err(&err)), -EBUSY);
        assert_non_null(strstr(json_object_to_json_string(plan), "pid 4242"));
        json_object_put(plan);
        plan = NULL;
        fk_unhold(t->k, 4242);
        assert_int_equal(gpuh_sc_prepare(&t->o, xml2, strlen(xml2), &plan, sct_err(&err)), 0);
        assert_int_equal(count_steps(plan, "journal"), 2);
        assert_int_equal(count_steps_with(plan, "taken_over_from", VM), 2);
        json_object_put(plan);
        plan = NULL;

        /* the release VM's journal asks for */
        assert_int_equal(gpuh_sc_release(&t->o, VM, &plan, sct_err(&err)), 0);
        assert_int_equal(count_steps(plan, "write"), 8);
        json_object_put(plan);
        plan = NULL;
        assert_int_equal(gpuh_sc_stopped(&t->o, VM, &plan, sct_err(&err)), 0);
        assert_int_equal(count_steps(plan, "write"), 8);
        json_object_put(plan);
        plan = NULL;
        assert_int_equal(gpuh_sc_reconcile(&t->o, &plan, sct_err(&err)), 0);
        assert_int_equal(json_object_array_length(plan), 1);
        json_object_put(plan);
        plan = NULL;
        /* a domain without state: an empty plan */
        assert_int_equal(gpuh_sc_stopped(&t->o, VM2, &plan, sct_err(&err)), 0);
        assert_int_equal(count_steps(plan, "write"), 0);
        json_object_put(plan);

        assert_int_equal(n_writes(t), 0);
        after = fk_snapshot(t->k);
        sct_assert_same(before, after);
        assert_true(sct_has_journal(t, VM));
}

static void test_usage_unknown(void **state)
{
        struct sct *t = *state;
        struct gpuh_alloc a[] = { sct_pci("0000:05:00.0", "0000:05:00.1") };
        _cleanup_free_ char *xml = sct_domain(VM, VM_UUID, a, 1), *err = NULL;
        char *missing[] = { (char *) "/nonexistent/libvirt/qemu", NULL };

        sct_host_rtx3080(t);
        assert_int_equal(sct_prepare(t, xml, &err), 0);
        /* neither libvirt nor its files can say whether it runs: nothing is released */
        t->o.xml_dirs = missing;
        assert_int_equal(gpuh_sc_stopped(&t->o, VM, NULL, sct_err(&err)), -EIO);
        assert_int_equal(sct_reconcile(t, &err), -EIO);
        assert_true(sct_has_journal(t, VM));
        t->o.xml_dirs = t->xml_dirs;
        assert_int_equal(sct_release(t, VM, &err), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_cloudstack_hostdevs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cloudstack_held_elsewhere, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cloudstack_whole_gpu_parts_used, setup, teardown),
                cmocka_unit_test_setup_teardown(test_agent_split, setup, teardown),
                cmocka_unit_test_setup_teardown(test_quarantined, setup, teardown),
                cmocka_unit_test_setup_teardown(test_request_without_record, setup, teardown),
                cmocka_unit_test_setup_teardown(test_record_without_hostdev, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vmname, setup, teardown),
                cmocka_unit_test_setup_teardown(test_record_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reservation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prepare_deadline, setup, teardown),
                cmocka_unit_test_setup_teardown(test_domain_lock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dry_runs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_usage_unknown, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
