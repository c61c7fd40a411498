/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gpudiscovery: print the host's GPU inventory as the JSON CloudStack's KVM agent parses
 * (a drop-in for CloudStack's scripts/vm/hypervisor/kvm/gpudiscovery.sh), or as a table.
 *
 * The agent runs it with no arguments, a 30 s timeout and stderr merged into stdout: in that
 * mode nothing but the document is printed, and it exits 0 with whatever could be read.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "cli.h"
#include "config.h"
#include "inventory.h"
#include "inventory_json.h"
#include "inventory_table.h"
#include "layout.h"
#include "log.h"
#include "pci_names.h"
#include "reserve.h"
#include "sysfs.h"
#include "host.h"
#include "vgpu_names.h"

enum { OPT_FORMAT = GPUH_OPT_TOOL, OPT_PCI_IDS, OPT_CACHE_DIR, OPT_CHECK, OPT_ROOT, OPT_GPU, OPT_FREE };

/* The one list of options: getopt, --help and the man page are all made from it. */
static const struct gpuh_option options[] = {
        { { "format", required_argument, NULL, OPT_FORMAT }, "FMT",
          "json (default: one line, for the CloudStack agent), pretty, or table (--check: text); "
          "given as json, a failure is one JSON object on stdout", false },
        { { "check", no_argument, NULL, OPT_CHECK }, NULL,
          "say whether this host is fit for GPU passthrough and vGPU with gpuhooks, one line per finding", false },
        { { "gpu", required_argument, NULL, OPT_GPU }, "ADDR",
          "--format table: only the GPU at ADDR (its PCI address, BB:SS.F or DDDD:BB:SS.F, or one of its VFs')", false },
        { { "free", no_argument, NULL, OPT_FREE }, NULL,
          "--format table: only what can still be given (GPUs with room, free VFs and vGPUs, profiles with room)", false },
        { { "root", required_argument, NULL, OPT_ROOT }, "DIR",
          "--check: look for the installed hooks and agent.properties under DIR (default /)", false },
        GPUH_OPTION_SYSFS_ROOT,
        GPUH_OPTION_CONNECT("libvirt URI asked which domain uses which device"),
        GPUH_OPTION_NO_LIBVIRT,
        GPUH_OPTION_DOMAIN_XML_DIR,
        GPUH_OPTION_CONFIG,
        { { "state-dir", required_argument, NULL, GPUH_OPT_STATE_DIR }, "DIR",
          "remember NVIDIA vGPU type names in DIR/" GPUH_VGPU_NAMES_FILE ", to name a type no list names any "
          "more (default " GPUH_STATE_DIR_DEFAULT ", not created; empty: none; env GPUHOOKS_STATE_DIR)", false },
        { { "pci-ids", required_argument, NULL, OPT_PCI_IDS }, "FILE",
          "name devices from this pci.ids only (env GPUHOOKS_PCI_IDS)", false },
        { { "cache-dir", required_argument, NULL, OPT_CACHE_DIR }, "DIR",
          "keep libpci's device names in DIR/" GPUH_PCI_NAMES_CACHE_FILE " (default " GPUH_PCI_NAMES_CACHE_DIR
          "; empty: no cache; env GPUHOOKS_CACHE_DIR)", false },
        GPUH_OPTION_NVML_LIB,
        GPUH_OPTION_VERBOSE,
        GPUH_OPTION_HELP,
};

static const char *const synopsis[] = { "[OPTION]...", "--check [--format text|json] [OPTION]...", NULL };

static const struct gpuh_tool tool = {
        .name = "gpudiscovery",
        .summary = "print the GPU inventory of this host for the CloudStack KVM agent",
        .synopsis = synopsis,
        .description =
                "Prints the GPUs of this host, their SR-IOV VFs, mdev vGPU types and instances, NVIDIA\n"
                "vendor-specific vGPU VFs, IOMMU groups, NUMA nodes and the libvirt domains using them, as\n"
                "the JSON document CloudStack's KVM agent parses. It is a drop-in for CloudStack's\n"
                "gpudiscovery.sh: the agent runs it with no arguments, a 30 s timeout and stderr merged into\n"
                "stdout, so nothing but the document is printed unless -v is given.\n"
                "\n"
                "sysfs is read directly, device names come from libpci (pci.ids, udev hwdb), and which domain\n"
                "uses which device is asked of libvirt once, in a child process with a deadline; when libvirt\n"
                "cannot answer, or with --no-libvirt, the domain XML files libvirt keeps are read instead.\n"
                "Fields the agent reads keep the original script's names and types; gpuhooks' additions live\n"
                "in objects named gpuhooks (docs/inventory.md, schemas/gpu-inventory.schema.json).\n"
                "\n"
                "With --check it says instead whether the host is fit, one line per finding (ok, info, warn,\n"
                "fail): the IOMMU on and devices in groups, interrupt remapping, vfio-pci loaded, GPUs on\n"
                "nouveau, driving the console or sharing their IOMMU group with foreign devices, vGPU\n"
                "support, and the agent hooks, the libvirt qemu.d hook and the agent's gpudiscovery.sh\n"
                "installed where the agent (its agent.properties) and libvirtd look.",
        .options = options,
        .n_options = ARRAY_SIZE(options),
        .exit_status = "0 with whatever could be read (a vanished device or an unreadable attribute costs that\n"
                       "field and adds a warning to the document; an unusable configuration file, its settings:\n"
                       "the defaults are used and the first warning says why); 1 when the sysfs root cannot be\n"
                       "read; 2 for a bad option. Given --format json, a failure is one JSON object on stdout,\n"
                       "{\"error\": LINE, \"errno\": N or null, \"device\": ADDRESS or null}, instead of\n"
                       "a line on stderr. With --check: 0 when the host is ready (no finding failed, an\n"
                       "unusable configuration file fails), 1 when it is not.",
        .environment = "GPUHOOKS_CONFIG\tthe configuration file\n"
                       "GPUHOOKS_SYSFS_ROOT\tsysfs instead of /sys\n"
                       "GPUHOOKS_DOMAIN_XML_DIRS\tlibvirt's domain XML directories, colon-separated\n"
                       "GPUHOOKS_PCI_IDS\tthe pci.ids file to name devices from\n"
                       "GPUHOOKS_CACHE_DIR\twhere device names are cached\n"
                       "GPUHOOKS_STATE_DIR\twhere vGPU type names are remembered\n"
                       "GPUHOOKS_NVML_LIB\tNVIDIA's management library (libnvidia-ml.so.1)\n"
                       "LIBVIRT_DEFAULT_URI\tlibvirt's connection URI",
        .files = GPUH_CONFIG_DEFAULT_PATH "\tthe configuration (JSON; schemas/gpuhooks-config.schema.json)\n"
                 GPUH_PCI_NAMES_CACHE_DIR "/" GPUH_PCI_NAMES_CACHE_FILE "\tdevice names cached from libpci\n"
                 GPUH_STATE_DIR_DEFAULT "/" GPUH_VGPU_NAMES_FILE "\tNVIDIA vGPU type names seen in creatable_vgpu_types\n"
                 "/usr/share/cloudstack-common/scripts/vm/hypervisor/kvm/gpudiscovery.sh\twhere the agent looks for it",
        .see_also = "libvirt-vm-xml-transformer(1), libvirt-vm-state-change(1)",
};

struct args {
        const char *format;
        const char *pci_ids;
        const char *cache_dir;
        const char *root;
        bool check;
        bool free_only;
        bool has_gpu;
        struct gpuh_pci_addr gpu;
};

static int own_option(int opt, const char *arg, void *data)
{
        struct args *a = data;

        switch (opt) {
        case OPT_CHECK:
                a->check = true;
                return -1;
        case OPT_ROOT:
                a->root = arg;
                return -1;
        case OPT_GPU:
                if (gpuh_pci_addr_parse(arg, &a->gpu) < 0)
                        return gpuh_cli_usage_error(tool.name, "'%s' is not a PCI address", arg);
                a->has_gpu = true;
                return -1;
        case OPT_FREE:
                a->free_only = true;
                return -1;
        case OPT_FORMAT:
                if (!streq(arg, "json") && !streq(arg, "pretty") && !streq(arg, "table") && !streq(arg, "text"))
                        return gpuh_cli_usage_error(tool.name, "unknown format '%s'", arg);
                a->format = arg;
                return -1;
        case OPT_PCI_IDS:
                a->pci_ids = arg;
                return -1;
        case OPT_CACHE_DIR:
                a->cache_dir = arg;
                return -1;
        default:
                return gpuh_cli_usage_error(tool.name, "unknown option");
        }
}

/* --check: the findings as text lines or JSON; exit 0 when ready, 1 when not. */
static int check(struct gpuh_host *host, const struct gpuh_config *cfg, const char *cfg_err, const struct args *a)
{
        struct gpuh_findings f;
        bool ready;
        int r;

        r = gpuh_check_host(&(struct gpuh_check_opts) { .sysfs_fd = host->sysfs->root_fd, .root = a->root, .cfg = cfg,
                                                        .config_error = cfg_err },
                            host->inv, &f);
        if (r < 0)
                return log_oom();
        ready = gpuh_check_ready(&f);
        if (streq(a->format, "json") || streq(a->format, "pretty")) {
                json_object *doc = gpuh_findings_to_json(&f);
                r = doc ? gpuh_json_print(doc, streq(a->format, "pretty")) : -ENOMEM;
                json_object_put(doc);
        } else {
                size_t failed = 0;
                for (size_t i = 0; i < f.n; i++) {
                        printf("%-4s  %-22s %-13s %s\n", gpuh_check_status_to_string(f.v[i].status), f.v[i].check,
                               f.v[i].device ? f.v[i].device : "-", f.v[i].message);
                        failed += f.v[i].status == GPUH_CHECK_FAIL;
                }
                if (ready)
                        printf("ready: this host can run GPU domains with gpuhooks\n");
                else
                        printf("not ready: %zu check%s failed\n", failed, failed > 1 ? "s" : "");
                r = fflush(stdout) == EOF ? -EIO : 0;
        }
        gpuh_findings_clear(&f);
        if (r < 0)
                return gpuh_cli_fail(tool.name, r, "cannot write the output", NULL);
        return ready ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* The host scanned: its GPUs, and which domains use them. Returns 0 or the exit status. */
static int scan(const struct gpuh_cli_common *c, const struct args *a, const struct gpuh_config *cfg,
                struct gpuh_host **host)
{
        _cleanup_free_ char *err = NULL;
        int r;

        r = gpuh_host_scan(&(struct gpuh_host_opts) {
                        .sysfs_root = c->sysfs_root, .pci_ids = a->pci_ids ? a->pci_ids : c->pci_ids,
                        .cache_dir = a->cache_dir ? a->cache_dir : c->cache_dir, .connect = c->connect,
                        .no_libvirt = c->no_libvirt, .xml_dirs = c->xml_dirs, .xml_dirs_env = c->xml_dirs_env, .cfg = cfg,
                        .nvml_lib = c->nvml_lib,
                }, host, &err);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return gpuh_cli_fail(tool.name, r, err, NULL);
        return 0;
}

/* What the configuration and the state directory @state_dir add to the scanned inventory: the
 * configuration's error, vGPU type names, the quarantine, claims, layouts (*@layouts, which
 * the inventory borrows). Returns 0 or the exit status. */
static int annotate(struct gpuh_host *host, const struct gpuh_config *cfg, const char *cfg_err, const char *state_dir,
                    struct gpuh_layouts **layouts)
{
        int r;

        if (cfg_err) {
                /* first in the list: it explains much of what follows */
                struct gpuh_warnings w = { 0 };

                gpuh_warn(&w, "%s; the defaults are used", cfg_err);
                if (gpuh_warnings_move(&w, &host->inv->warnings) < 0) {
                        gpuh_warnings_clear(&w);
                        return log_oom();
                }
                host->inv->warnings = w;
        }

        /* A VF whose type no list on the host names any more (a full GPU) is named from
         * what earlier runs saw; what the lists show now is remembered. */
        if (gpuh_vgpu_names_update(host->inv, state_dir) == -ENOMEM)
                return log_oom();
        /* functions the state-change hook quarantined: shown, and failed by --check */
        r = gpuh_quarantine_load(state_dir, &host->inv->quarantined, &host->inv->n_quarantined);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                gpuh_warn(&host->inv->warnings, "cannot read the quarantine in '%s/quarantine': %s", state_dir,
                          strerror(-r));
        /* what reservations and journals hold is in use, as what libvirt's domains hold */
        if (gpuh_claims_load(state_dir, (int64_t) time(NULL), &host->inv->claims, &host->inv->n_claims,
                             &host->inv->warnings) == -ENOMEM)
                return log_oom();

        /* vGPU layouts: their slots are advertised; one that cannot fit says why */
        if (gpuh_layouts_resolve(host->inv, cfg, layouts) < 0)
                return log_oom();
        for (size_t i = 0; i < (*layouts)->n; i++) {
                if ((*layouts)->v[i].why)
                        gpuh_warn(&host->inv->warnings, "%s", (*layouts)->v[i].why);
                for (size_t k = 0; k < (*layouts)->v[i].n_notes; k++)
                        gpuh_warn(&host->inv->warnings, "%s", (*layouts)->v[i].notes[k]);
        }
        host->inv->layouts = *layouts;
        return 0;
}

/* The inventory as a table (--gpu, --free) or JSON. Returns the exit status. */
static int print_inventory(struct gpuh_host *host, const struct args *a)
{
        int r;

        if (a->has_gpu) {
                bool found = false;
                for (size_t i = 0; i < host->inv->n_gpus && !found; i++)
                        found = gpuh_gpu_matches(&host->inv->gpus[i], &a->gpu);
                if (!found) {
                        char s[GPUH_PCI_ADDR_MAX];
                        fprintf(stderr, "gpudiscovery: no GPU at %s\n", gpuh_pci_addr_format(&a->gpu, s));
                        return EXIT_FAILURE;
                }
        }
        if (streq(a->format, "table") || streq(a->format, "text"))
                r = gpuh_inventory_print_table(host->inv, &(struct gpuh_table_filter) {
                                .gpu = a->has_gpu ? &a->gpu : NULL, .free_only = a->free_only }, stdout);
        else {
                json_object *doc = NULL;
                r = gpuh_inventory_to_json(host->inv, gpuh_host_threads(), &doc);
                if (r == -ENOMEM)
                        return log_oom();
                r = gpuh_json_print(doc, streq(a->format, "pretty"));
                json_object_put(doc);
        }
        if (r < 0)
                return gpuh_cli_fail(tool.name, r, "cannot write the output", NULL);
        return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
        struct args a = { .format = NULL };
        struct gpuh_cli_common c = { 0 };
        _cleanup_free_ char **xml_dirs_arg = NULL;
        _cleanup_(gpuh_config_freep) struct gpuh_config *cfg = NULL;
        _cleanup_(gpuh_host_freep) struct gpuh_host *host = NULL;
        _cleanup_(gpuh_layouts_freep) struct gpuh_layouts *layouts = NULL;
        _cleanup_free_ char *cfg_err = NULL;
        const char *cfg_path;
        int r, first;

        r = gpuh_cli_parse(&tool, argc, argv, false, &c, own_option, &a, &first);
        xml_dirs_arg = c.xml_dirs;
        if (r >= 0)
                return r;
        if (first < argc)
                return gpuh_cli_usage_error(tool.name, "unexpected argument '%s'", argv[first]);
        if (!a.format)
                a.format = a.check ? "text" : "json";
        if (a.root && !a.check)
                return gpuh_cli_usage_error(tool.name, "--root goes with --check");
        if ((a.has_gpu || a.free_only) && (a.check || !streq(a.format, "table")))
                return gpuh_cli_usage_error(tool.name, "--gpu and --free go with --format table");
        gpuh_log_setup(tool.name, c.verbose ? GPUH_LOG_STDERR : GPUH_LOG_SYSLOG, c.verbose ? LOG_DEBUG : LOG_WARNING);

        /* A broken configuration: the inventory from the defaults, the error among its
         * warnings (the agent must not lose every GPU of the host over a typo). */
        cfg_path = gpuh_cli_config_path(&c);
        r = gpuh_config_load_or_default(cfg_path, cfg_path != NULL, &cfg, &cfg_err);
        if (r < 0)
                return log_oom();
        if ((r = scan(&c, &a, cfg, &host)) != 0 ||
            (r = annotate(host, cfg, cfg_err, c.state_dir ? c.state_dir : GPUH_STATE_DIR_DEFAULT, &layouts)) != 0)
                return r;
        if (a.check)
                return check(host, cfg, cfg_err, &a);
        return print_inventory(host, &a);
}
