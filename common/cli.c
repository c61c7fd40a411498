/* SPDX-License-Identifier: Apache-2.0 */
/* cli.c: getopt tables and --help lines from one options table. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

void gpuh_cli_longopts(const struct gpuh_option *o, size_t n, struct option *out)
{
        for (size_t i = 0; i < n; i++)
                out[i] = o[i].opt;
        memset(&out[n], 0, sizeof(*out));
}

void gpuh_cli_print_options(const struct gpuh_option *o, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                char lhs[64];

                snprintf(lhs, sizeof(lhs), "%s--%s%s%s", o[i].opt.val == 'v' ? "-v, " : "    ",
                         o[i].opt.name, o[i].arg ? " " : "", o[i].arg ? o[i].arg : "");
                printf("  %-28s %s\n", lhs, o[i].help);
        }
}

int gpuh_cli_usage_error(const char *prog, const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "%s: ", prog);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (see --help)\n");
        return GPUH_EXIT_USAGE;
}
