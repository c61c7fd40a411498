/* SPDX-License-Identifier: Apache-2.0 */
/* vendor_vgpu.c: reading NVIDIA's vendor-specific vGPU files on VFs. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "log.h"
#include "sysfs.h"
#include "vendor_vgpu.h"

void gpuh_vgpu_types_free(struct gpuh_vgpu_type *t, size_t n)
{
        if (!t)
                return;
        for (size_t i = 0; i < n; i++)
                free(t[i].name);
        free(t);
}

static int cmp_type(const void *a, const void *b)
{
        const struct gpuh_vgpu_type *x = a, *y = b;

        return x->id < y->id ? -1 : x->id > y->id;
}

int gpuh_vgpu_types_parse(const char *text, struct gpuh_vgpu_type **ret)
{
        _cleanup_free_ char *copy = NULL;
        struct gpuh_vgpu_type *t = NULL;
        size_t n = 0, cap = 0;
        char *save = NULL, *line;

        copy = strdup(text ? text : "");
        if (!copy)
                return -ENOMEM;
        for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *p = line, *end, *name, *e;
                unsigned long id;

                while (*p == ' ' || *p == '\t')
                        p++;
                if (!*p || strncmp(p, "ID", 2) == 0)
                        continue;       /* blank, or the "ID    : vGPU Name" header */
                if (!isdigit((unsigned char) *p))
                        goto bad;
                errno = 0;
                id = strtoul(p, &end, 10);
                if (errno || id == 0 || id > 0xffffffffUL)
                        goto bad;
                while (*end == ' ' || *end == '\t')
                        end++;
                if (*end != ':')
                        goto bad;
                name = end + 1;
                while (isspace((unsigned char) *name))  /* as at its end: "\f NVIDIA L40S-4Q" is that name */
                        name++;
                e = name + strlen(name);
                while (e > name && isspace((unsigned char) e[-1]))
                        *--e = '\0';
                if (!*name)
                        goto bad;
                if (n == cap) {
                        size_t ncap = cap * 2 + 16;
                        struct gpuh_vgpu_type *nt = reallocarray(t, ncap, sizeof(*t));
                        if (!nt) {
                                gpuh_vgpu_types_free(t, n);
                                return -ENOMEM;
                        }
                        t = nt;
                        cap = ncap;
                }
                t[n].id = (unsigned) id;
                t[n].name = strdup(name);
                if (!t[n].name) {
                        gpuh_vgpu_types_free(t, n);
                        return -ENOMEM;
                }
                n++;
        }
        if (n > 1)
                qsort(t, n, sizeof(*t), cmp_type);
        *ret = t;
        return (int) n;
bad:
        gpuh_vgpu_types_free(t, n);
        return -EBADMSG;
}

void gpuh_vendor_vgpu_clear(struct gpuh_vendor_vgpu *v)
{
        gpuh_vgpu_types_free(v->creatable, v->n_creatable);
        *v = (struct gpuh_vendor_vgpu) { 0 };
}

int gpuh_vendor_vgpu_read(int root_fd, const struct gpuh_pci_addr *vf, struct gpuh_warnings *w,
                          struct gpuh_vendor_vgpu *ret)
{
        _cleanup_close_ int fd = -EBADF;
        char name[GPUH_PCI_ADDR_MAX], rel[80], buf[16384];
        struct gpuh_vendor_vgpu v = { 0 };
        uint64_t cur;
        int r;

        gpuh_pci_addr_format(vf, name);
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/nvidia", name);
        fd = gpuh_sysfs_open_dir(root_fd, rel);
        if (fd < 0)
                return 0;
        /* Without current_vgpu_type this is not the vGPU interface. */
        r = gpuh_sysfs_read_u64(fd, "current_vgpu_type", &cur);
        if (r == -ENOENT)
                return 0;
        if (r < 0 || cur > 0xffffffffULL)
                gpuh_warn(w, "%s: nvidia/current_vgpu_type: %s", name,
                          r < 0 ? strerror(-r) : "out of range");
        else
                v.current_type = (unsigned) cur;
        /* The GPU instance a MIG-backed vGPU sits on: a number once a type is set; empty, or
         * ENXIO, on a free VF (research: cubecos#312 capture, harvester L40S testdata) */
        v.gpu_instance_id = -1;
        if (v.current_type != 0 && gpuh_sysfs_read_u64(fd, "gpu_instance_id", &cur) == 0 && cur <= INT32_MAX)
                v.gpu_instance_id = (int) cur;

        r = gpuh_sysfs_read(fd, "creatable_vgpu_types", buf, sizeof(buf));
        if (r >= 0) {
                r = gpuh_vgpu_types_parse(buf, &v.creatable);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        gpuh_warn(w, "%s: nvidia/creatable_vgpu_types: unparsable", name);
                else
                        v.n_creatable = (size_t) r;
        } else if (r != -ENOENT)
                gpuh_warn(w, "%s: nvidia/creatable_vgpu_types: %s", name, strerror(-r));
        *ret = v;
        return 1;
}

const char *gpuh_vgpu_type_name(const struct gpuh_vgpu_type *types, size_t n, unsigned id)
{
        for (size_t i = 0; i < n; i++)
                if (types[i].id == id)
                        return types[i].name;
        return NULL;
}

int64_t gpuh_vgpu_type_name_fb(const char *name)
{
        const char *s = name ? strrchr(name, '-') : NULL, *letters;
        int64_t gb = 0;

        if (!s || !isdigit((unsigned char) *++s))
                return -1;
        for (; isdigit((unsigned char) *s); s++) {
                gb = gb * 10 + (*s - '0');
                if (gb > (INT64_C(1) << 20))
                        return -1;      /* a petabyte vGPU: not a name of this kind */
        }
        for (letters = s; isupper((unsigned char) *s); s++)
                ;
        if (s == letters || s - letters > 4 || *s)
                return -1;
        return gb == 0 ? 512 : gb * 1024;
}

int gpuh_vendor_vgpu_set(struct gpuh_change *c, const struct gpuh_pci_addr *vf, unsigned type, char **reterr)
{
        struct gpuh_vendor_vgpu v;
        char name[GPUH_PCI_ADDR_MAX], rel[96], val[16];
        uint64_t cur, got;
        bool creatable;
        int vfd, r;

        gpuh_pci_addr_format(vf, name);
        r = gpuh_vendor_vgpu_read(c->root_fd, vf, NULL, &v);
        if (r < 0)
                return r;
        if (r == 0)
                return gpuh_error(reterr, -ENOENT, "%s has no NVIDIA vGPU interface (nvidia/current_vgpu_type)", name);
        creatable = gpuh_vgpu_type_name(v.creatable, v.n_creatable, type) != NULL;
        cur = v.current_type;
        gpuh_vendor_vgpu_clear(&v);
        if (cur == type)
                return 0;
        snprintf(rel, sizeof(rel), "nvidia/current_vgpu_type");
        vfd = gpuh_change_devfd(c, vf);
        if (vfd < 0)
                return gpuh_error(reterr, vfd, "%s: %s", name, strerror(-vfd));
        if (cur != 0) {
                r = gpuh_change_write(c, vfd, rel, "0");
                if (r == 0)
                        r = gpuh_change_wait_u64(c, vfd, rel, 0, &got);
                if (r < 0)
                        return gpuh_error(reterr, r, "%s: clearing vGPU type %llu: %s", name, (unsigned long long) cur,
                                          r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
                if (type != 0 && !c->dry_run) {
                        /* the creatable list answers for a free VF only: read it again */
                        r = gpuh_vendor_vgpu_read(c->root_fd, vf, NULL, &v);
                        if (r < 0)
                                return r;
                        creatable = gpuh_vgpu_type_name(v.creatable, v.n_creatable, type) != NULL;
                        gpuh_vendor_vgpu_clear(&v);
                } else if (type != 0)
                        creatable = true;       /* a dry run cannot know the list of a cleared VF */
        }
        if (type == 0)
                return 0;
        if (c->dry_run) {
                json_object *o = json_object_new_object();
                if (o) {
                        json_object_object_add(o, "step", json_object_new_string("check"));
                        char shown[128];
                        snprintf(val, sizeof(val), "%u", type);
                        json_object_object_add(o, "path", json_object_new_string(gpuh_change_path(c, vfd, rel, shown,
                                                                                                  sizeof(shown))));
                        json_object_object_add(o, "what", json_object_new_string("creatable_vgpu_types lists the type"));
                        json_object_object_add(o, "type", json_object_new_int64(type));
                        json_object_object_add(o, "ok", json_object_new_boolean(creatable));
                }
                gpuh_change_step(c, o);
        }
        if (!creatable)
                return gpuh_error(reterr, -ENOSPC, "%s: vGPU type %u is not in its creatable_vgpu_types now", name, type);
        snprintf(val, sizeof(val), "%u", type);
        r = gpuh_change_write(c, vfd, rel, val);
        if (r < 0)
                return gpuh_error(reterr, r, "%s: setting vGPU type %u: %s", name, type,
                                  r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
        r = gpuh_change_wait_u64(c, vfd, rel, type, &got);
        if (r < 0)
                return gpuh_error(reterr, -EIO, "%s: vGPU type reads %s after setting %u", name,
                                  r == -ETIMEDOUT ? "another value" : strerror(-r), type);
        return 0;
}
