/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_transform: a domain XML through the whole transformer pipeline, gpuh_transform(), in
 * process, against the fixture host hpe-dl380g9-a2-vgpu (an A2 whose VFs carry mdev vGPU
 * types; its sys tree is built into the build directory, GPUH_FUZZ_HOST): requests, rules (a
 * configuration with one service-offering rule), CloudStack hostdevs, NUMA, selection, the
 * record, the output. Without libvirt: domain usage comes from the host's XML files. Inputs of
 * even length run with --explain (nothing reserved); odd ones reserve, and the reservation
 * is removed after the run, so every input sees the same state. Checked: success gives an
 * output that parses (or none: unchanged), failure one line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config.h"
#include "domxml.h"
#include "fuzz.h"
#include "transform.h"

#ifndef GPUH_FUZZ_HOST
#error "GPUH_FUZZ_HOST: the fixture host's directory"
#endif

static struct gpuh_config *cfg;
static char state[PATH_MAX], cache[PATH_MAX];
static char xml_run[PATH_MAX], xml_etc[PATH_MAX];
static char *xml_dirs[3];

static const char config_json[] =
        "{\"transformer\": {\"rules\": [{\"match\": {\"service_offering\": \"GPU-A2-*\"},"
        " \"requests\": [{\"mode\": \"mdev\", \"profile\": \"NVIDIA A2-4Q\", \"count\": 2}]}],"
        " \"reservation_ttl_s\": 600}}";

static void setup(void)
{
        const char *dir = fz_tmpdir();
        char path[PATH_MAX], *err = NULL;

        fz_write(dir, "gpuhooks.json", config_json, sizeof(config_json) - 1);
        fz_printf(path, "%s/gpuhooks.json", dir);
        if (gpuh_config_load(path, true, &cfg, &err) < 0) {
                fprintf(stderr, "fuzz_transform: %s\n", err ? err : "cannot load the configuration");
                abort();
        }
        fz_printf(state, "%s/state", dir);
        fz_printf(cache, "%s/cache", dir);
        fz_mkdirs(dir, "cache", true);
        fz_printf(xml_run, "%s/run/libvirt/qemu", GPUH_FUZZ_HOST);
        fz_printf(xml_etc, "%s/etc/libvirt/qemu", GPUH_FUZZ_HOST);
        xml_dirs[0] = xml_run;
        xml_dirs[1] = xml_etc;
}

static void clear_reservations(void)
{
        char path[PATH_MAX];
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        fz_printf(path, "%s/reservations", state);
        d = opendir(path);
        while (d && (de = readdir(d)))
                if (de->d_name[0] != '.' || (de->d_name[1] && (de->d_name[1] != '.' || de->d_name[2])))
                        unlinkat(dirfd(d), de->d_name, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct gpuh_transform_opts o = { 0 };
        struct gpuh_domxml *d = NULL;
        json_object *plan = NULL;
        char *out = NULL, *err = NULL, *perr = NULL;
        size_t out_len = 0;
        int r;

        if (!cfg)
                setup();
        o.host = (struct gpuh_host_opts) { .sysfs_root = GPUH_FUZZ_HOST "/sys", .cache_dir = cache, .no_libvirt = true,
                                           .xml_dirs = xml_dirs, .cfg = cfg };
        o.state_dir = state;
        o.explain = !(size & 1);
        o.lock_timeout_ms = 1000;

        r = gpuh_transform(&o, (const char *) data, size, &out, &out_len, o.explain ? &plan : NULL, &err);
        if (r < 0) {
                if (r != -ENOMEM && (!err || !*err || strchr(err, '\n'))) {
                        fprintf(stderr, "fuzz_transform: error %d without one line: %s\n", r, err ? err : "(none)");
                        abort();
                }
        } else if (out) {
                /* what the agent would start must be a document we read back */
                r = gpuh_domxml_parse(out, out_len, &d, &perr);
                if (r < 0 && r != -ENOMEM && !(r == -E2BIG && out_len > GPUH_DOMXML_MAX_BYTES)) {
                        fprintf(stderr, "fuzz_transform: the output does not parse: %s\n", perr ? perr : "?");
                        abort();
                }
                if (r == 0 && !d->has_record) {
                        fprintf(stderr, "fuzz_transform: the output has no allocation record\n");
                        abort();
                }
        }
        if (!o.explain)
                clear_reservations();
        json_object_put(plan);
        gpuh_domxml_free(d);
        free(out);
        free(err);
        free(perr);
        return 0;
}
