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
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "config.h"
#include "domxml.h"
#include "log.h"
#include "reserve.h"
#include "statechange.h"

#define PROG "libvirt-vm-state-change"

enum {
        OPT_CONFIG = 0x100, OPT_SYSFS_ROOT, OPT_STATE_DIR, OPT_DEV_DIR, OPT_PROC_ROOT, OPT_CONNECT, OPT_NO_LIBVIRT,
        OPT_DOMAIN_XML_DIR, OPT_MIN_AGE, OPT_DRY_RUN, OPT_HELP, OPT_VERSION,
};

static const struct gpuh_option options[] = {
        { { "config", required_argument, NULL, OPT_CONFIG }, "FILE",
          "configuration file (default " GPUH_CONFIG_DEFAULT_PATH "; env GPUHOOKS_CONFIG)" },
        { { "sysfs-root", required_argument, NULL, OPT_SYSFS_ROOT }, "DIR",
          "use DIR as sysfs instead of /sys (env GPUHOOKS_SYSFS_ROOT)" },
        { { "state-dir", required_argument, NULL, OPT_STATE_DIR }, "DIR",
          "reservations, journals, locks (default " GPUH_STATE_DIR_DEFAULT "; env GPUHOOKS_STATE_DIR)" },
        { { "dev-dir", required_argument, NULL, OPT_DEV_DIR }, "DIR",
          "device nodes, to find processes using a GPU (default /dev; env GPUHOOKS_DEV_DIR)" },
        { { "proc-root", required_argument, NULL, OPT_PROC_ROOT }, "DIR",
          "procfs, to find processes using a GPU (default /proc; env GPUHOOKS_PROC_ROOT)" },
        { { "connect", required_argument, NULL, OPT_CONNECT }, "URI",
          "onStop, reconcile: libvirt URI asked which domains run (default: config libvirt.uri)" },
        { { "no-libvirt", no_argument, NULL, OPT_NO_LIBVIRT }, NULL,
          "onStop, reconcile: read which domains run from libvirt's domain XML files" },
        { { "domain-xml-dir", required_argument, NULL, OPT_DOMAIN_XML_DIR }, "DIR",
          "where those files are (repeatable; default: config libvirt.domain_xml_dirs)" },
        { { "min-age", required_argument, NULL, OPT_MIN_AGE }, "SECONDS",
          "reconcile: leave younger journals alone (default: config state_change.reconcile_min_age_s)" },
        { { "dry-run", no_argument, NULL, OPT_DRY_RUN }, NULL,
          "print the steps as JSON; change nothing, take no lock" },
        { { "verbose", no_argument, NULL, 'v' }, NULL, "log to stderr, with debug messages" },
        { { "help", no_argument, NULL, OPT_HELP }, NULL, "show this help and exit" },
        { { "version", no_argument, NULL, OPT_VERSION }, NULL, "show the version and exit" },
};

static void help(void)
{
        printf("Usage: " PROG " [OPTION]... VMNAME OP SUBOP EXTRA   (libvirt qemu hook, domain XML on stdin)\n"
               "       " PROG " [OPTION]... onStart|onStop VMNAME  (CloudStack agent hook)\n"
               "       " PROG " [OPTION]... reconcile\n"
               "Prepare a domain's GPUs before it starts (bind to vfio-pci with their IOMMU group companions,\n"
               "create mdevs, set vGPU types) and put everything back after it stops, from a journal written\n"
               "before each change. reconcile releases the journals of domains that no longer run.\n\n");
        gpuh_cli_print_options(options, ARRAY_SIZE(options));
        printf("\nExit status: 0; 1 with one line on stderr (for prepare: the start is refused, nothing is left\n"
               "changed); 2 for bad arguments.\n");
}

struct args {
        const char *config, *sysfs_root, *state_dir, *dev_dir, *proc_root, *connect;
        bool no_libvirt, dry_run, verbose;
        char **xml_dirs;
        size_t n_xml_dirs;
        int min_age;
        char **pos;
        int n_pos;
};

/* Returns -1 to go on, else the exit status. Options end at the first positional argument
 * ("+"), so a domain named like an option or an EXTRA of "-" reaches us intact. */
static int parse_args(int argc, char **argv, struct args *a)
{
        struct option longopts[ARRAY_SIZE(options) + 1];
        int c;

        a->min_age = -1;
        gpuh_cli_longopts(options, ARRAY_SIZE(options), longopts);
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:v", longopts, NULL)) != -1) {
                switch (c) {
                case OPT_CONFIG:
                        a->config = optarg;
                        break;
                case OPT_SYSFS_ROOT:
                        a->sysfs_root = optarg;
                        break;
                case OPT_STATE_DIR:
                        a->state_dir = optarg;
                        break;
                case OPT_DEV_DIR:
                        a->dev_dir = optarg;
                        break;
                case OPT_PROC_ROOT:
                        a->proc_root = optarg;
                        break;
                case OPT_CONNECT:
                        a->connect = optarg;
                        break;
                case OPT_NO_LIBVIRT:
                        a->no_libvirt = true;
                        break;
                case OPT_DOMAIN_XML_DIR: {
                        char **n = reallocarray(a->xml_dirs, a->n_xml_dirs + 2, sizeof(char *));
                        if (!n)
                                return gpuh_cli_usage_error(PROG, "out of memory");
                        a->xml_dirs = n;
                        a->xml_dirs[a->n_xml_dirs++] = optarg;
                        a->xml_dirs[a->n_xml_dirs] = NULL;
                        break;
                }
                case OPT_MIN_AGE: {
                        char *end;
                        long v;
                        errno = 0;
                        v = strtol(optarg, &end, 10);
                        if (errno || *end || end == optarg || v < 0 || v > 86400)
                                return gpuh_cli_usage_error(PROG, "--min-age needs seconds from 0 to 86400");
                        a->min_age = (int) v;
                        break;
                }
                case OPT_DRY_RUN:
                        a->dry_run = true;
                        break;
                case 'v':
                        a->verbose = true;
                        break;
                case OPT_HELP:
                        help();
                        return EXIT_SUCCESS;
                case OPT_VERSION:
                        printf(PROG " (gpuhooks) %s\n", GPUH_VERSION);
                        return EXIT_SUCCESS;
                case ':':
                        return gpuh_cli_usage_error(PROG, "option '%s' needs an argument", argv[optind - 1]);
                default:
                        return gpuh_cli_usage_error(PROG, "unknown option '%s'", argv[optind - 1]);
                }
        }
        a->pos = argv + optind;
        a->n_pos = argc - optind;
        return -1;
}

/* libvirt writes the domain XML to every hook call: read it all (up to the limit and one more
 * byte, so the parser can say "too large"), also when it is not needed. */
static int read_stdin(char **ret, size_t *ret_len)
{
        size_t cap = GPUH_DOMXML_MAX_BYTES + 2, len = 0;
        char *buf = malloc(cap);

        if (!buf)
                return -ENOMEM;
        while (len < cap - 1) {
                ssize_t n = read(STDIN_FILENO, buf + len, cap - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EBADF)
                        break;          /* no stdin at all: an empty document */
                if (n < 0) {
                        int r = -errno;
                        free(buf);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        buf[len] = '\0';
        *ret = buf;
        *ret_len = len;
        return 0;
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

int main(int argc, char **argv)
{
        struct args a = { 0 };
        _cleanup_free_ char **xml_dirs = NULL;
        _cleanup_free_ char *in = NULL, *err = NULL;
        _cleanup_(gpuh_config_freep) struct gpuh_config *cfg = NULL;
        json_object *plan = NULL;
        const char *cfg_path, *vm = NULL;
        enum call call = CALL_NONE;
        size_t len = 0;
        bool libvirt_form = false;
        int r;

        r = parse_args(argc, argv, &a);
        xml_dirs = a.xml_dirs;
        if (r >= 0)
                return r;
        gpuh_log_setup(PROG, a.verbose ? GPUH_LOG_STDERR : GPUH_LOG_SYSLOG, a.verbose ? LOG_DEBUG : LOG_INFO);

        cfg_path = a.config ? a.config : secure_getenv("GPUHOOKS_CONFIG");
        if (cfg_path && !*cfg_path)
                cfg_path = NULL;
        r = gpuh_config_load(cfg_path, cfg_path != NULL, &cfg, &err);

        /* which call is it? */
        if (a.n_pos == 4) {
                const char *op = a.pos[1], *sub = a.pos[2];

                libvirt_form = true;
                vm = a.pos[0];
                if (streq(op, "prepare") && streq(sub, "begin"))
                        call = CALL_PREPARE;
                else if (streq(op, "started") && streq(sub, "begin"))
                        call = CALL_STARTED;
                else if (streq(op, "reconnect") && streq(sub, "begin"))
                        call = CALL_RECONNECT;
                else if (streq(op, "release") && streq(sub, "end"))
                        call = CALL_RELEASE;
                /* migrate and restore read our stdout as the new XML: print nothing */
        } else if (a.n_pos == 2 && cfg && streq(a.pos[0], cfg->on_start_method)) {
                vm = a.pos[1];
                call = CALL_STARTED;
        } else if (a.n_pos == 2 && cfg && streq(a.pos[0], cfg->on_stop_method)) {
                vm = a.pos[1];
                call = CALL_STOPPED;
        } else if (a.n_pos == 1 && streq(a.pos[0], "reconcile"))
                call = CALL_RECONCILE;
        else if (r == 0)
                return gpuh_cli_usage_error(PROG, a.n_pos == 2 ? "unknown method '%s' (configured: '%s', '%s')"
                                                                : "expected VMNAME OP SUBOP EXTRA, METHOD VMNAME or reconcile",
                                            a.n_pos == 2 ? a.pos[0] : "", cfg->on_start_method, cfg->on_stop_method);

        if (libvirt_form) {
                int k = read_stdin(&in, &len);
                if (k < 0 && r == 0 && call == CALL_PREPARE) {
                        r = k;
                        gpuh_error(&err, k, "cannot read the domain XML from stdin: %s", strerror(-k));
                }
        }
        if (call == CALL_RECONNECT) {
                /* a failure here would make libvirt kill the running guest: never fail */
                if (r == 0 && (r = gpuh_sc_started(&(struct gpuh_sc_opts) { .cfg = cfg, .state_dir = a.state_dir,
                                                                               .sysfs_root = a.sysfs_root }, vm, &err)) < 0)
                        gpuh_log(LOG_WARNING, "%s: reconnect: %s", vm, err ? err : strerror(-r));
                return EXIT_SUCCESS;
        }
        if (r == 0) {
                struct gpuh_sc_opts o = {
                        .cfg = cfg, .sysfs_root = a.sysfs_root, .state_dir = a.state_dir, .dev_dir = a.dev_dir,
                        .proc_root = a.proc_root, .dry_run = a.dry_run, .connect = a.connect, .no_libvirt = a.no_libvirt,
                        .xml_dirs = a.xml_dirs, .min_age_s = a.min_age,
                };

                switch (call) {
                case CALL_PREPARE:
                        r = gpuh_sc_prepare(&o, in ? in : "", len, &plan, &err);
                        break;
                case CALL_STARTED:
                        r = gpuh_sc_started(&o, vm, &err);
                        break;
                case CALL_RELEASE:
                        r = gpuh_sc_release(&o, vm, &plan, &err);
                        break;
                case CALL_STOPPED:
                        r = gpuh_sc_stopped(&o, vm, &plan, &err);
                        break;
                case CALL_RECONCILE:
                        r = gpuh_sc_reconcile(&o, &plan, &err);
                        break;
                default:
                        r = 0;
                        break;
                }
        }
        if (a.dry_run) {
                if (!plan && r == 0 && call != CALL_NONE)
                        plan = call == CALL_RECONCILE ? json_object_new_array() : NULL;
                print_plan(plan);
        }
        json_object_put(plan);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0) {
                const char *msg = err ? err : strerror(-r);
                fprintf(stderr, PROG ": %s\n", msg);
                gpuh_log(LOG_ERR, "%s", msg);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
