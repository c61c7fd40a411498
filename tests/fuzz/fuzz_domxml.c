/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_domxml: a domain XML through gpuh_domxml_parse(), and when it parses, through
 * gpuh_domxml_apply() (a passthrough GPU with a companion, an mdev, a vendor vGPU VF, and
 * CloudStack's own hostdevs when it has any) and gpuh_domxml_serialize(). Checked: the
 * output parses again, with the record just written; parse errors come with a one-line
 * reason; a document over the limit is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "alloc.h"
#include "domname.h"
#include "domxml.h"
#include "fuzz.h"

static void add_cloudstack(const struct gpuh_domxml *d, struct gpuh_alloc *a, size_t *n, size_t max)
{
        for (size_t i = 0; i < d->n_hostdevs && *n < max; i++) {
                struct gpuh_alloc *x = &a[(*n)++];

                *x = (struct gpuh_alloc) { .request = GPUH_ALLOC_REQUEST_CLOUDSTACK };
                if (d->hostdevs[i].is_mdev) {
                        x->kind = GPUH_ALLOC_MDEV;
                        memcpy(x->uuid, d->hostdevs[i].uuid, sizeof(x->uuid));
                        gpuh_pci_addr_parse("0000:08:00.4", &x->parent);
                        snprintf(x->mdev_type, sizeof(x->mdev_type), "nvidia-746");
                } else {
                        x->kind = GPUH_ALLOC_PCI;
                        x->addr = d->hostdevs[i].addr;
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gpuh_domxml *d = NULL, *again = NULL;
        struct gpuh_alloc a[12] = { 0 };
        char *err = NULL, *out = NULL, *err2 = NULL;
        size_t n = 0, out_len = 0;
        int r;

        r = gpuh_domxml_parse((const char *) data, size, &d, &err);
        if (r < 0) {
                /* every refusal but -ENOMEM says why, in one line */
                if (r != -ENOMEM && (!err || strchr(err, '\n')))
                        abort();
                if (size > GPUH_DOMXML_MAX_BYTES && r != -E2BIG)
                        abort();
                free(err);
                return 0;
        }
        if (err || !d->name || !gpuh_domname_ok(d->name))
                abort();

        a[n] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_PCI, .request = 0, .n_companions = 1 };
        gpuh_pci_addr_parse("0000:3b:00.0", &a[n].addr);
        gpuh_pci_addr_parse("0000:3b:00.1", &a[n].companions[0]);
        n++;
        a[n] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_MDEV, .request = 1, .mdev_new = true, .display = true };
        gpuh_pci_addr_parse("0000:08:00.4", &a[n].parent);
        snprintf(a[n].uuid, sizeof(a[n].uuid), "6c1b1e4a-54f2-4d6e-9a57-3f8e2d7c1b00");
        snprintf(a[n].mdev_type, sizeof(a[n].mdev_type), "nvidia-746");
        n++;
        a[n] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_VENDOR_VGPU, .request = 2, .vgpu_type = 1148 };
        gpuh_pci_addr_parse("0000:26:00.4", &a[n].addr);
        gpuh_pci_addr_parse("0000:25:00.0", &a[n].parent);
        n++;
        add_cloudstack(d, a, &n, sizeof(a) / sizeof(a[0]));

        r = gpuh_domxml_apply(d, a, n, size & 1);
        if (r == 0) {
                r = gpuh_domxml_serialize(d, &out, &out_len);
                if (r == 0) {
                        /* our own output must read back, carrying the record just written
                         * (unless it grew past the size limit) */
                        r = gpuh_domxml_parse(out, out_len, &again, &err2);
                        if (r < 0 && !(r == -E2BIG && out_len > GPUH_DOMXML_MAX_BYTES) && r != -ENOMEM) {
                                fprintf(stderr, "fuzz_domxml: the output does not parse again: %s\n", err2 ? err2 : "?");
                                abort();
                        }
                        if (r == 0 && (!again->has_record || again->n_record != n || !streq(again->name, d->name))) {
                                fprintf(stderr, "fuzz_domxml: the record read back has %zu devices, %zu written\n",
                                        again->n_record, n);
                                abort();
                        }
                } else if (r != -ENOMEM)
                        abort();
        } else if (r != -EBADMSG && r != -ENOMEM)
                abort();

        gpuh_domxml_free(again);
        gpuh_domxml_free(d);
        free(out);
        free(err2);
        return 0;
}
