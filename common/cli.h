/* SPDX-License-Identifier: Apache-2.0 */
/* cli.h: the options table every tool builds getopt and --help from. */
#pragma once

#include <getopt.h>
#include <stddef.h>

#include "macro.h"

#define GPUH_EXIT_USAGE 2

struct gpuh_option {
        struct option opt;      /* getopt_long(3) entry; val 'v' also gives -v */
        const char *arg;        /* name of its argument for --help, NULL for none */
        const char *help;       /* one line */
};

/**
 * gpuh_cli_longopts:
 * @o, @n: the table
 * @out: receives @n entries and the terminating zero entry (@n + 1 in all)
 */
void gpuh_cli_longopts(const struct gpuh_option *o, size_t n, struct option *out);

/** gpuh_cli_print_options: the option lines of --help, aligned, to stdout. */
void gpuh_cli_print_options(const struct gpuh_option *o, size_t n);

/**
 * gpuh_cli_usage_error:
 * @prog: program name
 * @fmt: printf format of what is wrong
 *
 * Prints "PROG: WHAT (see --help)" on stderr.
 *
 * Returns: GPUH_EXIT_USAGE, for `return gpuh_cli_usage_error(...)` in main.
 */
int gpuh_cli_usage_error(const char *prog, const char *fmt, ...) _printf_(2, 3);
