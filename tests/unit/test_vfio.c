/* SPDX-License-Identifier: Apache-2.0 */
/* test_vfio: writes with deadlines, rebinding, mdev create/remove, vendor vGPU types, on plain
 * trees (the kernel's side effects are the sysfs emulator's job; here the writes themselves). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <time.h>

#include <json-c/json.h>

#include "mdev.h"
#include "sysfs.h"
#include "vendor_vgpu.h"
#include "vfio.h"
#include "testutil.h"

#define GPU "devices/pci0000:00/0000:00:03.0/0000:05:00.0"

static struct gpuh_sysfs *s;
static struct gpuh_change ch;

/* a change with a deadline: plain trees answer at once or never, and the deadline only has to
 * outlast the writer child's start on a loaded machine */
static struct gpuh_change *chg(int timeout_ms)
{
        gpuh_change_done(&ch);
        assert_int_equal(gpuh_change_init(&ch, s->root_fd, timeout_ms, false), 0);
        return &ch;
}

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
        gpuh_change_done(&ch);
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

static void test_writer(void **state)
{
        struct gpuh_writer *w;

        assert_int_equal(gpuh_writer_new(s->root_fd, &w), 0);
        /* one child serves several writes */
        assert_int_equal(gpuh_writer_write(w, GPU "/driver_override", "a", 1000), 0);
        assert_string_equal(slurp(GPU "/driver_override"), "a");
        assert_int_equal(gpuh_writer_write(w, GPU "/driver_override", "b", 1000), 0);
        assert_string_equal(slurp(GPU "/driver_override"), "b");
        assert_int_equal(gpuh_writer_write(w, GPU "/missing", "b", 1000), -ENOENT);
        /* a write that hangs is cut at the deadline; the next one gets a new child */
        assert_int_equal(gpuh_writer_write(w, "hang", "x", 100), -ETIMEDOUT);
        assert_int_equal(gpuh_writer_write(w, GPU "/driver_override", "(null)", 1000), 0);
        assert_string_equal(slurp(GPU "/driver_override"), "(null)");
        assert_int_equal(gpuh_writer_write(w, "/abs", "x", 1000), -EINVAL);
        gpuh_writer_free(w);
}

static void test_rebind_sequence(void **state)
{
        struct gpuh_pci_addr a;
        char buf[64], *err = NULL;

        gpuh_pci_addr_parse("0000:05:00.0", &a);
        assert_int_equal(gpuh_pci_driver(chg(2000), &a, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "nvidia");
        assert_int_equal(gpuh_pci_override(&ch, &a, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "");
        /* a plain tree does not bind: the writes happen in order, then the check fails */
        assert_int_equal(gpuh_pci_rebind(chg(2000), &a, "vfio-pci", &err), -ENODEV);
        assert_non_null(strstr(err, "ended on nvidia, not vfio-pci"));
        free(err);
        assert_string_equal(slurp(GPU "/driver_override"), "vfio-pci");
        assert_string_equal(slurp("bus/pci/drivers/nvidia/unbind"), "0000:05:00.0");
        assert_int_equal(gpuh_pci_driver(&ch, &(struct gpuh_pci_addr) { .bus = 6 }, buf, sizeof(buf)), -ENOENT);
        /* what the kernel would have done: the link now points at vfio-pci */
        {
                char link[PATH_MAX];
                snprintf(link, sizeof(link), "%s/%s/driver", tu_dir, GPU);
                unlink(link);
                assert_int_equal(symlink("../../../../bus/pci/drivers/vfio-pci", link), 0);
        }
        /* already there, override set: nothing is written */
        gpuh_sysfs_write(s->root_fd, "bus/pci/drivers/vfio-pci/unbind", "untouched");
        assert_int_equal(gpuh_pci_rebind(chg(2000), &a, "vfio-pci", NULL), 0);
        assert_string_equal(slurp("bus/pci/drivers/vfio-pci/unbind"), "untouched");
        /* back to what it had: override cleared (an empty line), unbound from vfio-pci; the plain
         * tree keeps the vfio-pci link, which the check reports */
        err = NULL;
        assert_int_equal(gpuh_pci_restore(chg(2000), &a, "nvidia", "", &err), -ENODEV);
        assert_non_null(strstr(err, "ended on vfio-pci, not nvidia"));
        free(err);
        /* the recorded driver is named for the probe (a plain reprobe could bind nouveau) */
        assert_string_equal(slurp(GPU "/driver_override"), "nvidia");
        assert_string_equal(slurp("bus/pci/drivers/vfio-pci/unbind"), "0000:05:00.0");
        assert_string_equal(slurp("bus/pci/drivers_probe"), "0000:05:00.0");
        gpuh_pci_addr_parse("0000:06:00.0", &a);
        assert_int_equal(gpuh_pci_rebind(chg(2000), &a, "vfio-pci", NULL), -ENOENT);
        assert_int_equal(gpuh_pci_rebind(chg(2000), &a, NULL, NULL), -EINVAL);
}

static void test_mdev_create_remove(void **state)
{
        struct gpuh_pci_addr a;
        char *err = NULL;

        gpuh_pci_addr_parse("0000:05:00.0", &a);
        /* exists as asked: nothing to do */
        assert_int_equal(gpuh_mdev_create(chg(2000), &a, "nvidia-22", "aaaaaaaa-0000-0000-0000-000000000001", NULL), 0);
        assert_string_equal(slurp(GPU "/mdev_supported_types/nvidia-22/create"), "");
        /* exists with another type */
        assert_int_equal(gpuh_mdev_create(chg(2000), &a, "nvidia-18", "aaaaaaaa-0000-0000-0000-000000000001", &err), -EEXIST);
        assert_non_null(strstr(err, "as nvidia-22 on 0000:05:00.0"));
        free(err);
        err = NULL;
        assert_int_equal(gpuh_mdev_create(chg(2000), &a, "nvidia-18", "bbbbbbbb-0000-0000-0000-000000000002", &err), -ENOSPC);
        free(err);
        assert_int_equal(gpuh_mdev_create(chg(2000), &a, "nvidia-99", "bbbbbbbb-0000-0000-0000-000000000002", NULL), -ENOENT);
        assert_int_equal(gpuh_mdev_create(chg(2000), &a, "../x", "bbbbbbbb-0000-0000-0000-000000000002", NULL), -EINVAL);
        /* written; a plain tree makes no mdev, which the wait reports */
        assert_int_equal(gpuh_mdev_create(chg(2000), &a, "nvidia-22", "bbbbbbbb-0000-0000-0000-000000000002", NULL), -ENODEV);
        assert_string_equal(slurp(GPU "/mdev_supported_types/nvidia-22/create"), "bbbbbbbb-0000-0000-0000-000000000002");
        assert_int_equal(gpuh_mdev_remove(chg(2000), "aaaaaaaa-0000-0000-0000-000000000001", NULL), -ETIMEDOUT);
        assert_string_equal(slurp(GPU "/aaaaaaaa-0000-0000-0000-000000000001/remove"), "1");
        assert_int_equal(gpuh_mdev_remove(chg(2000), "cccccccc-0000-0000-0000-000000000003", NULL), 0);
        assert_int_equal(gpuh_mdev_remove(chg(2000), "not-a-uuid", NULL), -EINVAL);
}

static void test_vendor_vgpu_set(void **state)
{
        struct gpuh_pci_addr a;
        char *err = NULL;

        gpuh_pci_addr_parse("0000:05:00.0", &a);
        assert_int_equal(gpuh_vendor_vgpu_set(chg(2000), &a, 1145, NULL), 0);   /* already */
        assert_string_equal(slurp(GPU "/nvidia/current_vgpu_type"), "1145");
        assert_int_equal(gpuh_vendor_vgpu_set(chg(2000), &a, 9999, &err), -ENOSPC);
        assert_non_null(strstr(err, "9999"));
        free(err);
        /* cleared on the way (the old type was written over with 0 before the check) */
        assert_string_equal(slurp(GPU "/nvidia/current_vgpu_type"), "0");
        assert_int_equal(gpuh_vendor_vgpu_set(chg(2000), &a, 1148, NULL), 0);
        assert_string_equal(slurp(GPU "/nvidia/current_vgpu_type"), "1148");
        assert_int_equal(gpuh_vendor_vgpu_set(chg(2000), &a, 0, NULL), 0);
        assert_string_equal(slurp(GPU "/nvidia/current_vgpu_type"), "0");
        gpuh_pci_addr_parse("0000:06:00.0", &a);
        assert_int_equal(gpuh_vendor_vgpu_set(chg(2000), &a, 1148, NULL), -ENOENT);
}

static void test_dry_run(void **state)
{
        struct gpuh_change c;
        struct gpuh_pci_addr a;
        const char *text;

        gpuh_pci_addr_parse("0000:05:00.0", &a);
        tu_write(tu_dir, GPU "/driver_override", "(null)\n");
        {
                char link[PATH_MAX];
                snprintf(link, sizeof(link), "%s/%s/driver", tu_dir, GPU);
                unlink(link);
                assert_int_equal(symlink("../../../../bus/pci/drivers/nvidia", link), 0);
        }
        tu_write(tu_dir, "bus/pci/drivers/nvidia/unbind", "");
        tu_write(tu_dir, "bus/pci/drivers_probe", "");
        assert_int_equal(gpuh_change_init(&c, s->root_fd, 1234, true), 0);
        assert_int_equal(gpuh_pci_rebind(&c, &a, "vfio-pci", NULL), 0);
        text = json_object_to_json_string_ext(c.steps, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        assert_string_equal(text,
                "[{\"step\":\"write\",\"path\":\"bus/pci/devices/0000:05:00.0/driver_override\",\"value\":\"vfio-pci\",\"deadline_ms\":1234},"
                "{\"step\":\"write\",\"path\":\"bus/pci/drivers/nvidia/unbind\",\"value\":\"0000:05:00.0\",\"deadline_ms\":1234},"
                "{\"step\":\"write\",\"path\":\"bus/pci/drivers_probe\",\"value\":\"0000:05:00.0\",\"deadline_ms\":1234},"
                "{\"step\":\"wait\",\"path\":\"bus/pci/devices/0000:05:00.0/driver\",\"for\":\"vfio-pci\",\"deadline_ms\":1234}]");
        /* nothing was written */
        assert_string_equal(slurp(GPU "/driver_override"), "(null)");
        assert_string_equal(slurp("bus/pci/drivers/nvidia/unbind"), "");
        assert_string_equal(slurp("bus/pci/drivers_probe"), "");
        gpuh_change_done(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_write_deadline),
                cmocka_unit_test(test_writer),
                cmocka_unit_test(test_rebind_sequence),
                cmocka_unit_test(test_mdev_create_remove),
                cmocka_unit_test(test_vendor_vgpu_set),
                cmocka_unit_test(test_dry_run),
        };
        return cmocka_run_group_tests_name("vfio", tests, setup, teardown);
}
