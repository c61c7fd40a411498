/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_vendor_vgpu: NVIDIA's vendor-specific vGPU files of a VF: creatable_vgpu_types through
 * gpuh_vgpu_types_parse() and, with current_vgpu_type, through gpuh_vendor_vgpu_read() on a
 * private sysfs tree. Checked: the types come ordered by id, ids non-zero, names non-empty
 * without surrounding white space, each found by gpuh_vgpu_type_name().
 *
 * The input: creatable_vgpu_types, then after a NUL current_vgpu_type.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sysfs.h"
#include "vendor_vgpu.h"
#include "warn.h"

#define VF "bus/pci/devices/0000:26:00.4"

static int root_fd = -1;
static char root[PATH_MAX];

static void check_types(const struct gpuh_vgpu_type *t, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                size_t len = t[i].name ? strlen(t[i].name) : 0;

                if (t[i].id == 0 || len == 0 || isspace((unsigned char) t[i].name[0]) ||
                    isspace((unsigned char) t[i].name[len - 1]) || strchr(t[i].name, '\n') ||
                    (i > 0 && t[i - 1].id > t[i].id)) {
                        fprintf(stderr, "fuzz_vendor_vgpu: type %zu of %zu: id %u, name '%s'\n", i, n, t[i].id,
                                t[i].name ? t[i].name : "(null)");
                        abort();
                }
                if (!gpuh_vgpu_type_name(t, n, t[i].id))
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fz_pieces in = { data, data + size, false };
        _cleanup_free_ char *types = NULL, *current = NULL;
        struct gpuh_vgpu_type *t = NULL;
        struct gpuh_vendor_vgpu v = { 0 };
        struct gpuh_warnings w = { 0 };
        struct gpuh_pci_addr vf;
        size_t types_len = 0;
        int n;

        if (root_fd < 0) {
                fz_printf(root, "%s/sys", fz_tmpdir());
                fz_mkdirs(fz_tmpdir(), "sys/" VF "/nvidia", true);
                root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (root_fd < 0)
                        abort();
        }
        types = fz_next(&in, &types_len);
        current = fz_next(&in, NULL);

        n = gpuh_vgpu_types_parse(types, &t);
        if (n >= 0)
                check_types(t, (size_t) n);
        else if (n != -EBADMSG && n != -ENOMEM)
                abort();
        gpuh_vgpu_types_free(t, n > 0 ? (size_t) n : 0);

        fz_write(root, VF "/nvidia/creatable_vgpu_types", types, types_len);
        fz_write(root, VF "/nvidia/current_vgpu_type", current ? current : "0\n", current ? strlen(current) : 2);
        gpuh_pci_addr_parse("0000:26:00.4", &vf);
        n = gpuh_vendor_vgpu_read(root_fd, &vf, &w, &v);
        if (n == 1)
                check_types(v.creatable, v.n_creatable);
        else if (n != -ENOMEM)
                abort();
        gpuh_vendor_vgpu_clear(&v);
        gpuh_warnings_clear(&w);
        return 0;
}
