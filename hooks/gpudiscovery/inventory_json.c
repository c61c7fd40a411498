/* SPDX-License-Identifier: Apache-2.0 */
/* inventory_json.c: building the inventory document with json-c: the agent's GPU objects, by a
 * pool of threads, and the host's gpuhooks object. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "inventory_json.h"
#include "inventory_json_internal.h"

static json_object *gpu(struct builder *b, struct gpuh_inventory *inv, struct gpuh_gpu *g)
{
        const struct gpuh_pci_dev *d = g->dev;
        json_object *o = chk(b, json_object_new_object()), *fp, *arr, *first, *used;
        struct users us;
        char a[GPUH_PCI_ADDR_MAX];

        add(b, o, "pci_address", str(b, gpuh_pci_addr_format_agent(&d->addr, a)));
        add(b, o, "vendor_id", strf(b, "%04x", d->vendor_id));
        add(b, o, "device_id", strf(b, "%04x", d->device_id));
        add(b, o, "vendor", str(b, g->vendor_name));
        add(b, o, "device", str(b, g->device_name));
        add(b, o, "driver", str(b, d->driver));
        add(b, o, "pci_class", strf(b, "%s [%04x]", g->class_name, (unsigned) (d->class_code >> 8)));
        add(b, o, "iommu_group", d->iommu_group < 0 ? NULL : strf(b, "%d", d->iommu_group));
        add(b, o, "pci_root", d->has_root_port ? str(b, gpuh_pci_addr_format(&d->root_port, a)) :
                              str(b, d->name));
        add(b, o, "numa_node", chk(b, json_object_new_int(d->numa_node)));
        add(b, o, "sriov_totalvfs", chk(b, json_object_new_int(d->sriov_totalvfs)));
        add(b, o, "sriov_numvfs", chk(b, json_object_new_int(d->sriov_numvfs)));
        vgpu_numbers(b, o, NULL);

        fp = chk(b, json_object_new_object());
        add(b, fp, "enabled", chk(b, json_object_new_int(g->blockers == 0)));
        add(b, fp, "libvirt_address", libvirt_address(b, &d->addr));
        ij_users_lookup(b, inv, &d->addr, NULL, &us);
        used = ij_users_json(b, inv, &us, &d->addr, NULL, &first);
        add(b, fp, "used_by_vm", first);
        add(b, o, "full_passthrough", fp);

        arr = chk(b, json_object_new_array());
        for (size_t i = 0; i < g->n_vgpus; i++)
                push(b, arr, ij_vgpu_instance(b, inv, &g->vgpus[i]));
        {
                const struct gpuh_gpu_layout *gl = gpuh_layouts_of(inv->layouts, g);
                for (size_t i = 0; gl && gl->kind != GPUH_LAYOUT_VENDOR_VF && i < gl->n_slots; i++)
                        if (!gl->slots[i].exists)
                                push(b, arr, ij_vgpu_on_demand(b, inv, g, gl, &gl->slots[i]));
        }
        add(b, o, "vgpu_instances", arr);
        arr = chk(b, json_object_new_array());
        {
                struct vf_shared sh = { 0 };
                for (size_t i = 0; i < g->n_vfs; i++)
                        push(b, arr, ij_vf_instance(b, inv, &g->vfs[i], &sh));
                ij_vf_shared_clear(&sh);
        }
        add(b, o, "vf_instances", arr);
        add(b, o, "gpuhooks", ij_gpu_ext(b, inv, g, used));
        return o;
}

/* GPU objects are built by a pool of threads, each with its own builder, into their slots. */
struct pool {
        struct gpuh_inventory *inv;
        json_object **objs;
        atomic_size_t next;
        atomic_bool oom;
};

static void *build_worker(void *arg)
{
        struct pool *p = arg;
        struct builder b = { 0 };
        size_t i;

        while ((i = atomic_fetch_add(&p->next, 1)) < p->inv->n_gpus)
                p->objs[i] = gpu(&b, p->inv, &p->inv->gpus[i]);
        for (size_t k = 0; k < SHARED_INTS; k++)
                json_object_put(b.ints[k]);
        if (b.oom)
                atomic_store(&p->oom, true);
        return NULL;
}

int gpuh_inventory_to_json(struct gpuh_inventory *inv, unsigned max_threads, json_object **ret)
{
        struct builder b = { 0 };
        struct pool p = { .inv = inv };
        pthread_t tids[8];
        size_t started = 0, want = max_threads > 1 ? max_threads - 1 : 0;
        json_object *root, *gpus, *ext, *warn;

        if (inv->usage)
                gpuh_vm_usage_seal(inv->usage);         /* lookups from several threads */
        p.objs = calloc(inv->n_gpus + 1, sizeof(*p.objs));
        if (!p.objs)
                return -ENOMEM;
        atomic_init(&p.next, 0);
        atomic_init(&p.oom, false);
        if (want > ARRAY_SIZE(tids))
                want = ARRAY_SIZE(tids);
        if (want + 1 > inv->n_gpus)
                want = inv->n_gpus > 0 ? inv->n_gpus - 1 : 0;
        for (; started < want; started++)
                if (pthread_create(&tids[started], NULL, build_worker, &p) != 0)
                        break;
        build_worker(&p);
        for (size_t t = 0; t < started; t++)
                pthread_join(tids[t], NULL);
        b.oom = atomic_load(&p.oom);

        root = chk(&b, json_object_new_object());
        gpus = chk(&b, json_object_new_array());
        for (size_t i = 0; i < inv->n_gpus; i++) {
                if (!p.objs[i])
                        b.oom = true;
                push(&b, gpus, p.objs[i]);
        }
        free(p.objs);
        add(&b, root, "gpus", gpus);

        ext = chk(&b, json_object_new_object());
        add(&b, ext, "version", str(&b, GPUH_VERSION));
        add(&b, ext, "vm_usage", str(&b, gpuh_vm_source_to_string(
                        inv->usage ? gpuh_vm_usage_source(inv->usage) : GPUH_VM_SOURCE_NONE)));
        add(&b, ext, "iommu", chk(&b, json_object_new_boolean(inv->iommu)));
        warn = chk(&b, json_object_new_array());
        for (size_t i = 0; i < inv->warnings.n; i++)
                push(&b, warn, str(&b, inv->warnings.v[i]));
        add(&b, ext, "warnings", warn);
        add(&b, root, "gpuhooks", ext);

        for (size_t i = 0; i < SHARED_INTS; i++)
                json_object_put(b.ints[i]);
        if (b.oom) {
                json_object_put(root);
                return -ENOMEM;
        }
        *ret = root;
        return 0;
}

int gpuh_json_print(json_object *o, int pretty)
{
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
                    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN);
        const char *s = json_object_to_json_string_ext(o, flags);

        if (!s || fputs(s, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) == EOF)
                return -EIO;
        return 0;
}

