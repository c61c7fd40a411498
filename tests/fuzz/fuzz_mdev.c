/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_mdev: an mdev type's attributes as the driver might show them, through
 * gpuh_mdev_types_read() (one parent with one type in a private sysfs tree) and
 * gpuh_vgpu_params_parse() (NVIDIA's "key=value, ..." and GVT-g's "key: value" lines);
 * gpuh_uuid_is_valid() and gpuh_mdev_type_name_ok() against their documented grammar.
 *
 * The input, NUL-separated: type id, description, name, available_instances, device_api.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mdev.h"
#include "sysfs.h"
#include "warn.h"

static int root_fd = -1;
static char root[PATH_MAX];

#define PARENT "bus/pci/devices/0000:08:00.4"

/* mdev.h: "only 1..63 of [A-Za-z0-9_.:+-], not "." nor ".."" */
static bool ref_type_name_ok(const char *s)
{
        size_t n = strlen(s);

        if (n < 1 || n > 63 || streq(s, ".") || streq(s, ".."))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) s[i]) && !strchr("_.:+-", s[i]))
                        return false;
        return true;
}

/* RFC 4122 text: 8-4-4-4-12 hex digits */
static bool ref_uuid_ok(const char *s)
{
        if (strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++)
                if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : !isxdigit((unsigned char) s[i]))
                        return false;
        return true;
}

static void check_params(const struct gpuh_vgpu_params *p)
{
        /* a number found or -1, never another negative; a resolution whole or absent */
        if (p->max_instances < -1 || p->video_ram_mib < -1 || p->max_heads < -1 || p->max_res_x < -1 ||
            p->max_res_y < -1 || (p->max_res_x < 0) != (p->max_res_y < 0))
                abort();
}

static void rm_type_dir(void)
{
        char path[PATH_MAX];
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        fz_printf(path, "%s/" PARENT "/mdev_supported_types", root);
        d = opendir(path);
        while (d && (de = readdir(d))) {
                char sub[PATH_MAX + 300];
                _cleanup_closedir_ DIR *t = NULL;
                struct dirent *f;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                fz_printf(sub, "%s/%s", path, de->d_name);
                t = opendir(sub);
                while (t && (f = readdir(t)))
                        if (!streq(f->d_name, ".") && !streq(f->d_name, ".."))
                                unlinkat(dirfd(t), f->d_name, 0);
                rmdir(sub);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fz_pieces in = { data, data + size, false };
        _cleanup_free_ char *type_id = NULL, *desc = NULL, *name = NULL, *avail = NULL, *api = NULL;
        struct gpuh_mdev_type *types = NULL;
        struct gpuh_warnings w = { 0 };
        struct gpuh_vgpu_params p;
        struct gpuh_pci_addr parent;
        size_t desc_len = 0;
        int n;

        if (root_fd < 0) {
                fz_printf(root, "%s/sys", fz_tmpdir());
                fz_mkdirs(fz_tmpdir(), "sys/" PARENT "/mdev_supported_types", true);
                root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (root_fd < 0)
                        abort();
        }
        type_id = fz_next(&in, NULL);
        desc = fz_next(&in, &desc_len);
        name = fz_next(&in, NULL);
        avail = fz_next(&in, NULL);
        api = fz_next(&in, NULL);

        if (gpuh_mdev_type_name_ok(type_id) != ref_type_name_ok(type_id))
                abort();
        if (gpuh_uuid_is_valid(type_id) != ref_uuid_ok(type_id))
                abort();

        gpuh_vgpu_params_parse(type_id, desc, &p);
        check_params(&p);
        gpuh_vgpu_params_parse(type_id, NULL, &p);
        check_params(&p);

        /* the same through the sysfs tree, when the type id can name a directory */
        if (!ref_type_name_ok(type_id))
                return 0;
        {
                char rel[PATH_MAX];

                fz_printf(rel, "sys/" PARENT "/mdev_supported_types/%s", type_id);
                fz_mkdirs(fz_tmpdir(), rel, true);
                fz_printf(rel, PARENT "/mdev_supported_types/%s/description", type_id);
                fz_write(root, rel, desc, desc_len);
                if (name) {
                        fz_printf(rel, PARENT "/mdev_supported_types/%s/name", type_id);
                        fz_write(root, rel, name, strlen(name));
                }
                if (avail) {
                        fz_printf(rel, PARENT "/mdev_supported_types/%s/available_instances", type_id);
                        fz_write(root, rel, avail, strlen(avail));
                }
                if (api) {
                        fz_printf(rel, PARENT "/mdev_supported_types/%s/device_api", type_id);
                        fz_write(root, rel, api, strlen(api));
                }
        }
        gpuh_pci_addr_parse("0000:08:00.4", &parent);
        n = gpuh_mdev_types_read(root_fd, &parent, NULL, 0, &w, &types);
        if (n < 0 && n != -ENOMEM)
                abort();
        for (int k = 0; k < n; k++) {
                if (!types[k].type_id || !streq(types[k].type_id, type_id))
                        abort();
                check_params(&types[k].params);
        }
        gpuh_mdev_types_free(types, n > 0 ? (size_t) n : 0);
        gpuh_warnings_clear(&w);
        rm_type_dir();
        return 0;
}
