/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvirt-vm-xml-transformer: the CloudStack agent's domain XML hook. Reads a domain XML, gives
 * it the GPUs it asks for (reserved under a host lock) and prints the complete new XML
 * (docs/transformer.md).
 *
 *   libvirt-vm-xml-transformer METHOD XML        CloudStack (argv[2] is the document)
 *   libvirt-vm-xml-transformer [OPTIONS] [FILE|-]
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "cli.h"
#include "config.h"
#include "domxml.h"
#include "fileio.h"
#include "log.h"
#include "reserve.h"
#include "transform.h"

#define PROG "libvirt-vm-xml-transformer"

enum {
        OPT_CONFIG = 0x100, OPT_SYSFS_ROOT, OPT_STATE_DIR, OPT_CONNECT, OPT_NO_LIBVIRT, OPT_DOMAIN_XML_DIR,
        OPT_EXPLAIN, OPT_HELP, OPT_VERSION,
};

/* The one list of options: getopt and --help are both made from it. */
static const struct gpuh_option options[] = {
        { { "config", required_argument, NULL, OPT_CONFIG }, "FILE",
          "configuration file (default " GPUH_CONFIG_DEFAULT_PATH "; env GPUHOOKS_CONFIG)" },
        { { "sysfs-root", required_argument, NULL, OPT_SYSFS_ROOT }, "DIR",
          "read sysfs from DIR instead of /sys (env GPUHOOKS_SYSFS_ROOT)" },
        { { "state-dir", required_argument, NULL, OPT_STATE_DIR }, "DIR",
          "reservations and the host lock (default " GPUH_STATE_DIR_DEFAULT "; env GPUHOOKS_STATE_DIR)" },
        { { "connect", required_argument, NULL, OPT_CONNECT }, "URI",
          "libvirt URI for which devices domains use (default: config libvirt.uri, LIBVIRT_DEFAULT_URI)" },
        { { "no-libvirt", no_argument, NULL, OPT_NO_LIBVIRT }, NULL,
          "read which devices domains use from the domain XML files libvirt keeps" },
        { { "domain-xml-dir", required_argument, NULL, OPT_DOMAIN_XML_DIR }, "DIR",
          "where those files are (repeatable; env GPUHOOKS_DOMAIN_XML_DIRS, colon-separated)" },
        { { "explain", no_argument, NULL, OPT_EXPLAIN }, NULL,
          "print the plan as JSON (requests, candidates, choice) instead of XML; reserve nothing" },
        { { "verbose", no_argument, NULL, 'v' }, NULL, "log to stderr, with debug messages" },
        { { "help", no_argument, NULL, OPT_HELP }, NULL, "show this help and exit" },
        { { "version", no_argument, NULL, OPT_VERSION }, NULL, "show the version and exit" },
};

static void help(void)
{
        printf("Usage: " PROG " METHOD XML          (the CloudStack agent's hook call)\n"
               "       " PROG " [OPTION]... [FILE|-]\n"
               "Give a libvirt domain the GPUs it asks for: CloudStack's GPU hostdevs, a gpuhooks:request\n"
               "element in its <metadata>, or a rule of the configuration. Reserve them and print the\n"
               "complete domain XML with the <hostdev> elements and an allocation record.\n\n");
        gpuh_cli_print_options(options, ARRAY_SIZE(options));
        printf("\nExit status: 0 with the XML on stdout (unchanged when nothing is asked); 1 with one line on\n"
               "stderr and nothing reserved; 2 for a bad option.\n");
}

struct args {
        const char *input;              /* a file, "-", or NULL for stdin */
        const char *xml_arg;            /* the CloudStack form's document */
        const char *config, *sysfs_root, *state_dir, *connect;
        bool no_libvirt, explain, verbose;
        char **xml_dirs;
        size_t n_xml_dirs;
};

/* The agent's call: two arguments, the second a document. */
static bool cloudstack_form(int argc, char **argv)
{
        const char *p;

        if (argc != 3 || argv[1][0] == '-' || !argv[1][0])
                return false;
        for (p = argv[2]; isspace((unsigned char) *p); p++)
                ;
        return *p == '<';
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct args *a)
{
        struct option longopts[ARRAY_SIZE(options) + 1];
        int c;

        if (cloudstack_form(argc, argv)) {
                a->xml_arg = argv[2];
                return -1;
        }
        gpuh_cli_longopts(options, ARRAY_SIZE(options), longopts);
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":v", longopts, NULL)) != -1) {
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
                case OPT_EXPLAIN:
                        a->explain = true;
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
        if (optind < argc)
                a->input = argv[optind++];
        if (optind < argc)
                return gpuh_cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
        return -1;
}

/* The document: argv, a file, or stdin; at most GPUH_DOMXML_MAX_BYTES + 1 are read, which is
 * enough for the parser to say "too large". */
static int read_input(const struct args *a, char **ret, size_t *ret_len, char **reterr)
{
        size_t cap = GPUH_DOMXML_MAX_BYTES + 2, len = 0;
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -EBADF;

        if (a->xml_arg) {
                len = strlen(a->xml_arg);
                *ret = strndup(a->xml_arg, len);
                *ret_len = len;
                return *ret ? 0 : -ENOMEM;
        }
        if (a->input && !streq(a->input, "-")) {
                fd = open(a->input, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        int r = -errno;
                        if (asprintf(reterr, "cannot read '%s': %s", a->input, strerror(-r)) < 0)
                                *reterr = NULL;
                        return r;
                }
        }
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        while (len < cap - 1) {
                ssize_t n = read(fd >= 0 ? fd : STDIN_FILENO, buf + len, cap - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;
                        if (asprintf(reterr, "cannot read '%s': %s", a->input ? a->input : "-", strerror(-r)) < 0)
                                *reterr = NULL;
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int write_all(const char *buf, size_t len)
{
        if (len && fwrite(buf, 1, len, stdout) != len)
                return -EIO;
        return fflush(stdout) == EOF ? -EIO : 0;
}

int main(int argc, char **argv)
{
        struct args a = { 0 };
        _cleanup_free_ char **xml_dirs = NULL;
        _cleanup_free_ char *in = NULL, *out = NULL, *err = NULL;
        _cleanup_(gpuh_config_freep) struct gpuh_config *cfg = NULL;
        json_object *plan = NULL;
        const char *cfg_path;
        size_t len = 0, out_len = 0;
        int r;

        r = parse_args(argc, argv, &a);
        xml_dirs = a.xml_dirs;
        if (r >= 0)
                return r;
        gpuh_log_setup(PROG, a.verbose ? GPUH_LOG_STDERR : GPUH_LOG_SYSLOG, a.verbose ? LOG_DEBUG : LOG_WARNING);

        cfg_path = a.config ? a.config : secure_getenv("GPUHOOKS_CONFIG");
        if (cfg_path && !*cfg_path)
                cfg_path = NULL;
        r = gpuh_config_load(cfg_path, cfg_path != NULL, &cfg, &err);
        if (r == 0)
                r = read_input(&a, &in, &len, &err);
        if (r == 0) {
                struct gpuh_transform_opts o = {
                        .host = { .sysfs_root = a.sysfs_root, .connect = a.connect, .no_libvirt = a.no_libvirt,
                                  .xml_dirs = a.xml_dirs, .cfg = cfg },
                        .state_dir = a.state_dir, .explain = a.explain,
                };
                r = gpuh_transform(&o, in, len, &out, &out_len, a.explain ? &plan : NULL, &err);
        }
        if (a.explain && plan) {
                const char *s = json_object_to_json_string_ext(plan, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
                int w = s ? write_all(s, strlen(s)) : -ENOMEM;
                if (w == 0)
                        w = write_all("\n", 1);
                json_object_put(plan);
                if (w < 0 && r == 0)
                        r = w;
        }
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0) {
                const char *msg = err ? err : strerror(-r);
                fprintf(stderr, PROG ": %s\n", msg);
                gpuh_log(LOG_ERR, "%s", msg);
                return EXIT_FAILURE;
        }
        if (a.explain)
                return EXIT_SUCCESS;
        r = out ? write_all(out, out_len) : write_all(in, len);
        if (r < 0) {
                /* The agent starts the VM with its original XML: the reservation would hold
                 * devices it does not use until it expires. Said here; released by expiry. */
                fprintf(stderr, PROG ": cannot write the output: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
