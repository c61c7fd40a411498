/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h: one description of each tool (its options, synopsis, text) that getopt, --help and
 * the man page are all made from, so that they cannot drift; and the options every tool
 * shares, parsed in one place.
 */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "config.h"
#include "macro.h"

#define GPUH_EXIT_USAGE 2

/* getopt values of the shared options; a tool's own start at GPUH_OPT_TOOL */
enum {
        GPUH_OPT_CONFIG = 0x100,
        GPUH_OPT_SYSFS_ROOT,
        GPUH_OPT_STATE_DIR,
        GPUH_OPT_CONNECT,
        GPUH_OPT_NO_LIBVIRT,
        GPUH_OPT_DOMAIN_XML_DIR,
        GPUH_OPT_HELP,
        GPUH_OPT_VERSION,
        GPUH_OPT_MAN,
        GPUH_OPT_NVML_LIB,
        GPUH_OPT_TOOL = 0x200,
};

struct gpuh_option {
        struct option opt;      /* getopt_long(3) entry; val 'v' also gives -v */
        const char *arg;        /* name of its argument for --help, NULL for none */
        const char *help;       /* one sentence, for --help and the man page */
        bool hidden;            /* accepted, not listed (--man) */
};

/* The shared options' table entries, the same in every tool. */
#define GPUH_OPTION_CONFIG \
        { { "config", required_argument, NULL, GPUH_OPT_CONFIG }, "FILE", \
          "configuration file (default " GPUH_CONFIG_DEFAULT_PATH "; env GPUHOOKS_CONFIG)", false }
#define GPUH_OPTION_SYSFS_ROOT \
        { { "sysfs-root", required_argument, NULL, GPUH_OPT_SYSFS_ROOT }, "DIR", \
          "use DIR as sysfs instead of /sys (env GPUHOOKS_SYSFS_ROOT)", false }
#define GPUH_OPTION_STATE_DIR \
        { { "state-dir", required_argument, NULL, GPUH_OPT_STATE_DIR }, "DIR", \
          "reservations, journals and locks (default /run/gpuhooks; env GPUHOOKS_STATE_DIR)", false }
#define GPUH_OPTION_CONNECT(what) \
        { { "connect", required_argument, NULL, GPUH_OPT_CONNECT }, "URI", \
          what " (default: config libvirt.uri, LIBVIRT_DEFAULT_URI, libvirt's own)", false }
#define GPUH_OPTION_NO_LIBVIRT \
        { { "no-libvirt", no_argument, NULL, GPUH_OPT_NO_LIBVIRT }, NULL, \
          "do not contact libvirt; read which domains run and use what from the XML files libvirt keeps", false }
#define GPUH_OPTION_DOMAIN_XML_DIR \
        { { "domain-xml-dir", required_argument, NULL, GPUH_OPT_DOMAIN_XML_DIR }, "DIR", \
          "where those files are (repeatable; default /run/libvirt/qemu and /etc/libvirt/qemu; " \
          "env GPUHOOKS_DOMAIN_XML_DIRS, colon-separated)", false }
#define GPUH_OPTION_NVML_LIB \
        { { "nvml-lib", required_argument, NULL, GPUH_OPT_NVML_LIB }, "FILE", \
          "NVIDIA's management library, loaded (in a child process) for MIG and vGPU modes when an NVIDIA " \
          "GPU is on the nvidia driver (default libnvidia-ml.so.1; env GPUHOOKS_NVML_LIB)", false }
#define GPUH_OPTION_VERBOSE \
        { { "verbose", no_argument, NULL, 'v' }, NULL, "log to stderr, with debug messages", false }
#define GPUH_OPTION_HELP \
        { { "help", no_argument, NULL, GPUH_OPT_HELP }, NULL, "show this help and exit", false }, \
        { { "version", no_argument, NULL, GPUH_OPT_VERSION }, NULL, "show the version and exit", false }, \
        { { "man", no_argument, NULL, GPUH_OPT_MAN }, NULL, "print the manual page (roff)", true }

/* What a man page and --help say about a tool. Texts are paragraphs separated by blank lines,
 * wrapped by hand (--help prints them as they are). */
struct gpuh_tool {
        const char *name;                       /* "gpudiscovery" */
        const char *summary;                    /* the NAME line, after "name - " */
        const char *const *synopsis;            /* NULL-terminated usage lines, after the name */
        const char *description;
        const struct gpuh_option *options;
        size_t n_options;
        const char *exit_status;
        const char *environment;                /* "VAR\tmeaning" lines */
        const char *files;                      /* "PATH\tmeaning" lines */
        const char *see_also;                   /* "libvirt-vm-state-change(1), ..." */
};

/* The shared options' values. */
/*
 * The one context of a run, resolved once in the CLI layer from the options, then the
 * environment, then (in the library) the defaults: the library never reads the environment.
 */
struct gpuh_cli_common {
        const char *config;                     /* --config, GPUHOOKS_CONFIG */
        const char *sysfs_root;                 /* --sysfs-root, GPUHOOKS_SYSFS_ROOT */
        const char *state_dir;                  /* --state-dir, GPUHOOKS_STATE_DIR */
        const char *xml_dirs_env;               /* GPUHOOKS_DOMAIN_XML_DIRS (colon-separated) */
        const char *cache_dir;                  /* GPUHOOKS_CACHE_DIR (gpudiscovery: --cache-dir first) */
        const char *pci_ids;                    /* GPUHOOKS_PCI_IDS (gpudiscovery: --pci-ids first) */
        const char *dev_dir;                    /* GPUHOOKS_DEV_DIR */
        const char *proc_root;                  /* GPUHOOKS_PROC_ROOT */
        const char *nvml_lib;                   /* --nvml-lib, GPUHOOKS_NVML_LIB (NULL: libnvidia-ml.so.1) */
        const char *connect;
        bool no_libvirt;
        bool verbose;
        char **xml_dirs;                        /* NULL-terminated, free() the array only */
        size_t n_xml_dirs;
};

/**
 * gpuh_cli_resolve_env:
 * @c: the context, with what options said
 *
 * Fills what the options left unset from the environment (GPUHOOKS_CONFIG, _SYSFS_ROOT,
 * _STATE_DIR, _DOMAIN_XML_DIRS, _CACHE_DIR, _PCI_IDS, _DEV_DIR, _PROC_ROOT, _NVML_LIB; secure_getenv(3),
 * an empty value counts as unset, except GPUHOOKS_CACHE_DIR="", which means no cache).
 * gpuh_cli_parse() calls it; a tool whose calling convention takes no options (the CloudStack
 * agent's) calls it itself. The only environment reads of gpuhooks.
 */
void gpuh_cli_resolve_env(struct gpuh_cli_common *c);

/**
 * gpuh_cli_parse:
 * @t: the tool
 * @argc, @argv: main()'s
 * @stop_at_positional: true stops at the first argument that is not an option (getopt "+"),
 *                      for tools whose positional arguments may look like options
 * @c: receives the shared options
 * @own: called for every other option with its getopt value and argument; returns -1 to go
 *       on, or an exit status to return at once
 * @data: passed to @own
 * @ret_optind: the index of the first positional argument
 *
 * --help, --version and --man print and make it return 0. Errors print "TOOL: WHAT (see
 * --help)" on stderr.
 *
 * Returns: -1 to go on; else the exit status (0, GPUH_EXIT_USAGE).
 */
int gpuh_cli_parse(const struct gpuh_tool *t, int argc, char **argv, bool stop_at_positional,
                   struct gpuh_cli_common *c, int (*own)(int opt, const char *arg, void *data), void *data,
                   int *ret_optind);

/**
 * gpuh_cli_libvirt_vmname:
 * @argc, @argv: main()'s
 *
 * libvirt runs a qemu hook as `HOOK VMNAME OP SUBOP EXTRA` (libvirt docs/hooks.rst; OP one of
 * prepare, start, started, stopped, release, migrate, restore, reconnect, attach, SUBOP one of
 * begin, end, -: the strings of src/util/virhook.c), and a domain may be named "--help" or
 * "-v". When the last three arguments are such an OP, SUBOP and EXTRA, the one before them is
 * VMNAME whatever it looks like; only the arguments before it may be options (parse them with
 * gpuh_cli_parse() given the returned index as its argc).
 *
 * Returns: the index of VMNAME in @argv (>= 1), or -1 when the arguments do not end that way.
 */
int gpuh_cli_libvirt_vmname(int argc, char **argv);

/** gpuh_cli_help: the --help text, to stdout. */
void gpuh_cli_help(const struct gpuh_tool *t);

/** gpuh_cli_man: the man page (roff, man(7) macros, section 1), to stdout. */
void gpuh_cli_man(const struct gpuh_tool *t);

/**
 * gpuh_cli_config_path:
 * @c: the shared options
 * Returns: --config, else $GPUHOOKS_CONFIG when set and non-empty, else NULL (the default
 *          path, which may be absent).
 */
const char *gpuh_cli_config_path(const struct gpuh_cli_common *c);

/**
 * gpuh_cli_usage_error:
 * @prog: program name
 * @fmt: printf format of what is wrong
 *
 * Prints "PROG: WHAT (see --help)" on stderr; in the JSON error form
 * (gpuh_cli_json_errors()) the object gpuh_error_to_json() makes of "WHAT (see --help)",
 * errno null, on stdout instead.
 *
 * Returns: GPUH_EXIT_USAGE, for `return gpuh_cli_usage_error(...)` in main.
 */
int gpuh_cli_usage_error(const char *prog, const char *fmt, ...) _printf_(2, 3);

/**
 * gpuh_cli_json_errors:
 *
 * Whether failures are reported in the JSON error form: gpuh_cli_parse() turns it on when
 * the tool has a --format option and its arguments (before a "--") say --format json (or
 * --format=json), so that even a usage error found before that option is read is reported
 * so (docs/errors.md). The agent's and libvirt's calls never do: their form is unchanged.
 */
bool gpuh_cli_json_errors(void);

/**
 * gpuh_cli_fail:
 * @prog: program name
 * @r: the negative errno of the failure
 * @msg: its one line; NULL means strerror(-@r)
 * @plan: what the run planned (--explain, --dry-run), or NULL; taken (put) in any case
 *
 * Reports a failure: "PROG: MSG" on stderr; in the JSON error form one line on stdout, the
 * object of gpuh_error_to_json() with @plan as its member "plan" when given.
 *
 * Returns: EXIT_FAILURE, for `return gpuh_cli_fail(...)` in main.
 */
int gpuh_cli_fail(const char *prog, int r, const char *msg, json_object *plan);
