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

#include "cli.h"
#include "config.h"
#include "inventory.h"
#include "inventory_json.h"
#include "inventory_table.h"
#include "log.h"
#include "pci_names.h"
#include "sysfs.h"
#include "host.h"

enum {
        OPT_FORMAT = 0x100, OPT_SYSFS_ROOT, OPT_CONNECT, OPT_NO_LIBVIRT, OPT_DOMAIN_XML_DIR,
        OPT_CONFIG, OPT_PCI_IDS, OPT_CACHE_DIR, OPT_HELP, OPT_VERSION,
};

/* The one list of options: getopt and --help are both made from it. */
static const struct gpuh_option options[] = {
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
        gpuh_cli_print_options(options, ARRAY_SIZE(options));
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

/* Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct args *a)
{
        struct option longopts[ARRAY_SIZE(options) + 1];
        int c;

        gpuh_cli_longopts(options, ARRAY_SIZE(options), longopts);

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":v", longopts, NULL)) != -1) {
                switch (c) {
                case OPT_FORMAT:
                        if (!streq(optarg, "json") && !streq(optarg, "pretty") && !streq(optarg, "table"))
                                return gpuh_cli_usage_error("gpudiscovery", "unknown format '%s'", optarg);
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
                                return gpuh_cli_usage_error("gpudiscovery", "%s", "out of memory");
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
                        return gpuh_cli_usage_error("gpudiscovery", "option '%s' needs an argument", argv[optind - 1]);
                default:
                        return gpuh_cli_usage_error("gpudiscovery", "unknown option '%s'", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return gpuh_cli_usage_error("gpudiscovery", "unexpected argument '%s'", argv[optind]);
        return -1;
}

int main(int argc, char **argv)
{
        struct args a = { .format = "json" };
        _cleanup_free_ char **xml_dirs_arg = NULL;
        _cleanup_(gpuh_config_freep) struct gpuh_config *cfg = NULL;
        _cleanup_(gpuh_host_freep) struct gpuh_host *host = NULL;
        _cleanup_free_ char *err = NULL;
        const char *cfg_path;
        int r;

        r = parse_args(argc, argv, &a);
        xml_dirs_arg = a.xml_dirs;
        if (r >= 0)
                return r;
        gpuh_log_setup("gpudiscovery", a.verbose ? GPUH_LOG_STDERR : GPUH_LOG_SYSLOG,
                       a.verbose ? LOG_DEBUG : LOG_WARNING);

        cfg_path = a.config ? a.config : secure_getenv("GPUHOOKS_CONFIG");
        if (cfg_path && !*cfg_path)
                cfg_path = NULL;
        r = gpuh_config_load(cfg_path, cfg_path != NULL, &cfg, &err);
        if (r < 0) {
                fprintf(stderr, "gpudiscovery: %s\n", err ? err : strerror(-r));
                return GPUH_EXIT_USAGE;
        }

        r = gpuh_host_scan(&(struct gpuh_host_opts) {
                        .sysfs_root = a.sysfs_root, .pci_ids = a.pci_ids, .cache_dir = a.cache_dir,
                        .connect = a.connect, .no_libvirt = a.no_libvirt, .xml_dirs = a.xml_dirs, .cfg = cfg,
                }, &host, &err);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0) {
                fprintf(stderr, "gpudiscovery: %s\n", err ? err : strerror(-r));
                return EXIT_FAILURE;
        }

        if (streq(a.format, "table"))
                r = gpuh_inventory_print_table(host->inv, stdout);
        else {
                json_object *doc = NULL;
                r = gpuh_inventory_to_json(host->inv, gpuh_host_threads(), &doc);
                if (r == -ENOMEM)
                        return log_oom();
                r = gpuh_json_print(doc, streq(a.format, "pretty"));
                json_object_put(doc);
        }
        if (r < 0) {
                fprintf(stderr, "gpudiscovery: cannot write the output: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
