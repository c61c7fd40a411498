/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sc_prepare: gpuh_sc_prepare() as a dry run on a sysfs tree made by the test (no root,
 * no FUSE): the IOMMU group rule (only a PCI-to-PCI bridge may stay on its driver in a GPU's
 * group, as inventory.c says), the options it requires, and a run that closes no fd it did not
 * open.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "config.h"
#include "statechange.h"
#include "testutil.h"

#define GPU "0000:01:00.0"
#define OTHER "0000:00:1f.0"

struct t {
        char *dir;                      /* sysfs/, state/ (absent), dev/, proc/ */
        char *sysfs, *state, *dev, *proc;
        struct gpuh_config *cfg;
};

/* A function as real directory bus/pci/devices/BDF with its ids, class, driver and group. */
static void add_fn(struct t *t, const char *bdf, const char *vendor, const char *cls, const char *driver, int group)
{
        char rel[256], target[256];

        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/vendor", bdf);
        tu_write(t->sysfs, rel, vendor);
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/device", bdf);
        tu_write(t->sysfs, rel, "0x1234\n");
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/class", bdf);
        tu_write(t->sysfs, rel, cls);
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver_override", bdf);
        tu_write(t->sysfs, rel, "(null)\n");
        snprintf(rel, sizeof(rel), "bus/pci/drivers/%s/bind", driver);
        tu_write(t->sysfs, rel, "");
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver", bdf);
        snprintf(target, sizeof(target), "../../../../bus/pci/drivers/%s", driver);
        tu_symlink(t->sysfs, rel, target);
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/iommu_group", bdf);
        snprintf(target, sizeof(target), "../../../../kernel/iommu_groups/%d", group);
        tu_symlink(t->sysfs, rel, target);
        snprintf(rel, sizeof(rel), "kernel/iommu_groups/%d/devices/%s", group, bdf);
        tu_write(t->sysfs, rel, "");
}

static int setup(void **state)
{
        struct t *t = calloc(1, sizeof(*t));

        assert_non_null(t);
        t->dir = tu_mkdtemp();
        assert_non_null(t->dir);
        assert_true(asprintf(&t->sysfs, "%s/sysfs", t->dir) > 0 && asprintf(&t->state, "%s/state", t->dir) > 0 &&
                    asprintf(&t->dev, "%s/dev", t->dir) > 0 && asprintf(&t->proc, "%s/proc", t->dir) > 0);
        assert_int_equal(mkdir(t->sysfs, 0755), 0);
        assert_int_equal(mkdir(t->dev, 0755), 0);
        assert_int_equal(mkdir(t->proc, 0755), 0);
        assert_int_equal(gpuh_config_new_default(&t->cfg), 0);
        /* an NVIDIA VGA function on nvidia, IOMMU group 5 */
        add_fn(t, GPU, "0x10de\n", "0x030000\n", "nvidia", 5);
        *state = t;
        return 0;
}

static int teardown(void **state)
{
        struct t *t = *state;

        gpuh_config_free(t->cfg);
        tu_rmtree(t->dir);
        free(t->dir);
        free(t->sysfs);
        free(t->state);
        free(t->dev);
        free(t->proc);
        free(t);
        return 0;
}

static const char xml[] =
        "<domain type='kvm'><name>i-2-6-VM</name><uuid>071628d0-84f1-421e-a9cf-d18bca2283bc</uuid>"
        "<metadata><gpuhooks:gpu xmlns:gpuhooks='urn:gpuhooks:domain:1'><gpuhooks:allocation version='1'>"
        "<gpuhooks:device kind='pci' address='" GPU "' managed='no' request='0'/></gpuhooks:allocation>"
        "</gpuhooks:gpu></metadata><devices><hostdev mode='subsystem' type='pci' managed='no'><source>"
        "<address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev></devices></domain>";

static int dry_prepare(struct t *t, const char *doc, json_object **plan, char **err)
{
        struct gpuh_sc_opts o = {
                .cfg = t->cfg, .sysfs_root = t->sysfs, .state_dir = t->state, .dev_dir = t->dev,
                .proc_root = t->proc, .dry_run = true, .vmname = "i-2-6-VM",
        };

        return gpuh_sc_prepare(&o, doc, strlen(doc), plan, err);
}

/* The number of write steps of @plan to @suffix. */
static int writes_to(json_object *plan, const char *suffix)
{
        json_object *steps, *v;
        int n = 0;

        if (!plan || !json_object_object_get_ex(plan, "steps", &steps))
                return -1;
        for (size_t i = 0; i < json_object_array_length(steps); i++) {
                json_object *st = json_object_array_get_idx(steps, i);
                const char *path;
                size_t l, ls = strlen(suffix);

                if (!json_object_object_get_ex(st, "step", &v) || !streq(json_object_get_string(v), "write") ||
                    !json_object_object_get_ex(st, "path", &v))
                        continue;
                path = json_object_get_string(v);
                l = strlen(path);
                n += l >= ls && streq(path + l - ls, suffix);
        }
        return n;
}

/* A GPU alone in its group: the dry run plans its bind. */
static void test_alone(void **state)
{
        struct t *t = *state;
        json_object *plan = NULL;
        char *err = NULL;

        assert_int_equal(dry_prepare(t, xml, &plan, &err), 0);
        assert_null(err);
        assert_int_equal(writes_to(plan, GPU "/driver_override"), 1);
        json_object_put(plan);
}

/* A PCI-to-PCI bridge on pcieport in the GPU's group is allowed (VFIO accepts it). */
static void test_pci_bridge_passes(void **state)
{
        struct t *t = *state;
        json_object *plan = NULL;
        char *err = NULL;

        add_fn(t, OTHER, "0x8086\n", "0x060400\n", "pcieport", 5);
        assert_int_equal(dry_prepare(t, xml, &plan, &err), 0);
        assert_null(err);
        assert_int_equal(writes_to(plan, GPU "/driver_override"), 1);
        assert_int_equal(writes_to(plan, OTHER "/driver_override"), 0);
        json_object_put(plan);
}

/* Another kind of bridge (an ISA bridge on lpc_ich: class 0x0601, a normal header) makes the
 * group unusable for VFIO: refused before anything is planned, naming it. */
static void test_isa_bridge_refused(void **state)
{
        struct t *t = *state;
        json_object *plan = NULL;
        char *err = NULL;

        add_fn(t, OTHER, "0x8086\n", "0x060100\n", "lpc_ich", 5);
        assert_int_equal(dry_prepare(t, xml, &plan, &err), -EBUSY);
        assert_non_null(err);
        assert_non_null(strstr(err, "IOMMU group 5 also holds " OTHER " (on lpc_ich)"));
        assert_int_equal(writes_to(plan, "/driver_override"), 0);
        free(err);
        json_object_put(plan);
}

/* The library reads no environment: without a root, every call fails and touches nothing. */
static void test_roots_required(void **state)
{
        struct t *t = *state;
        struct gpuh_sc_opts o = { .cfg = t->cfg, .sysfs_root = t->sysfs, .state_dir = t->state, .dev_dir = t->dev };
        json_object *plan = NULL;
        char *err = NULL;

        assert_int_equal(gpuh_sc_prepare(&o, xml, strlen(xml), &plan, &err), -EINVAL);
        assert_non_null(err);
        assert_null(plan);
        free(err);
        err = NULL;
        assert_int_equal(gpuh_sc_release(&o, "i-2-6-VM", &plan, &err), -EINVAL);
        free(err);
        err = NULL;
        assert_int_equal(gpuh_sc_reconcile(&o, &plan, &err), -EINVAL);
        free(err);
}

/* A run that ends before it opened anything (a domain without GPUs; a release of a domain
 * without state) closes nothing: fd 0 stays open. */
static void test_closes_no_fd_of_others(void **state)
{
        struct t *t = *state;
        static const char plain[] = "<domain type='kvm'><name>i-2-7-VM</name><devices/></domain>";
        struct gpuh_sc_opts o = {
                .cfg = t->cfg, .sysfs_root = t->sysfs, .state_dir = t->state, .dev_dir = t->dev, .proc_root = t->proc,
        };
        int saved = dup(0), fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        char *err = NULL;

        assert_true(saved >= 0 && fd >= 0);
        assert_int_equal(dup2(fd, 0), 0);
        assert_int_equal(gpuh_sc_prepare(&o, plain, strlen(plain), NULL, &err), 0);
        assert_int_equal(fcntl(0, F_GETFD), 0);         /* still open (dup2 clears FD_CLOEXEC) */
        assert_int_equal(gpuh_sc_release(&o, "i-2-7-VM", NULL, &err), 0);
        assert_int_equal(fcntl(0, F_GETFD), 0);
        assert_null(err);
        assert_int_equal(dup2(saved, 0), 0);
        close(saved);
        close(fd);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_alone, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pci_bridge_passes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_isa_bridge_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_roots_required, setup, teardown),
                cmocka_unit_test_setup_teardown(test_closes_no_fd_of_others, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
