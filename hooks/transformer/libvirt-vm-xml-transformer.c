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

enum { OPT_EXPLAIN = GPUH_OPT_TOOL, OPT_FORMAT };

/* The one list of options: getopt, --help and the man page are all made from it. */
static const struct gpuh_option options[] = {
        GPUH_OPTION_CONFIG,
        GPUH_OPTION_SYSFS_ROOT,
        GPUH_OPTION_STATE_DIR,
        GPUH_OPTION_CONNECT("libvirt URI asked which domain uses which device"),
        GPUH_OPTION_NO_LIBVIRT,
        GPUH_OPTION_DOMAIN_XML_DIR,
        { { "explain", no_argument, NULL, OPT_EXPLAIN }, NULL,
          "print the plan as JSON (requests, candidates, choice) instead of XML; reserve nothing", false },
        { { "format", required_argument, NULL, OPT_FORMAT }, "FMT",
          "how a failure is told: text (default: one line on stderr) or json (one JSON object on stdout, "
          "with the plan of --explain as its member plan); what succeeds prints as ever", false },
        GPUH_OPTION_NVML_LIB,
        GPUH_OPTION_VERBOSE,
        GPUH_OPTION_HELP,
};

static const char *const synopsis[] = { "METHOD XML", "[OPTION]... [FILE|-]", NULL };

static const struct gpuh_tool tool = {
        .name = PROG,
        .summary = "give a libvirt domain the GPUs it asks for (CloudStack agent hook)",
        .synopsis = synopsis,
        .description =
                "Reads a libvirt domain XML, decides which GPUs it gets, reserves them under a host lock and\n"
                "prints the complete domain XML with the <hostdev> elements and an allocation record added.\n"
                "What a domain asks for comes from CloudStack's own GPU hostdevs (kept, checked, completed\n"
                "with the card's companion functions), else a gpuhooks:request element in its <metadata>,\n"
                "else the first transformer.rules entry of the configuration that matches it.\n"
                "\n"
                "The CloudStack KVM agent runs it before starting a VM as its\n"
                "agent.hooks.libvirt_vm_xml_transformer.shell_script: METHOD (transform) and the whole XML as\n"
                "one argument, no options; its stdout replaces the XML when it exits 0. People and libvirt\n"
                "hosts call it with options and a FILE, or - (or nothing) for stdin.\n"
                "\n"
                "Nothing asked: the XML comes back byte for byte. The state-change hook\n"
                "(libvirt-vm-state-change) binds and creates the devices when the domain starts.\n"
                "The contract is docs/transformer.md.",
        .options = options,
        .n_options = ARRAY_SIZE(options),
        .exit_status = "0 with the complete XML on stdout (or the plan, with --explain); 1 with one line on stderr,\n"
                       "nothing on stdout and nothing reserved; 2 for a bad option. With --format json, a failure\n"
                       "(1 or 2) prints one JSON object on stdout instead, {\"error\": LINE, \"errno\": N or null,\n"
                       "\"device\": ADDRESS or UUID or null} (and \"plan\" with --explain), nothing on stderr.",
        .environment = "GPUHOOKS_CONFIG\tthe configuration file\n"
                       "GPUHOOKS_SYSFS_ROOT\tsysfs instead of /sys\n"
                       "GPUHOOKS_STATE_DIR\tthe state directory\n"
                       "GPUHOOKS_DOMAIN_XML_DIRS\tlibvirt's domain XML directories, colon-separated\n"
                       "GPUHOOKS_NVML_LIB\tNVIDIA's management library (libnvidia-ml.so.1)\n"
                       "LIBVIRT_DEFAULT_URI\tlibvirt's connection URI",
        .files = GPUH_CONFIG_DEFAULT_PATH "\tthe configuration\n"
                 GPUH_STATE_DIR_DEFAULT "/reservations/DOMAIN.json\twhat each domain holds\n"
                 "/etc/cloudstack/agent/hooks/libvirt-vm-xml-transformer.sh\twhere the agent looks for it",
        .see_also = "gpudiscovery(1), libvirt-vm-state-change(1)",
};

struct args {
        const char *input;              /* a file, "-", or NULL for stdin */
        const char *xml_arg;            /* the CloudStack form's document */
        bool explain;
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

static int own_option(int opt, const char *arg, void *data)
{
        struct args *a = data;

        if (opt == OPT_EXPLAIN) {
                a->explain = true;
                return -1;
        }
        if (opt == OPT_FORMAT) {
                if (!streq(arg, "text") && !streq(arg, "json"))
                        return gpuh_cli_usage_error(PROG, "unknown format '%s'", arg);
                return -1;
        }
        return gpuh_cli_usage_error(PROG, "unknown option");
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct args *a, struct gpuh_cli_common *c)
{
        int first, r;

        if (cloudstack_form(argc, argv)) {
                a->xml_arg = argv[2];
                gpuh_cli_resolve_env(c);
                return -1;
        }
        r = gpuh_cli_parse(&tool, argc, argv, false, c, own_option, a, &first);
        if (r >= 0)
                return r;
        if (first < argc)
                a->input = argv[first++];
        if (first < argc)
                return gpuh_cli_usage_error(PROG, "unexpected argument '%s'", argv[first]);
        return -1;
}

/* The document: argv, a file, or stdin; at most GPUH_DOMXML_MAX_BYTES + 1 are read, which is
 * enough for the parser to say "too large". */
static int read_input(const struct args *a, char **ret, size_t *ret_len, char **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (a->xml_arg) {
                size_t len = strlen(a->xml_arg);
                *ret = strndup(a->xml_arg, len);
                *ret_len = len;
                return *ret ? 0 : -ENOMEM;
        }
        if (a->input && !streq(a->input, "-")) {
                fd = open(a->input, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        r = -errno;
                        if (asprintf(reterr, "cannot read '%s': %s", a->input, strerror(-r)) < 0)
                                *reterr = NULL;
                        return r;
                }
        }
        r = gpuh_read_fd(fd >= 0 ? fd : STDIN_FILENO, GPUH_DOMXML_MAX_BYTES, ret, ret_len);
        if (r < 0 && r != -ENOMEM && asprintf(reterr, "cannot read '%s': %s", a->input ? a->input : "-", strerror(-r)) < 0)
                *reterr = NULL;
        return r;
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
        struct gpuh_cli_common c = { 0 };
        _cleanup_free_ char **xml_dirs = NULL;
        _cleanup_free_ char *in = NULL, *out = NULL, *err = NULL, *cfg_err = NULL;
        _cleanup_(gpuh_config_freep) struct gpuh_config *cfg = NULL;
        json_object *plan = NULL;
        const char *cfg_path;
        size_t len = 0, out_len = 0;
        int r;

        r = parse_args(argc, argv, &a, &c);
        xml_dirs = c.xml_dirs;
        if (r >= 0)
                return r;
        /* LOG_INFO: the audit record of each decision (docs/logging.md), as the state-change hook */
        gpuh_log_setup(PROG, c.verbose ? GPUH_LOG_STDERR : GPUH_LOG_SYSLOG, c.verbose ? LOG_DEBUG : LOG_INFO);

        /* A broken configuration never blocks a domain without GPUs: the defaults go on, and a
         * GPU domain is refused with cfg_err (docs/transformer.md). */
        cfg_path = gpuh_cli_config_path(&c);
        r = gpuh_config_load_or_default(cfg_path, cfg_path != NULL, &cfg, &cfg_err);
        if (r < 0)
                return log_oom();
        if (cfg_err)
                gpuh_log(LOG_WARNING, "%s (the defaults are used; GPU domains are refused until it is fixed)", cfg_err);
        r = read_input(&a, &in, &len, &err);
        if (r == 0) {
                struct gpuh_transform_opts o = {
                        .host = { .sysfs_root = c.sysfs_root, .connect = c.connect, .no_libvirt = c.no_libvirt,
                                  .xml_dirs = c.xml_dirs, .xml_dirs_env = c.xml_dirs_env, .pci_ids = c.pci_ids,
                                  .cache_dir = c.cache_dir, .nvml_lib = c.nvml_lib, .cfg = cfg },
                        .state_dir = c.state_dir, .explain = a.explain, .config_error = cfg_err,
                };
                r = gpuh_transform(&o, in, len, &out, &out_len, a.explain ? &plan : NULL, &err);
        }
        if (a.explain && plan && (r == 0 || !gpuh_cli_json_errors())) {
                const char *s = json_object_to_json_string_ext(plan, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
                int w = s ? write_all(s, strlen(s)) : -ENOMEM;
                if (w == 0)
                        w = write_all("\n", 1);
                json_object_put(TAKE_PTR(plan));
                if (w < 0 && r == 0)
                        r = w;
        }
        if (r == -ENOMEM) {
                json_object_put(plan);
                return log_oom();
        }
        if (r < 0) {
                const char *msg = err ? err : strerror(-r);
                gpuh_log(LOG_ERR, "%s", msg);
                /* the JSON error form: the plan of a refusal inside the one object */
                return gpuh_cli_fail(PROG, r, msg, TAKE_PTR(plan));
        }
        if (a.explain)
                return EXIT_SUCCESS;
        r = out ? write_all(out, out_len) : write_all(in, len);
        if (r < 0) {
                /* The agent starts the VM with its original XML: the reservation would hold
                 * devices it does not use until it expires. Said here; released by expiry. */
                return gpuh_cli_fail(PROG, r, "cannot write the output", NULL);
        }
        return EXIT_SUCCESS;
}
