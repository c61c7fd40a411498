/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvirt-vm-state-change: makes a domain's GPUs ready before it starts and puts them back after
 * it stops, from a journal (docs/state-change.md).
 *
 *   libvirt-vm-state-change [OPTIONS] VMNAME OP SUBOP EXTRA     libvirt qemu hook, XML on stdin
 *   libvirt-vm-state-change [OPTIONS] onStart|onStop VMNAME     CloudStack agent hook
 *   libvirt-vm-state-change [OPTIONS] reconcile                 boot, cron, operators
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "config.h"
#include "domxml.h"
#include "fileio.h"
#include "log.h"
#include "reserve.h"
#include "statechange.h"
#include "vm_usage.h"

#define PROG "libvirt-vm-state-change"

enum { OPT_DEV_DIR = GPUH_OPT_TOOL, OPT_PROC_ROOT, OPT_MIN_AGE, OPT_DRY_RUN, OPT_FORMAT };

/* The one list of options: getopt, --help and the man page are all made from it. */
static const struct gpuh_option options[] = {
        GPUH_OPTION_CONFIG,
        GPUH_OPTION_SYSFS_ROOT,
        GPUH_OPTION_STATE_DIR,
        { { "dev-dir", required_argument, NULL, OPT_DEV_DIR }, "DIR",
          "device nodes, to find processes using a GPU (default /dev; env GPUHOOKS_DEV_DIR)", false },
        { { "proc-root", required_argument, NULL, OPT_PROC_ROOT }, "DIR",
          "procfs, to find processes using a GPU (default /proc; env GPUHOOKS_PROC_ROOT)", false },
        GPUH_OPTION_CONNECT("onStop, reconcile: libvirt URI asked which domains run"),
        GPUH_OPTION_NO_LIBVIRT,
        GPUH_OPTION_DOMAIN_XML_DIR,
        GPUH_OPTION_NVML_LIB,
        { { "min-age", required_argument, NULL, OPT_MIN_AGE }, "SECONDS",
          "reconcile: leave younger journals alone (default: config state_change.reconcile_min_age_s)", false },
        { { "dry-run", no_argument, NULL, OPT_DRY_RUN }, NULL,
          "print the checks and sysfs writes as JSON; change nothing, take no lock", false },
        { { "format", required_argument, NULL, OPT_FORMAT }, "FMT",
          "how a failure is told: text (default: one line on stderr) or json (one JSON object on stdout, "
          "with the plan of --dry-run as its member plan)", false },
        GPUH_OPTION_VERBOSE,
        GPUH_OPTION_HELP,
};

static const char *const synopsis[] = {
        "[OPTION]... VMNAME OP SUBOP EXTRA", "[OPTION]... onStart|onStop VMNAME", "[OPTION]... reconcile", NULL,
};

static const struct gpuh_tool tool = {
        .name = PROG,
        .summary = "prepare a domain's GPUs before it starts and put them back after it stops",
        .synopsis = synopsis,
        .description =
                "Binds the GPUs a domain's allocation record names to vfio-pci together with their IOMMU group\n"
                "companions, creates its mdevs and sets its vendor vGPU types before QEMU starts, and undoes\n"
                "exactly that after the domain stops. Every change is appended to the domain's journal and\n"
                "synced to disk before it is made, so a stop, a failure or a crash ends with the devices as\n"
                "they were. Every sysfs write has a deadline; a process holding a GPU refuses the start.\n"
                "\n"
                "As libvirt's qemu hook (an executable in /etc/libvirt/hooks/qemu.d/, libvirt 6.5.0 or later)\n"
                "it gets VMNAME OP SUBOP EXTRA and the domain XML on stdin, and never calls libvirt; VMNAME\n"
                "is the argument before the last three whatever it looks like, options go before it\n"
                "(elsewhere options may also follow the verb: reconcile --min-age 0).\n"
                "prepare begin prepares the devices; a failure undoes everything and libvirt does not start\n"
                "the domain. started begin and reconnect begin mark its reservation running; release end\n"
                "replays the journal in reverse. migrate and restore print nothing.\n"
                "\n"
                "As CloudStack's agent hook (agent.hooks.libvirt_vm_on_start.shell_script and\n"
                "..._on_stop...) it gets onStart or onStop and VMNAME; onStop releases a domain that no\n"
                "longer runs. reconcile releases every domain that no longer runs, for boot and cron.\n"
                "\n"
                "An unusable configuration file never blocks a domain without GPUs: the defaults are used\n"
                "and only a GPU domain's prepare, a release of what a domain holds and reconcile fail.\n"
                "The contract is docs/state-change.md.",
        .options = options,
        .n_options = ARRAY_SIZE(options),
        .exit_status = "0; 1 with one line on stderr naming the domain, the device and the cause (for prepare, the\n"
                       "start is refused and nothing is left changed); 2 for bad arguments. With --format json, a\n"
                       "failure (1 or 2) prints one JSON object on stdout instead, {\"error\": LINE, \"errno\": N or\n"
                       "null, \"device\": ADDRESS or UUID or null} (and \"plan\" with --dry-run), nothing on stderr.",
        .environment = "GPUHOOKS_CONFIG\tthe configuration file\n"
                       "GPUHOOKS_SYSFS_ROOT\tsysfs instead of /sys\n"
                       "GPUHOOKS_STATE_DIR\tthe state directory\n"
                       "GPUHOOKS_DEV_DIR\tdevice nodes instead of /dev\n"
                       "GPUHOOKS_PROC_ROOT\tprocfs instead of /proc\n"
                       "GPUHOOKS_NVML_LIB\tNVIDIA's management library (libnvidia-ml.so.1)",
        .files = GPUH_CONFIG_DEFAULT_PATH "\tthe configuration (section state_change)\n"
                 GPUH_STATE_DIR_DEFAULT "/journal/DOMAIN.journal\tthe changes made for a domain\n"
                 GPUH_STATE_DIR_DEFAULT "/reservations/DOMAIN.json\twhat each domain holds\n"
                 GPUH_STATE_DIR_DEFAULT "/locks/\tdomain and device locks\n"
                 "/etc/libvirt/hooks/qemu.d/gpuhooks\twhere libvirt runs it\n"
                 "/etc/cloudstack/agent/hooks/libvirt-vm-state-change.sh\twhere the CloudStack agent runs it",
        .see_also = "gpudiscovery(1), libvirt-vm-xml-transformer(1)",
};

struct args {
        const char *dev_dir, *proc_root;
        bool dry_run;
        int min_age;
};

static int own_option(int opt, const char *arg, void *data)
{
        struct args *a = data;

        switch (opt) {
        case OPT_DEV_DIR:
                a->dev_dir = arg;
                return -1;
        case OPT_PROC_ROOT:
                a->proc_root = arg;
                return -1;
        case OPT_MIN_AGE: {
                char *end;
                long v;
                errno = 0;
                v = strtol(arg, &end, 10);
                if (errno || *end || end == arg || v < 0 || v > 86400)
                        return gpuh_cli_usage_error(PROG, "--min-age needs seconds from 0 to 86400");
                a->min_age = (int) v;
                return -1;
        }
        case OPT_DRY_RUN:
                a->dry_run = true;
                return -1;
        case OPT_FORMAT:
                if (!streq(arg, "text") && !streq(arg, "json"))
                        return gpuh_cli_usage_error(PROG, "unknown format '%s'", arg);
                return -1;
        default:
                return gpuh_cli_usage_error(PROG, "unknown option");
        }
}

/* The CloudStack agent's call: METHOD VMNAME, nothing else (its method names are letters,
 * digits and '_', never "reconcile": config.h). */
static bool agent_form(int argc, char **argv)
{
        return argc == 3 && argv[1][0] && argv[1][0] != '-' && !streq(argv[1], "reconcile");
}

/* The value when given (an option, or the environment as gpuh_cli_resolve_env() read it), else
 * @def: resolved here, once, so that the library reads no environment. */
static const char *or_default(const char *given, const char *def)
{
        return given && *given ? given : def;
}

static void print_plan(json_object *plan)
{
        const char *s;

        if (!plan)
                return;
        s = json_object_to_json_string_ext(plan, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
        if (s)
                printf("%s\n", s);
        fflush(stdout);
}

enum call {
        CALL_NONE,              /* nothing to do */
        CALL_PREPARE,
        CALL_STARTED,
        CALL_RECONNECT,
        CALL_RELEASE,
        CALL_STOPPED,
        CALL_RECONCILE,
};

/* Which call the positional arguments make, and its domain. Returns -1 to go on, else the exit
 * status of a usage error. */
static int which_call(char **pos, int n_pos, const struct gpuh_config *cfg, enum call *ret, const char **vm,
                      bool *libvirt_form)
{
        if (n_pos == 4) {
                const char *op = pos[1], *sub = pos[2];

                *libvirt_form = true;
                *vm = pos[0];
                if (streq(op, "prepare") && streq(sub, "begin"))
                        *ret = CALL_PREPARE;
                else if (streq(op, "started") && streq(sub, "begin"))
                        *ret = CALL_STARTED;
                else if (streq(op, "reconnect") && streq(sub, "begin"))
                        *ret = CALL_RECONNECT;
                else if (streq(op, "release") && streq(sub, "end"))
                        *ret = CALL_RELEASE;
                /* migrate and restore read our stdout as the new XML: print nothing */
        } else if (n_pos == 2 && streq(pos[0], cfg->on_start_method)) {
                *vm = pos[1];
                *ret = CALL_STARTED;
        } else if (n_pos == 2 && streq(pos[0], cfg->on_stop_method)) {
                *vm = pos[1];
                *ret = CALL_STOPPED;
        } else if (n_pos == 1 && streq(pos[0], "reconcile"))
                *ret = CALL_RECONCILE;
        else
                return gpuh_cli_usage_error(PROG, n_pos == 2 ? "unknown method '%s' (configured: '%s', '%s')"
                                                                : "expected VMNAME OP SUBOP EXTRA, METHOD VMNAME or reconcile",
                                            n_pos == 2 ? pos[0] : "", cfg->on_start_method, cfg->on_stop_method);
        return -1;
}

static int run_call(struct gpuh_sc_opts *o, enum call call, const char *vm, const char *in, size_t len,
                    json_object **plan, char **err)
{
        switch (call) {
        case CALL_PREPARE:
                o->vmname = vm;         /* libvirt's VMNAME: must be the XML's <name> */
                return gpuh_sc_prepare(o, in ? in : "", len, plan, err);
        case CALL_STARTED:
                return gpuh_sc_started(o, vm, err);
        case CALL_RELEASE:
                return gpuh_sc_release(o, vm, plan, err);
        case CALL_STOPPED:
                return gpuh_sc_stopped(o, vm, plan, err);
        case CALL_RECONCILE:
                return gpuh_sc_reconcile(o, plan, err);
        default:
                return 0;
        }
}

/* The dry run's plan on stdout; a failure's one line on stderr (and in the log), or in the
 * JSON error form one object on stdout holding the plan. */
static int finish(bool dry_run, enum call call, json_object *plan, int r, const char *err)
{
        bool json = r < 0 && r != -ENOMEM && gpuh_cli_json_errors();

        if (dry_run && !json) {
                if (!plan && r == 0 && call != CALL_NONE)
                        plan = call == CALL_RECONCILE ? json_object_new_array() : NULL;
                print_plan(plan);
        }
        if (r == -ENOMEM) {
                json_object_put(plan);
                return log_oom();
        }
        if (r < 0) {
                const char *msg = err ? err : strerror(-r);
                gpuh_log(LOG_ERR, "%s", msg);
                if (!dry_run)
                        json_object_put(TAKE_PTR(plan));
                return gpuh_cli_fail(PROG, r, msg, TAKE_PTR(plan));
        }
        json_object_put(plan);
        return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
        struct args a = { .min_age = -1 };
        struct gpuh_cli_common c = { 0 };
        struct gpuh_sc_opts o = { 0 };
        _cleanup_free_ char **xml_dirs = NULL;
        _cleanup_strv_free_ char **env_dirs = NULL;
        char *const *dirs = NULL;
        _cleanup_free_ char *in = NULL, *err = NULL, *cfg_err = NULL;
        _cleanup_(gpuh_config_freep) struct gpuh_config *cfg = NULL;
        json_object *plan = NULL;
        const char *cfg_path, *vm = NULL;
        enum call call = CALL_NONE;
        size_t len = 0;
        bool libvirt_form = false;
        int r, first, vm_at;

        /* libvirt's VMNAME OP SUBOP EXTRA: VMNAME is whatever stands before the last three (a
         * domain may be named "--help" or "-v"), options only before it. The agent's METHOD
         * VMNAME (exactly two arguments, the first no option): no options, so that VMNAME is
         * never read as one. Otherwise options and verbs in any order, as getopt_long(3)
         * permutes them ("reconcile --min-age 0"); "--" ends the options. */
        vm_at = gpuh_cli_libvirt_vmname(argc, argv);
        if (vm_at < 0 && agent_form(argc, argv)) {
                gpuh_cli_resolve_env(&c);
                first = 1;
                r = -1;
        } else
                r = gpuh_cli_parse(&tool, vm_at > 0 ? vm_at : argc, argv, false, &c, own_option, &a, &first);
        xml_dirs = c.xml_dirs;
        if (r >= 0)
                return r;
        if (vm_at > 0 && first != vm_at)
                return gpuh_cli_usage_error(PROG, "unexpected argument '%s' before VMNAME '%s'", argv[first],
                                            argv[vm_at]);
        gpuh_log_setup(PROG, c.verbose ? GPUH_LOG_STDERR : GPUH_LOG_SYSLOG, c.verbose ? LOG_DEBUG : LOG_INFO);

        /* A broken configuration never blocks a domain without GPUs: the defaults go on, and
         * only what needs the configuration (a GPU domain's prepare, a release of what a
         * domain holds, reconcile) fails, with cfg_err (docs/state-change.md). */
        cfg_path = gpuh_cli_config_path(&c);
        r = gpuh_config_load_or_default(cfg_path, cfg_path != NULL, &cfg, &cfg_err);
        if (r < 0)
                return log_oom();
        if (cfg_err)
                gpuh_log(LOG_WARNING, "%s (the defaults are used; GPU domains are refused until it is fixed)", cfg_err);
        r = which_call(argv + first, argc - first, cfg, &call, &vm, &libvirt_form);
        if (r >= 0)
                return r;
        r = 0;

        if (libvirt_form) {
                /* libvirt writes the domain XML to every call: read it all (to the limit and one
                 * byte more, so the parser can say "too large"), also when it is not needed */
                int k = gpuh_read_fd(STDIN_FILENO, GPUH_DOMXML_MAX_BYTES, &in, &len);
                if (k < 0 && call == CALL_PREPARE) {
                        r = k;
                        gpuh_error(&err, k, "cannot read the domain XML from stdin: %s", strerror(-k));
                }
        }
        /* one context: options, then the environment, then the defaults */
        dirs = gpuh_vm_usage_dirs(c.xml_dirs, c.xml_dirs_env, NULL, &env_dirs);
        if (c.xml_dirs_env && !env_dirs)
                return log_oom();
        o = (struct gpuh_sc_opts) {
                .cfg = cfg,
                .sysfs_root = or_default(c.sysfs_root, "/sys"),
                .state_dir = or_default(c.state_dir, GPUH_STATE_DIR_DEFAULT),
                .dev_dir = or_default(a.dev_dir ? a.dev_dir : c.dev_dir, "/dev"),
                .proc_root = or_default(a.proc_root ? a.proc_root : c.proc_root, "/proc"),
                .dry_run = a.dry_run, .connect = c.connect, .no_libvirt = c.no_libvirt, .xml_dirs = dirs,
                .min_age_s = a.min_age, .config_error = cfg_err, .nvml_lib = c.nvml_lib,
        };
        if (call == CALL_RECONNECT) {
                /* a failure here would make libvirt kill the running guest: never fail (and, as
                 * before, --dry-run does not apply to it) */
                o.dry_run = false;
                if ((r = gpuh_sc_started(&o, vm, &err)) < 0)
                        gpuh_log(LOG_WARNING, "%s: reconnect: %s", vm, err ? err : strerror(-r));
                return EXIT_SUCCESS;
        }
        if (r == 0)
                r = run_call(&o, call, vm, in, len, &plan, &err);
        return finish(a.dry_run, call, plan, r, err);
}
