/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gpuhooksctl: the operator's view of gpuhooks on one host, and the few actions an operator
 * needs: every GPU device's state and remaining capacity, the reservations and journals in the
 * state directory, releasing one stuck domain's devices, reconcile, a prepare's dry run, the
 * fitness check.
 *
 *   gpuhooksctl [OPTION]... status | reservations | journals | release VM | reconcile |
 *                           plan VM.xml | check
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "ctl.h"
#include "log.h"
#include "statechange.h"
#include "vm_usage.h"

enum { OPT_FORMAT = GPUH_OPT_TOOL, OPT_GPU, OPT_FREE, OPT_MIN_AGE, OPT_DEV_DIR, OPT_PROC_ROOT, OPT_PCI_IDS, OPT_ROOT };

/* The one list of options: getopt, --help and the man page are all made from it. */
static const struct gpuh_option options[] = {
        { { "format", required_argument, NULL, OPT_FORMAT }, "FMT", "table (default) or json, for every verb", false },
        { { "gpu", required_argument, NULL, OPT_GPU }, "ADDR",
          "status: only the GPU at ADDR (BB:SS.F or DDDD:BB:SS.F, or one of its VFs')", false },
        { { "free", no_argument, NULL, OPT_FREE }, NULL, "status: only free devices and profiles with room", false },
        { { "min-age", required_argument, NULL, OPT_MIN_AGE }, "SECONDS",
          "reconcile: leave younger journals alone (default: config state_change.reconcile_min_age_s)", false },
        GPUH_OPTION_CONFIG,
        GPUH_OPTION_SYSFS_ROOT,
        GPUH_OPTION_STATE_DIR,
        { { "dev-dir", required_argument, NULL, OPT_DEV_DIR }, "DIR",
          "device nodes, to find the processes holding a device (default /dev; env GPUHOOKS_DEV_DIR)", false },
        { { "proc-root", required_argument, NULL, OPT_PROC_ROOT }, "DIR",
          "procfs, to find the processes holding a device (default /proc; env GPUHOOKS_PROC_ROOT)", false },
        GPUH_OPTION_CONNECT("libvirt URI asked which domain uses which device"),
        GPUH_OPTION_NO_LIBVIRT,
        GPUH_OPTION_DOMAIN_XML_DIR,
        GPUH_OPTION_NVML_LIB,
        { { "pci-ids", required_argument, NULL, OPT_PCI_IDS }, "FILE",
          "name devices from this pci.ids only (env GPUHOOKS_PCI_IDS)", false },
        { { "root", required_argument, NULL, OPT_ROOT }, "DIR",
          "check: look for the installed hooks and agent.properties under DIR (default /)", false },
        GPUH_OPTION_VERBOSE,
        GPUH_OPTION_HELP,
};

static const char *const synopsis[] = {
        "[OPTION]... status [--gpu ADDR] [--free]",
        "[OPTION]... reservations | journals",
        "[OPTION]... release VMNAME",
        "[OPTION]... reconcile [--min-age SECONDS]",
        "[OPTION]... plan DOMAIN.xml",
        "[OPTION]... check",
        NULL,
};

static const struct gpuh_tool tool = {
        .name = PROG,
        .summary = "show and manage the GPU devices gpuhooks hands to domains on this host",
        .synopsis = synopsis,
        .description =
                "The operator's command for gpuhooks. Options and the verb may come in any order.\n"
                "\n"
                "status lists every GPU, VF and mdev (vGPU) with its state: free, reserved by a domain until\n"
                "a time (or running), in use by a domain, journaled (a domain's journal names it and the\n"
                "domain does not run: a release that did not happen), carved (an mdev or a vendor vGPU type that exists and\n"
                "no domain uses), shared (a GPU split into VFs or vGPUs, a VF carrying a vGPU), blocked (not\n"
                "offered for passthrough), driverless, quarantined; then per GPU and profile the instances in\n"
                "use and how many more fit now (framebuffer, maximum instances, free VFs, the vGPU mode;\n"
                "live reservations count as taken).\n"
                "\n"
                "reservations and journals list what the state directory holds, with ages and owners.\n"
                "\n"
                "release VMNAME puts back one domain's devices exactly as libvirt's release would (its journal\n"
                "replayed in reverse, its reservation freed), and refuses, changing nothing, while a process\n"
                "(its QEMU) holds the vfio group of any device its journal or reservation names.\n"
                "\n"
                "reconcile releases every domain that no longer runs (as libvirt-vm-state-change reconcile);\n"
                "plan DOMAIN.xml prints what prepare would do for that domain XML, changing nothing (the\n"
                "dry run); check says whether the host is fit (as gpudiscovery --check).\n"
                "\n"
                "--format json prints one JSON document for every verb (docs/gpuhooksctl.md).",
        .options = options,
        .n_options = ARRAY_SIZE(options),
        .exit_status = "0; 1 when the verb failed (release refused or failed, a plan refused, check: the host is\n"
                       "not ready), with one line on stderr; 2 for bad arguments.",
        .environment = "GPUHOOKS_CONFIG\tthe configuration file\n"
                       "GPUHOOKS_SYSFS_ROOT\tsysfs instead of /sys\n"
                       "GPUHOOKS_STATE_DIR\tthe state directory\n"
                       "GPUHOOKS_DEV_DIR\tdevice nodes instead of /dev\n"
                       "GPUHOOKS_PROC_ROOT\tprocfs instead of /proc\n"
                       "GPUHOOKS_DOMAIN_XML_DIRS\tlibvirt's domain XML directories, colon-separated\n"
                       "GPUHOOKS_PCI_IDS\tthe pci.ids file to name devices from\n"
                       "GPUHOOKS_NVML_LIB\tNVIDIA's management library (libnvidia-ml.so.1)\n"
                       "LIBVIRT_DEFAULT_URI\tlibvirt's connection URI",
        .files = GPUH_CONFIG_DEFAULT_PATH "\tthe configuration\n"
                 GPUH_STATE_DIR_DEFAULT "/reservations/DOMAIN.json\twhat each domain holds\n"
                 GPUH_STATE_DIR_DEFAULT "/journal/DOMAIN.journal\tthe changes made for a domain\n"
                 GPUH_STATE_DIR_DEFAULT "/quarantine/ADDRESS.json\tfunctions kept from every domain",
        .see_also = "gpudiscovery(1), libvirt-vm-state-change(1), libvirt-vm-xml-transformer(1)",
};

static int own_option(int opt, const char *arg, void *data)
{
        struct args *a = data;
        char *end;
        long v;

        switch (opt) {
        case OPT_FORMAT:
                if (!streq(arg, "table") && !streq(arg, "json"))
                        return gpuh_cli_usage_error(PROG, "unknown format '%s' (table or json)", arg);
                a->json = streq(arg, "json");
                return -1;
        case OPT_GPU:
                if (gpuh_pci_addr_parse(arg, &a->gpu) < 0)
                        return gpuh_cli_usage_error(PROG, "'%s' is not a PCI address", arg);
                a->has_gpu = true;
                return -1;
        case OPT_FREE:
                a->free_only = true;
                return -1;
        case OPT_MIN_AGE:
                errno = 0;
                v = strtol(arg, &end, 10);
                if (errno || *end || end == arg || v < 0 || v > 86400)
                        return gpuh_cli_usage_error(PROG, "--min-age needs seconds from 0 to 86400");
                a->min_age = (int) v;
                return -1;
        case OPT_DEV_DIR:
                a->dev_dir = arg;
                return -1;
        case OPT_PROC_ROOT:
                a->proc_root = arg;
                return -1;
        case OPT_PCI_IDS:
                a->pci_ids = arg;
                return -1;
        case OPT_ROOT:
                a->root = arg;
                return -1;
        default:
                return gpuh_cli_usage_error(PROG, "unknown option");
        }
}

static const char *or_default(const char *given, const char *def)
{
        return given && *given ? given : def;
}

/* ---- main -------------------------------------------------------------------------------------- */

static const struct verb {
        const char *name;
        int n_args;
        const char *usage;
} verbs[] = {
        { "status", 0, "status" },
        { "reservations", 0, "reservations" },
        { "journals", 0, "journals" },
        { "release", 1, "release VMNAME" },
        { "reconcile", 0, "reconcile" },
        { "plan", 1, "plan DOMAIN.xml" },
        { "check", 0, "check" },
};

int main(int argc, char **argv)
{
        struct ctl x = { .a = { .min_age = -1 } };
        _cleanup_free_ char **xml_dirs = NULL;
        _cleanup_(gpuh_config_freep) struct gpuh_config *cfg = NULL;
        _cleanup_free_ char *cfg_err = NULL;
        _cleanup_strv_free_ char **env_dirs = NULL;
        const struct verb *verb = NULL;
        const char *cfg_path;
        char *const *dirs;
        int r, first;

        /* options and the verb in any order (getopt permutes), as getopt users expect */
        r = gpuh_cli_parse(&tool, argc, argv, false, &x.c, own_option, &x.a, &first);
        xml_dirs = x.c.xml_dirs;
        if (r >= 0)
                return r;
        if (first >= argc)
                return gpuh_cli_usage_error(PROG, "a verb is needed: status, reservations, journals, release, "
                                                  "reconcile, plan or check");
        for (size_t i = 0; i < ARRAY_SIZE(verbs) && !verb; i++)
                if (streq(argv[first], verbs[i].name))
                        verb = &verbs[i];
        if (!verb)
                return gpuh_cli_usage_error(PROG, "unknown verb '%s'", argv[first]);
        if (argc - first - 1 != verb->n_args)
                return gpuh_cli_usage_error(PROG, "usage: " PROG " [OPTION]... %s", verb->usage);
        if ((x.a.has_gpu || x.a.free_only) && !streq(verb->name, "status"))
                return gpuh_cli_usage_error(PROG, "--gpu and --free go with status");
        if (x.a.min_age >= 0 && !streq(verb->name, "reconcile"))
                return gpuh_cli_usage_error(PROG, "--min-age goes with reconcile");
        if (x.a.root && !streq(verb->name, "check"))
                return gpuh_cli_usage_error(PROG, "--root goes with check");
        gpuh_log_setup(PROG, x.c.verbose ? GPUH_LOG_STDERR : GPUH_LOG_SYSLOG, x.c.verbose ? LOG_DEBUG : LOG_INFO);

        cfg_path = gpuh_cli_config_path(&x.c);
        r = gpuh_config_load_or_default(cfg_path, cfg_path != NULL, &cfg, &cfg_err);
        if (r < 0)
                return log_oom();
        if (cfg_err && !x.a.json)
                fprintf(stderr, PROG ": warning: %s (the defaults are used)\n", cfg_err);
        x.cfg = cfg;
        x.cfg_err = cfg_err;
        dirs = gpuh_vm_usage_dirs(x.c.xml_dirs, x.c.xml_dirs_env, NULL, &env_dirs);
        if (x.c.xml_dirs_env && !env_dirs)
                return log_oom();
        x.sc = (struct gpuh_sc_opts) {
                .cfg = cfg,
                .sysfs_root = or_default(x.c.sysfs_root, "/sys"),
                .state_dir = or_default(x.c.state_dir, GPUH_STATE_DIR_DEFAULT),
                .dev_dir = or_default(x.a.dev_dir ? x.a.dev_dir : x.c.dev_dir, "/dev"),
                .proc_root = or_default(x.a.proc_root ? x.a.proc_root : x.c.proc_root, "/proc"),
                .connect = x.c.connect, .no_libvirt = x.c.no_libvirt, .xml_dirs = dirs, .min_age_s = -1,
                .config_error = cfg_err, .nvml_lib = x.c.nvml_lib,
        };

        if (streq(verb->name, "status"))
                return ctl_verb_status(&x);
        if (streq(verb->name, "reservations"))
                return ctl_verb_reservations(&x);
        if (streq(verb->name, "journals"))
                return ctl_verb_journals(&x);
        if (streq(verb->name, "release"))
                return ctl_verb_release(&x, argv[first + 1]);
        if (streq(verb->name, "reconcile"))
                return ctl_verb_reconcile(&x);
        if (streq(verb->name, "plan"))
                return ctl_verb_plan(&x, argv[first + 1]);
        return ctl_verb_check(&x);
}

