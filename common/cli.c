/* SPDX-License-Identifier: Apache-2.0 */
/* cli.c: getopt, --help and the man page from one description of each tool. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "error_json.h"

/* the JSON error form (gpuh_cli_json_errors()) */
static bool json_errors;

bool gpuh_cli_json_errors(void)
{
        return json_errors;
}

/* @o as one line on stdout; puts it */
static void print_json_line(json_object *o)
{
        const char *s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                          : NULL;

        if (s)
                printf("%s\n", s);
        else
                printf("{\"error\": \"out of memory\", \"errno\": 12, \"device\": null}\n");
        fflush(stdout);
        json_object_put(o);
}

int gpuh_cli_usage_error(const char *prog, const char *fmt, ...)
{
        _cleanup_free_ char *what = NULL, *line = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&what, fmt, ap) < 0)
                what = NULL;
        va_end(ap);
        if (asprintf(&line, "%s (see --help)", what ? what : "bad arguments") < 0)
                line = NULL;
        if (json_errors)
                print_json_line(gpuh_error_to_json(line ? line : "bad arguments", 0));
        else
                fprintf(stderr, "%s: %s\n", prog, line ? line : "bad arguments");
        return GPUH_EXIT_USAGE;
}

int gpuh_cli_fail(const char *prog, int r, const char *msg, json_object *plan)
{
        json_object *o;

        if (!msg)
                msg = strerror(r < 0 ? -r : EIO);
        if (!json_errors) {
                json_object_put(plan);
                fprintf(stderr, "%s: %s\n", prog, msg);
                return EXIT_FAILURE;
        }
        o = gpuh_error_to_json(msg, r);
        if (o && plan)
                json_object_object_add(o, "plan", plan);
        else
                json_object_put(plan);
        print_json_line(o);
        return EXIT_FAILURE;
}

/* --format json anywhere before "--", for a tool that has --format */
static bool wants_json_errors(const struct gpuh_tool *t, int argc, char **argv)
{
        bool has = false;

        for (size_t i = 0; i < t->n_options; i++)
                has = has || streq(t->options[i].opt.name, "format");
        for (int i = 1; has && i < argc; i++) {
                if (streq(argv[i], "--"))
                        break;
                if (streq(argv[i], "--format=json") || (streq(argv[i], "--format") && i + 1 < argc &&
                                                        streq(argv[i + 1], "json")))
                        return true;
        }
        return false;
}

static void option_lhs(const struct gpuh_option *o, char *buf, size_t size)
{
        snprintf(buf, size, "%s--%s%s%s", o->opt.val == 'v' ? "-v, " : "    ", o->opt.name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
}

void gpuh_cli_help(const struct gpuh_tool *t)
{
        for (size_t i = 0; t->synopsis[i]; i++)
                printf("%s %s %s\n", i == 0 ? "Usage:" : "      ", t->name, t->synopsis[i]);
        printf("%c%s.\n\n%s\n\nOptions:\n", toupper((unsigned char) t->summary[0]), t->summary + 1, t->description);
        for (size_t i = 0; i < t->n_options; i++) {
                char lhs[64];

                if (t->options[i].hidden)
                        continue;
                option_lhs(&t->options[i], lhs, sizeof(lhs));
                printf("  %-28s %s\n", lhs, t->options[i].help);
        }
        printf("\nExit status: %s\n", t->exit_status);
}

/* Text as roff: backslashes escaped, a line starting with '.' or '\'' protected, paragraphs
 * (blank lines) as .PP; with @dashes, '-' as \- (option names). No newline at the end. */
static void roff_inline(const char *s, bool dashes)
{
        bool bol = true;

        for (; *s; s++) {
                if (bol && (*s == '.' || *s == '\''))
                        fputs("\\&", stdout);
                bol = false;
                if (*s == '\\')
                        fputs("\\e", stdout);
                else if (*s == '-' && dashes)
                        fputs("\\-", stdout);
                else if (*s == '\n' && s[1] == '\n') {
                        fputs("\n.PP\n", stdout);
                        s++;
                        bol = true;
                } else {
                        putchar(*s);
                        bol = *s == '\n';
                }
        }
}

static void roff(const char *s, bool dashes)
{
        roff_inline(s, dashes);
        putchar('\n');
}

/* "NAME\tmeaning" lines as .TP items */
static void roff_list(const char *s)
{
        while (s && *s) {
                const char *nl = strchr(s, '\n'), *tab;
                size_t len = nl ? (size_t) (nl - s) : strlen(s);
                char *line = strndup(s, len);

                if (!line)
                        return;
                tab = strchr(line, '\t');
                fputs(".TP\n.B ", stdout);
                if (tab) {
                        char *name = strndup(line, (size_t) (tab - line));
                        if (name)
                                roff(name, false);
                        free(name);
                        roff(tab + 1, false);
                } else
                        roff(line, false);
                free(line);
                s += len + (nl ? 1 : 0);
        }
}

void gpuh_cli_man(const struct gpuh_tool *t)
{
        char upper[64];
        size_t i;

        for (i = 0; t->name[i] && i < sizeof(upper) - 1; i++)
                upper[i] = (char) toupper((unsigned char) t->name[i]);
        upper[i] = '\0';
        printf(".TH %s 1 \"\" \"gpuhooks %s\" \"gpuhooks\"\n", upper, GPUH_VERSION);
        printf(".SH NAME\n");
        roff_inline(t->name, false);
        printf(" \\- ");
        roff(t->summary, false);
        printf(".SH SYNOPSIS\n");
        for (i = 0; t->synopsis[i]; i++) {
                printf("%s.B %s\n", i ? ".br\n" : "", t->name);
                roff(t->synopsis[i], false);
        }
        printf(".SH DESCRIPTION\n");
        roff(t->description, false);
        printf(".SH OPTIONS\n");
        for (i = 0; i < t->n_options; i++) {
                const struct gpuh_option *o = &t->options[i];

                if (o->hidden)
                        continue;
                printf(".TP\n");
                if (o->opt.val == 'v')
                        printf("\\fB\\-v\\fR, ");
                printf("\\fB\\-\\-");
                roff_inline(o->opt.name, true);
                if (o->arg) {
                        printf("\\fR \\fI");
                        roff_inline(o->arg, false);
                }
                printf("\\fR\n");
                roff(o->help, false);
        }
        printf(".SH \"EXIT STATUS\"\n");
        roff(t->exit_status, false);
        if (t->environment) {
                printf(".SH ENVIRONMENT\n");
                roff_list(t->environment);
        }
        if (t->files) {
                printf(".SH FILES\n");
                roff_list(t->files);
        }
        if (t->see_also) {
                printf(".SH \"SEE ALSO\"\n");
                roff(t->see_also, false);
        }
}

int gpuh_cli_libvirt_vmname(int argc, char **argv)
{
        static const char *const ops[] = { "prepare", "start", "started", "stopped", "release", "migrate",
                                           "restore", "reconnect", "attach", NULL };
        static const char *const subops[] = { "begin", "end", "-", NULL };
        bool op = false, sub = false;

        if (argc < 5)
                return -1;
        for (const char *const *p = ops; *p; p++)
                op = op || streq(*p, argv[argc - 3]);
        for (const char *const *p = subops; *p; p++)
                sub = sub || streq(*p, argv[argc - 2]);
        return op && sub ? argc - 4 : -1;
}

const char *gpuh_cli_config_path(const struct gpuh_cli_common *c)
{
        return c->config && *c->config ? c->config : NULL;
}

/* secure_getenv(3): nothing from the environment of a setuid caller; "" counts as unset. */
static const char *env(const char *name)
{
        const char *v = secure_getenv(name);

        return v && *v ? v : NULL;
}

/* What an option did not say, the environment may (the only environment reads of gpuhooks). */
void gpuh_cli_resolve_env(struct gpuh_cli_common *c)
{
        if (!c->config)
                c->config = env("GPUHOOKS_CONFIG");
        if (!c->sysfs_root)
                c->sysfs_root = env("GPUHOOKS_SYSFS_ROOT");
        if (!c->state_dir)
                c->state_dir = env("GPUHOOKS_STATE_DIR");
        c->xml_dirs_env = env("GPUHOOKS_DOMAIN_XML_DIRS");
        c->cache_dir = secure_getenv("GPUHOOKS_CACHE_DIR");      /* "": no cache, as --cache-dir "" */
        c->pci_ids = env("GPUHOOKS_PCI_IDS");
        c->dev_dir = env("GPUHOOKS_DEV_DIR");
        c->proc_root = env("GPUHOOKS_PROC_ROOT");
        if (!c->nvml_lib)
                c->nvml_lib = env("GPUHOOKS_NVML_LIB");
}

int gpuh_cli_parse(const struct gpuh_tool *t, int argc, char **argv, bool stop_at_positional,
                   struct gpuh_cli_common *c, int (*own)(int opt, const char *arg, void *data), void *data,
                   int *ret_optind)
{
        struct option *longopts = calloc(t->n_options + 1, sizeof(struct option));
        int ch, r = -1;

        if (!longopts)
                return gpuh_cli_usage_error(t->name, "out of memory");
        for (size_t i = 0; i < t->n_options; i++)
                longopts[i] = t->options[i].opt;
        opterr = 0;
        optind = 1;
        json_errors = wants_json_errors(t, argc, argv);
        while (r < 0 && (ch = getopt_long(argc, argv, stop_at_positional ? "+:v" : ":v", longopts, NULL)) != -1) {
                switch (ch) {
                case GPUH_OPT_CONFIG:
                        c->config = optarg;
                        break;
                case GPUH_OPT_SYSFS_ROOT:
                        c->sysfs_root = optarg;
                        break;
                case GPUH_OPT_STATE_DIR:
                        c->state_dir = optarg;
                        break;
                case GPUH_OPT_CONNECT:
                        c->connect = optarg;
                        break;
                case GPUH_OPT_NVML_LIB:
                        c->nvml_lib = optarg;
                        break;
                case GPUH_OPT_NO_LIBVIRT:
                        c->no_libvirt = true;
                        break;
                case GPUH_OPT_DOMAIN_XML_DIR: {
                        char **n = reallocarray(c->xml_dirs, c->n_xml_dirs + 2, sizeof(char *));
                        if (!n) {
                                r = gpuh_cli_usage_error(t->name, "out of memory");
                                break;
                        }
                        c->xml_dirs = n;
                        c->xml_dirs[c->n_xml_dirs++] = optarg;
                        c->xml_dirs[c->n_xml_dirs] = NULL;
                        break;
                }
                case 'v':
                        c->verbose = true;
                        break;
                case GPUH_OPT_HELP:
                        gpuh_cli_help(t);
                        r = EXIT_SUCCESS;
                        break;
                case GPUH_OPT_VERSION:
                        printf("%s (gpuhooks) %s\n", t->name, GPUH_VERSION);
                        r = EXIT_SUCCESS;
                        break;
                case GPUH_OPT_MAN:
                        gpuh_cli_man(t);
                        r = EXIT_SUCCESS;
                        break;
                case ':':
                        r = gpuh_cli_usage_error(t->name, "option '%s' needs an argument", argv[optind - 1]);
                        break;
                case '?':
                        r = gpuh_cli_usage_error(t->name, "unknown option '%s'", argv[optind - 1]);
                        break;
                default:
                        r = own ? own(ch, optarg, data) : gpuh_cli_usage_error(t->name, "unknown option '%s'",
                                                                               argv[optind - 1]);
                        break;
                }
        }
        free(longopts);
        *ret_optind = optind;
        if (r < 0)
                gpuh_cli_resolve_env(c);
        return r;
}
