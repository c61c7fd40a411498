/* SPDX-License-Identifier: Apache-2.0 */
/* test_sysfs: reads, links, listings and writes under a fake root. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sysfs.h"
#include "testutil.h"

struct fx {
        char *dir;
        struct gpuh_sysfs *s;
};

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        char big[300];

        f->dir = tu_mkdtemp();
        tu_write(f->dir, "devices/pci0000:00/0000:00:03.0/0000:08:00.0/vendor", "0x10de\n");
        tu_write(f->dir, "devices/pci0000:00/0000:00:03.0/0000:08:00.0/numa_node", "-1\n");
        tu_write(f->dir, "devices/pci0000:00/0000:00:03.0/0000:08:00.0/garbage", "0x10dez\n");
        tu_write(f->dir, "devices/pci0000:00/0000:00:03.0/0000:08:00.0/twonum", "1 2\n");
        tu_write(f->dir, "devices/pci0000:00/0000:00:03.0/0000:08:00.0/empty", "");
        tu_write(f->dir, "devices/pci0000:00/0000:00:03.0/0000:08:00.0/driver_override", "(null)\n");
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        tu_write(f->dir, "devices/pci0000:00/0000:00:03.0/0000:08:00.0/big", big);
        tu_symlink(f->dir, "bus/pci/devices/0000:08:00.0", "../../../devices/pci0000:00/0000:00:03.0/0000:08:00.0");
        tu_mkdir(f->dir, "bus/pci/drivers/nvidia");
        tu_symlink(f->dir, "devices/pci0000:00/0000:00:03.0/0000:08:00.0/driver", "../../../../bus/pci/drivers/nvidia");
        tu_symlink(f->dir, "devices/pci0000:00/0000:00:03.0/0000:08:00.0/dangling", "../../../../nowhere/42");
        for (int i = 0; i < 12; i++) {
                char rel[128];
                snprintf(rel, sizeof(rel), "devices/pci0000:00/0000:00:03.0/0000:08:00.0/virtfn%d", i);
                tu_symlink(f->dir, rel, "../0000:08:00.4");
        }
        assert_int_equal(gpuh_sysfs_open(f->dir, &f->s), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        gpuh_sysfs_free(f->s);
        tu_rmtree(f->dir);
        free(f->dir);
        free(f);
        return 0;
}

#define DEV "bus/pci/devices/0000:08:00.0/"

static void test_read(void **state)
{
        struct fx *f = *state;
        char buf[64];
        uint64_t v;
        int i;

        assert_int_equal(gpuh_sysfs_read(f->s->root_fd, DEV "vendor", buf, sizeof(buf)), 6);
        assert_string_equal(buf, "0x10de");
        assert_int_equal(gpuh_sysfs_read(f->s->root_fd, DEV "empty", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "");
        assert_int_equal(gpuh_sysfs_read_u64(f->s->root_fd, DEV "vendor", &v), 0);
        assert_int_equal(v, 0x10de);
        assert_int_equal(gpuh_sysfs_read_int(f->s->root_fd, DEV "numa_node", &i), 0);
        assert_int_equal(i, -1);
        assert_int_equal(gpuh_sysfs_read_u64(f->s->root_fd, DEV "numa_node", &v), -EBADMSG);
        assert_int_equal(gpuh_sysfs_read_u64(f->s->root_fd, DEV "garbage", &v), -EBADMSG);
        assert_int_equal(gpuh_sysfs_read_u64(f->s->root_fd, DEV "twonum", &v), -EBADMSG);
        assert_int_equal(gpuh_sysfs_read_u64(f->s->root_fd, DEV "empty", &v), -EBADMSG);
        assert_int_equal(gpuh_sysfs_read_int(f->s->root_fd, DEV "vendor", &i), -EBADMSG);
        assert_int_equal(gpuh_sysfs_read(f->s->root_fd, DEV "missing", buf, sizeof(buf)), -ENOENT);
        assert_int_equal(gpuh_sysfs_read(f->s->root_fd, DEV "big", buf, sizeof(buf)), -E2BIG);
        assert_int_equal(gpuh_sysfs_read(f->s->root_fd, DEV "dangling", buf, sizeof(buf)), -ENOENT);
        assert_int_equal(gpuh_sysfs_read(f->s->root_fd, "bus/pci/devices", buf, sizeof(buf)), -EISDIR);
}

static void test_rejects_escaping_paths(void **state)
{
        struct fx *f = *state;
        char buf[64];

        assert_int_equal(gpuh_sysfs_read(f->s->root_fd, "/etc/passwd", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(gpuh_sysfs_read(f->s->root_fd, "bus/../../etc/passwd", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(gpuh_sysfs_read(f->s->root_fd, "..", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(gpuh_sysfs_write(f->s->root_fd, "../x", "1"), -EINVAL);
        assert_int_equal(gpuh_sysfs_open_dir(f->s->root_fd, "bus/.."), -EINVAL);
        /* "..." and "..x" are ordinary names */
        assert_int_equal(gpuh_sysfs_read(f->s->root_fd, "...", buf, sizeof(buf)), -ENOENT);
}

static void test_links(void **state)
{
        struct fx *f = *state;
        char buf[64];

        assert_int_equal(gpuh_sysfs_link_basename(f->s->root_fd, DEV "driver", buf, sizeof(buf)), 6);
        assert_string_equal(buf, "nvidia");
        assert_int_equal(gpuh_sysfs_link_basename(f->s->root_fd, DEV "dangling", buf, sizeof(buf)), 2);
        assert_string_equal(buf, "42");
        assert_int_equal(gpuh_sysfs_exists(f->s->root_fd, DEV "dangling"), 0);
        assert_int_equal(gpuh_sysfs_exists(f->s->root_fd, DEV "driver"), 1);
        assert_int_equal(gpuh_sysfs_link_basename(f->s->root_fd, DEV "iommu_group", buf, sizeof(buf)), -ENOENT);
        assert_int_equal(gpuh_sysfs_link_basename(f->s->root_fd, DEV "vendor", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(gpuh_sysfs_link_basename(f->s->root_fd, DEV "driver", buf, 4), -E2BIG);
}

static void test_list_natural_order(void **state)
{
        struct fx *f = *state;
        char **names = NULL;
        int n, v2 = -1, v10 = -1;

        n = gpuh_sysfs_list(f->s->root_fd, DEV, &names);
        assert_true(n > 12);
        assert_null(names[n]);
        for (int i = 0; i < n; i++) {
                if (streq(names[i], "virtfn2"))
                        v2 = i;
                if (streq(names[i], "virtfn10"))
                        v10 = i;
        }
        assert_true(v2 >= 0 && v10 > v2);
        strv_free(names);
        assert_int_equal(gpuh_sysfs_list(f->s->root_fd, "bus/mdev/devices", &names), -ENOENT);
}

static void test_write(void **state)
{
        struct fx *f = *state;
        char buf[64];

        assert_int_equal(gpuh_sysfs_write(f->s->root_fd, DEV "driver_override", "vfio-pci"), 0);
        assert_int_equal(gpuh_sysfs_read(f->s->root_fd, DEV "driver_override", buf, sizeof(buf)), 8);
        assert_string_equal(buf, "vfio-pci");
        /* never created: a missing attribute fails as on the kernel */
        assert_int_equal(gpuh_sysfs_write(f->s->root_fd, DEV "new_attribute", "1"), -ENOENT);
        assert_int_equal(gpuh_sysfs_exists(f->s->root_fd, DEV "new_attribute"), 0);
}

static void test_open_root(void **state)
{
        struct fx *f = *state;
        struct gpuh_sysfs *s = NULL;
        char path[PATH_MAX];

        assert_int_equal(gpuh_sysfs_open("/nonexistent/sysfs", &s), -ENOENT);
        snprintf(path, sizeof(path), "%s/devices/pci0000:00/0000:00:03.0/0000:08:00.0/vendor", f->dir);
        assert_int_equal(gpuh_sysfs_open(path, &s), -ENOTDIR);
        assert_null(gpuh_sysfs_free(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_read),
                cmocka_unit_test(test_rejects_escaping_paths),
                cmocka_unit_test(test_links),
                cmocka_unit_test(test_list_natural_order),
                cmocka_unit_test(test_write),
                cmocka_unit_test(test_open_root),
        };
        return cmocka_run_group_tests_name("sysfs", tests, setup, teardown);
}
