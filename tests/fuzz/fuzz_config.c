/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_config: a configuration file through gpuh_config_load() (from a file in a private
 * directory, as the hooks read it). Checked: a refusal says why in one line naming the
 * file; a loaded configuration holds values in the documented ranges (config.h) and its
 * lookups answer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "pci_addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gpuh_config *c = NULL;
        char path[PATH_MAX], *err = NULL;
        struct gpuh_pci_addr a;
        int r;

        fz_write(fz_tmpdir(), "gpuhooks.json", data, size);
        fz_printf(path, "%s/gpuhooks.json", fz_tmpdir());
        r = gpuh_config_load(path, true, &c, &err);
        if (r < 0) {
                if (r != -ENOMEM && (!err || strchr(err, '\n') || !strstr(err, "gpuhooks.json"))) {
                        fprintf(stderr, "fuzz_config: error %d: %s\n", r, err ? err : "(none)");
                        abort();
                }
                if (c)
                        abort();
                free(err);
                return 0;
        }
        if (err || !c)
                abort();
        if (c->libvirt_timeout_ms < 1 || c->libvirt_timeout_ms > 60000 || c->write_timeout_ms < 100 ||
            c->write_timeout_ms > 600000 || c->lock_timeout_ms < 100 || c->lock_timeout_ms > 600000 ||
            c->reservation_ttl_s < 10 || c->reservation_ttl_s > 86400 ||
            c->nvidia_mdev_grace_ms < 0 || c->nvidia_mdev_grace_ms > 60000 ||
            c->reconcile_min_age_s < 0 || c->reconcile_min_age_s > 86400 || !c->on_start_method ||
            !c->on_stop_method || streq(c->on_start_method, c->on_stop_method))
                abort();
        /* every rule's requests are whole requests */
        for (size_t i = 0; i < c->n_rules; i++)
                for (size_t k = 0; k < c->rules[i].n_requests; k++)
                        if (gpuh_request_check(&c->rules[i].requests[k]))
                                abort();
        gpuh_config_keep_vfio(c, 0x10de, 0x2330);
        gpuh_config_is_extra_vendor(c, 0x1da3);
        gpuh_pci_addr_parse("0000:3d:00.0", &a);
        gpuh_config_excludes_passthrough(c, &a);
        gpuh_config_free(c);
        return 0;
}
