/* SPDX-License-Identifier: Apache-2.0 */
/* test_vfio: writes with deadlines, rebinding, mdev create/remove, vendor vGPU types, on plain
 * trees (the kernel's side effects are the sysfs emulator's job; here the writes themselves). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <time.h>

#include "mdev.h"
#include "sysfs.h"
#include "vendor_vgpu.h"
#include "vfio.h"
#include "testutil.h"

#define GPU "devices/pci0000:00/0000:00:03.0/0000:05:00.0"

static struct gpuh_sysfs *s;

static int setup(void **state)
{
        if (tu_group_setup(state) < 0)
                return -1;
        tu_write(tu_dir, GPU "/driver_override", "(null)\n");
        tu_write(tu_dir, GPU "/vendor", "0x10de\n");
        tu_symlink(tu_dir, "bus/pci/devices/0000:05:00.0", "../../../" GPU);
        tu_write(tu_dir, "bus/pci/drivers/nvidia/unbind", "");
        tu_write(tu_dir, "bus/pci/drivers/vfio-pci/unbind", "");
        tu_write(tu_dir, "bus/pci/drivers_probe", "");
        tu_symlink(tu_dir, GPU "/driver", "../../../../bus/pci/drivers/nvidia");
        /* mdev types on the GPU */
        tu_write(tu_dir, GPU "/mdev_supported_types/nvidia-22/available_instances", "1\n");
        tu_write(tu_dir, GPU "/mdev_supported_types/nvidia-22/create", "");
        tu_write(tu_dir, GPU "/mdev_supported_types/nvidia-18/available_instances", "0\n");
        tu_write(tu_dir, GPU "/aaaaaaaa-0000-0000-0000-000000000001/remove", "");
        tu_symlink(tu_dir, GPU "/aaaaaaaa-0000-0000-0000-000000000001/mdev_type", "../mdev_supported_types/nvidia-22");
        tu_symlink(tu_dir, "bus/mdev/devices/aaaaaaaa-0000-0000-0000-000000000001",
                   "../../../" GPU "/aaaaaaaa-0000-0000-0000-000000000001");
        /* vendor vGPU files */
        tu_write(tu_dir, GPU "/nvidia/current_vgpu_type", "1145\n");
        tu_write(tu_dir, GPU "/nvidia/creatable_vgpu_types", "ID    : vGPU Name\n1148  : NVIDIA L40S-2Q\n");
        {
                char fifo[PATH_MAX];
                snprintf(fifo, sizeof(fifo), "%s/hang", tu_dir);
                if (mkfifo(fifo, 0600) < 0)
                        return -1;
        }
        return gpuh_sysfs_open(tu_dir, &s);
}

static int teardown(void **state)
{
        gpuh_sysfs_free(s);
        return tu_group_teardown(state);
}

static char *slurp(const char *rel)
{
        static char buf[256];
        buf[0] = '\0';
        gpuh_sysfs_read(s->root_fd, rel, buf, sizeof(buf));
        return buf;
}

static void test_write_deadline(void **state)
{
        struct timespec t0, t1;
        double ms;

        assert_int_equal(gpuh_sysfs_write_deadline(s->root_fd, GPU "/driver_override", "x", 1000), 0);
        assert_string_equal(slurp(GPU "/driver_override"), "x");
        assert_int_equal(gpuh_sysfs_write_deadline(s->root_fd, GPU "/nonexistent", "x", 1000), -ENOENT);
        assert_int_equal(gpuh_sysfs_write_deadline(s->root_fd, "../x", "x", 1000), -EINVAL);
        /* opening a FIFO nobody reads blocks: a write the kernel holds up */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(gpuh_sysfs_write_deadline(s->root_fd, "hang", "x", 200), -ETIMEDOUT);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms = (double) (t1.tv_sec - t0.tv_sec) * 1e3 + (double) (t1.tv_nsec - t0.tv_nsec) / 1e6;
        assert_true(ms >= 150 && ms < 5000);
        gpuh_sysfs_write(s->root_fd, GPU "/driver_override", "(null)");
}

static void test_rebind_sequence(void **state)
{
        struct gpuh_pci_addr a;
        char buf[64], *err = NULL;

        gpuh_pci_addr_parse("0000:05:00.0", &a);
        assert_int_equal(gpuh_pci_driver(s->root_fd, &a, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "nvidia");
        assert_int_equal(gpuh_pci_override(s->root_fd, &a, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "");
        /* a plain tree does not bind: the writes happen in order, then the check fails */
        assert_int_equal(gpuh_pci_rebind(s->root_fd, &a, "vfio-pci", 100, &err), -ENODEV);
        assert_non_null(strstr(err, "ended on nvidia, not vfio-pci"));
        free(err);
        assert_string_equal(slurp(GPU "/driver_override"), "vfio-pci");
        assert_string_equal(slurp("bus/pci/drivers/nvidia/unbind"), "0000:05:00.0");
        /* what the kernel would have done: the link now points at vfio-pci */
        {
                char link[PATH_MAX];
                snprintf(link, sizeof(link), "%s/%s/driver", tu_dir, GPU);
                unlink(link);
                assert_int_equal(symlink("../../../../bus/pci/drivers/vfio-pci", link), 0);
        }
        /* already there, override set: nothing is written */
        gpuh_sysfs_write(s->root_fd, "bus/pci/drivers/vfio-pci/unbind", "untouched");
        assert_int_equal(gpuh_pci_rebind(s->root_fd, &a, "vfio-pci", 100, NULL), 0);
        assert_string_equal(slurp("bus/pci/drivers/vfio-pci/unbind"), "untouched");
        /* back to what it had: override cleared (an empty line), unbound from vfio-pci; the plain
         * tree keeps the vfio-pci link, which the check reports */
        err = NULL;
        assert_int_equal(gpuh_pci_restore(s->root_fd, &a, "nvidia", "", 100, &err), -ENODEV);
        assert_non_null(strstr(err, "ended on vfio-pci, not nvidia"));
        free(err);
        assert_string_equal(slurp(GPU "/driver_override"), "");
        assert_string_equal(slurp("bus/pci/drivers/vfio-pci/unbind"), "0000:05:00.0");
        gpuh_pci_addr_parse("0000:06:00.0", &a);
        assert_int_equal(gpuh_pci_rebind(s->root_fd, &a, "vfio-pci", 100, NULL), -ENOENT);
        assert_int_equal(gpuh_pci_rebind(s->root_fd, &a, NULL, 100, NULL), -EINVAL);
}

static void test_mdev_create_remove(void **state)
{
        struct gpuh_pci_addr a;
        char *err = NULL;

        gpuh_pci_addr_parse("0000:05:00.0", &a);
        /* exists as asked: nothing to do */
        assert_int_equal(gpuh_mdev_create(s->root_fd, &a, "nvidia-22", "aaaaaaaa-0000-0000-0000-000000000001", 500, NULL), 0);
        assert_string_equal(slurp(GPU "/mdev_supported_types/nvidia-22/create"), "");
        /* exists with another type */
        assert_int_equal(gpuh_mdev_create(s->root_fd, &a, "nvidia-18", "aaaaaaaa-0000-0000-0000-000000000001", 500, &err), -EEXIST);
        assert_non_null(strstr(err, "as nvidia-22 on 0000:05:00.0"));
        free(err);
        err = NULL;
        assert_int_equal(gpuh_mdev_create(s->root_fd, &a, "nvidia-18", "bbbbbbbb-0000-0000-0000-000000000002", 500, &err), -ENOSPC);
        free(err);
        assert_int_equal(gpuh_mdev_create(s->root_fd, &a, "nvidia-99", "bbbbbbbb-0000-0000-0000-000000000002", 500, NULL), -ENOENT);
        assert_int_equal(gpuh_mdev_create(s->root_fd, &a, "../x", "bbbbbbbb-0000-0000-0000-000000000002", 500, NULL), -EINVAL);
        assert_int_equal(gpuh_mdev_create(s->root_fd, &a, "nvidia-22", "bbbbbbbb-0000-0000-0000-000000000002", 500, NULL), 0);
        assert_string_equal(slurp(GPU "/mdev_supported_types/nvidia-22/create"), "bbbbbbbb-0000-0000-0000-000000000002");
        assert_int_equal(gpuh_mdev_remove(s->root_fd, "aaaaaaaa-0000-0000-0000-000000000001", 500, NULL), 0);
        assert_string_equal(slurp(GPU "/aaaaaaaa-0000-0000-0000-000000000001/remove"), "1");
        assert_int_equal(gpuh_mdev_remove(s->root_fd, "cccccccc-0000-0000-0000-000000000003", 500, NULL), 0);
        assert_int_equal(gpuh_mdev_remove(s->root_fd, "not-a-uuid", 500, NULL), -EINVAL);
}

static void test_vendor_vgpu_set(void **state)
{
        struct gpuh_pci_addr a;
        char *err = NULL;

        gpuh_pci_addr_parse("0000:05:00.0", &a);
        assert_int_equal(gpuh_vendor_vgpu_set(s->root_fd, &a, 1145, 500, NULL), 0);   /* already */
        assert_string_equal(slurp(GPU "/nvidia/current_vgpu_type"), "1145");
        assert_int_equal(gpuh_vendor_vgpu_set(s->root_fd, &a, 9999, 500, &err), -ENOSPC);
        assert_non_null(strstr(err, "9999"));
        free(err);
        /* cleared on the way (the old type was written over with 0 before the check) */
        assert_string_equal(slurp(GPU "/nvidia/current_vgpu_type"), "0");
        assert_int_equal(gpuh_vendor_vgpu_set(s->root_fd, &a, 1148, 500, NULL), 0);
        assert_string_equal(slurp(GPU "/nvidia/current_vgpu_type"), "1148");
        assert_int_equal(gpuh_vendor_vgpu_set(s->root_fd, &a, 0, 500, NULL), 0);
        assert_string_equal(slurp(GPU "/nvidia/current_vgpu_type"), "0");
        gpuh_pci_addr_parse("0000:06:00.0", &a);
        assert_int_equal(gpuh_vendor_vgpu_set(s->root_fd, &a, 1148, 500, NULL), -ENOENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_write_deadline),
                cmocka_unit_test(test_rebind_sequence),
                cmocka_unit_test(test_mdev_create_remove),
                cmocka_unit_test(test_vendor_vgpu_set),
        };
        return cmocka_run_group_tests_name("vfio", tests, setup, teardown);
}
