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
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "inventory.h"
#include "inventory_json.h"
#include "inventory_table.h"
#include "log.h"
#include "pci_names.h"
#include "sysfs.h"
#include "vm_usage.h"

#include <libxml/parser.h>

enum { EXIT_USAGE = 2 };

enum {
        OPT_FORMAT = 0x100, OPT_SYSFS_ROOT, OPT_CONNECT, OPT_NO_LIBVIRT, OPT_DOMAIN_XML_DIR,
        OPT_CONFIG, OPT_PCI_IDS, OPT_CACHE_DIR, OPT_HELP, OPT_VERSION,
};

/* The one list of options: getopt and --help are both made from it. */
static const struct option_doc {
        struct option opt;
        const char *arg;
        const char *help;
} options[] = {
        { { "format", required_argument, NULL, OPT_FORMAT }, "FMT",
          "json (default: one line, for the CloudStack agent), pretty, or table" },
        { { "sysfs-root", required_argument, NULL, OPT_SYSFS_ROOT }, "DIR",
          "read sysfs from DIR instead of /sys (env GPUHOOKS_SYSFS_ROOT)" },
        { { "connect", required_argument, NULL, OPT_CONNECT }, "URI",
          "libvirt URI for VM usage (default: config libvirt.uri, LIBVIRT_DEFAULT_URI, libvirt's own)" },
        { { "no-libvirt", no_argument, NULL, OPT_NO_LIBVIRT }, NULL,
          "do not contact libvirt; read VM usage from the domain XML files libvirt keeps" },
        { { "domain-xml-dir", required_argument, NULL, OPT_DOMAIN_XML_DIR }, "DIR",
          "where those files are (repeatable; default /run/libvirt/qemu and /etc/libvirt/qemu; env GPUHOOKS_DOMAIN_XML_DIRS, colon-separated)" },
        { { "config", required_argument, NULL, OPT_CONFIG }, "FILE",
          "configuration file (default " GPUH_CONFIG_DEFAULT_PATH "; env GPUHOOKS_CONFIG)" },
        { { "pci-ids", required_argument, NULL, OPT_PCI_IDS }, "FILE",
          "name devices from this pci.ids only (env GPUHOOKS_PCI_IDS)" },
        { { "cache-dir", required_argument, NULL, OPT_CACHE_DIR }, "DIR",
          "keep libpci's device names in DIR/" GPUH_PCI_NAMES_CACHE_FILE " (default " GPUH_PCI_NAMES_CACHE_DIR
          "; empty: no cache; env GPUHOOKS_CACHE_DIR)" },
        { { "verbose", no_argument, NULL, 'v' }, NULL, "log to stderr, with debug messages" },
        { { "help", no_argument, NULL, OPT_HELP }, NULL, "show this help and exit" },
        { { "version", no_argument, NULL, OPT_VERSION }, NULL, "show the version and exit" },
};

static void help(void)
{
        printf("Usage: gpudiscovery [OPTION]...\n"
               "Print the GPUs of this host, their SR-IOV VFs, vGPU types and instances, IOMMU groups,\n"
               "NUMA nodes and the libvirt domains using them, as JSON for the CloudStack KVM agent.\n\n");
        for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
                char lhs[64];
                const struct option_doc *o = &options[i];
                snprintf(lhs, sizeof(lhs), "%s--%s%s%s", o->opt.val == 'v' ? "-v, " : "    ",
                         o->opt.name, o->arg ? " " : "", o->arg ? o->arg : "");
                printf("  %-28s %s\n", lhs, o->help);
        }
        printf("\nExit status: 0 with whatever could be read; 1 when the sysfs root cannot be read;\n"
               "2 for a bad option or configuration.\n");
}

struct args {
        const char *format;
        const char *sysfs_root;
        const char *connect;
        bool no_libvirt;
        char **xml_dirs;        /* from --domain-xml-dir */
        size_t n_xml_dirs;
        const char *config;
        const char *pci_ids;
        const char *cache_dir;
        bool verbose;
};

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "gpudiscovery: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (see --help)\n");
        return EXIT_USAGE;
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct args *a)
{
        struct option longopts[ARRAY_SIZE(options) + 1];
        int c;

        for (size_t i = 0; i < ARRAY_SIZE(options); i++)
                longopts[i] = options[i].opt;
        memset(&longopts[ARRAY_SIZE(options)], 0, sizeof(struct option));

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":v", longopts, NULL)) != -1) {
                switch (c) {
                case OPT_FORMAT:
                        if (!streq(optarg, "json") && !streq(optarg, "pretty") && !streq(optarg, "table"))
                                return usage_error("unknown format '%s'", optarg);
                        a->format = optarg;
                        break;
                case OPT_SYSFS_ROOT:
                        a->sysfs_root = optarg;
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
                                return usage_error("%s", "out of memory");
                        a->xml_dirs = n;
                        a->xml_dirs[a->n_xml_dirs++] = optarg;
                        a->xml_dirs[a->n_xml_dirs] = NULL;
                        break;
                }
                case OPT_CONFIG:
                        a->config = optarg;
                        break;
                case OPT_PCI_IDS:
                        a->pci_ids = optarg;
                        break;
                case OPT_CACHE_DIR:
                        a->cache_dir = optarg;
                        break;
                case 'v':
                        a->verbose = true;
                        break;
                case OPT_HELP:
                        help();
                        return EXIT_SUCCESS;
                case OPT_VERSION:
                        printf("gpudiscovery (gpuhooks) %s\n", GPUH_VERSION);
                        return EXIT_SUCCESS;
                case ':':
                        return usage_error("option '%s' needs an argument", argv[optind - 1]);
                default:
                        return usage_error("unknown option '%s'", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return usage_error("unexpected argument '%s'", argv[optind]);
        return -1;
}

/* "a:b:c" -> NULL-terminated vector, empty items dropped. */
static char **split_colon(const char *s)
{
        _cleanup_free_ char *copy = strdup(s);
        char **v = calloc(strlen(s) + 2, sizeof(char *));
        char *save = NULL;
        size_t n = 0;

        if (!copy || !v) {
                free(v);
                return NULL;
        }
        for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save))
                if (!(v[n++] = strdup(t))) {
                        strv_free(v);
                        return NULL;
                }
        return v;
}

static const char *env(const char *name)
{
        const char *v = secure_getenv(name);
        return v && *v ? v : NULL;
}

/* What runs beside the sysfs scan: loading pci.ids, and reading libvirt's XML files. */
struct side_job {
        struct gpuh_pci_names *names;
        struct gpuh_vm_usage *usage;
        char *const *dirs;              /* NULL: no XML files to read here */
        struct gpuh_warnings warnings;
        int dirs_read;                  /* gpuh_vm_usage_load_dirs() result */
};

static void *side_job_run(void *arg)
{
        struct side_job *j = arg;

        gpuh_pci_names_load(j->names);
        if (j->dirs)
                j->dirs_read = gpuh_vm_usage_load_dirs(j->usage, j->dirs, &j->warnings);
        return NULL;
}

/* One more than the cores: the side job holds a core only at the start. At most 8. */
static unsigned scan_threads(void)
{
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        return n < 1 ? 2 : n > 7 ? 8 : (unsigned) n + 1;
}

int main(int argc, char **argv)
{
        struct args a = { .format = "json" };
        _cleanup_free_ char **xml_dirs_arg = NULL;
        _cleanup_strv_free_ char **xml_dirs_env = NULL;
        _cleanup_(gpuh_config_freep) struct gpuh_config *cfg = NULL;
        _cleanup_sysfs_ struct gpuh_sysfs *sysfs = NULL;
        _cleanup_(gpuh_pci_names_freep) struct gpuh_pci_names *names = NULL;
        _cleanup_(gpuh_vm_usage_freep) struct gpuh_vm_usage *usage = NULL;
        _cleanup_(gpuh_inventory_freep) struct gpuh_inventory *inv = NULL;
        _cleanup_free_ char *err = NULL;
        struct gpuh_libvirt_query *query = NULL;
        struct side_job side = { 0 };
        bool side_started;
        pthread_t side_tid;
        char *const *dirs;
        const char *cfg_path;
        int r, scan_r;

        r = parse_args(argc, argv, &a);
        xml_dirs_arg = a.xml_dirs;
        if (r >= 0)
                return r;
        gpuh_log_setup("gpudiscovery", a.verbose ? GPUH_LOG_STDERR : GPUH_LOG_SYSLOG,
                       a.verbose ? LOG_DEBUG : LOG_WARNING);

        cfg_path = a.config ? a.config : env("GPUHOOKS_CONFIG");
        r = gpuh_config_load(cfg_path, cfg_path != NULL, &cfg, &err);
        if (r < 0) {
                fprintf(stderr, "gpudiscovery: %s\n", err ? err : strerror(-r));
                return EXIT_USAGE;
        }
        if (!a.sysfs_root)
                a.sysfs_root = env("GPUHOOKS_SYSFS_ROOT");
        if (!a.sysfs_root)
                a.sysfs_root = "/sys";
        if (!a.pci_ids)
                a.pci_ids = env("GPUHOOKS_PCI_IDS");
        if (!a.cache_dir)
                a.cache_dir = secure_getenv("GPUHOOKS_CACHE_DIR");
        if (!a.cache_dir)
                a.cache_dir = GPUH_PCI_NAMES_CACHE_DIR;
        if (!a.connect)
                a.connect = cfg->libvirt_uri;
        if (a.xml_dirs)
                dirs = a.xml_dirs;
        else if (env("GPUHOOKS_DOMAIN_XML_DIRS")) {
                xml_dirs_env = split_colon(env("GPUHOOKS_DOMAIN_XML_DIRS"));
                if (!xml_dirs_env)
                        return log_oom();
                dirs = xml_dirs_env;
        } else
                dirs = cfg->domain_xml_dirs;

        r = gpuh_sysfs_open(a.sysfs_root, &sysfs);
        if (r < 0) {
                fprintf(stderr, "gpudiscovery: cannot open sysfs root '%s': %s\n", a.sysfs_root, strerror(-r));
                return EXIT_FAILURE;
        }
        if (gpuh_pci_names_new(a.sysfs_root, a.pci_ids, a.cache_dir, &names) < 0 || gpuh_vm_usage_new(&usage) < 0)
                return log_oom();

        /* Three things at once: libvirt answers in its child, pci.ids (and, without libvirt,
         * the domain XML files) load in a thread, and sysfs is read meanwhile. The child is
         * forked before any thread exists. */
        if (!a.no_libvirt) {
                r = gpuh_vm_usage_libvirt_start(a.connect, cfg->libvirt_timeout_ms, &query);
                if (r < 0)
                        query = NULL;   /* reported below, as an unreachable libvirt */
        }
        xmlInitParser();
        side.names = names;
        side.usage = usage;
        side.dirs = a.no_libvirt ? dirs : NULL;
        side_started = pthread_create(&side_tid, NULL, side_job_run, &side) == 0;
        if (!side_started)
                side_job_run(&side);

        scan_r = gpuh_inventory_scan(sysfs->root_fd, cfg, scan_threads(), &inv);
        if (side_started)
                pthread_join(side_tid, NULL);
        if (scan_r == -ENOMEM)
                return log_oom();
        if (scan_r < 0) {
                if (query)
                        gpuh_vm_usage_libvirt_finish(usage, query, NULL);
                gpuh_warnings_clear(&side.warnings);
                fprintf(stderr, "gpudiscovery: cannot read '%s/bus/pci/devices': %s\n", a.sysfs_root,
                        scan_r == -ENOENT ? "not a sysfs tree" : strerror(-scan_r));
                return EXIT_FAILURE;
        }
        r = gpuh_inventory_name(inv, names);
        if (r < 0)
                return log_oom();

        /* VM usage: libvirt first; when it cannot answer, the files it keeps. */
        if (!a.no_libvirt) {
                free(err);
                err = NULL;
                r = query ? gpuh_vm_usage_libvirt_finish(usage, query, &err) : -ECHILD;
                if (r < 0) {
                        gpuh_warn(&inv->warnings, "libvirt unreachable (%s), VM usage read from domain XML files",
                                  err ? err : strerror(-r));
                        side.dirs_read = gpuh_vm_usage_load_dirs(usage, dirs, &side.warnings);
                }
        }
        if (gpuh_warnings_move(&inv->warnings, &side.warnings) < 0 || side.dirs_read == -ENOMEM)
                return log_oom();
        if (gpuh_vm_usage_source(usage) == GPUH_VM_SOURCE_NONE)
                gpuh_warn(&inv->warnings, "no VM usage: neither libvirt nor a domain XML directory could be read");
        inv->usage = usage;

        if (streq(a.format, "table"))
                r = gpuh_inventory_print_table(inv, stdout);
        else {
                json_object *doc = NULL;
                r = gpuh_inventory_to_json(inv, scan_threads(), &doc);
                if (r == -ENOMEM)
                        return log_oom();
                r = gpuh_json_print(doc, streq(a.format, "pretty"));
                json_object_put(doc);
        }
        if (r < 0) {
                fprintf(stderr, "gpudiscovery: cannot write the output: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        r = gpuh_pci_names_save(names);
        if (r < 0)
                gpuh_log_errno(LOG_DEBUG, r, "names cache not written: %m");
        return EXIT_SUCCESS;
}
