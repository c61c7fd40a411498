/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_keys.h: the configuration file's key tables and the loop that reads JSON by them
 * (config_keys.c), for config.c. The tables themselves: gpuh_config_sections() in config.h.
 */
#pragma once

#include <stddef.h>

#include <json-c/json.h>

#include "config.h"
#include "macro.h"

/* The longest dotted key name an error names ("transformer.rules[12].requests[0].mode"). */
#define GPUH_CONFIG_KEY_MAX 256

/**
 * gpuh_config_fail:
 * @reterr: receives "@path: <the formatted text>" (one line, caller frees); may be NULL
 *
 * Returns: @r.
 */
int gpuh_config_fail(char **reterr, int r, const char *path, const char *fmt, ...) _printf_(4, 5);

/** gpuh_config_one_line: control characters of @s (may be NULL) as '?', in place. */
void gpuh_config_one_line(char *s);

/** gpuh_config_set_defaults: the default of every integer and boolean key into @c. */
void gpuh_config_set_defaults(struct gpuh_config *c);

/**
 * gpuh_config_load_root:
 * @c: receives what @root sets (on failure, partly filled: gpuh_config_free() frees it)
 * @root: the parsed file
 * @ret_key: on failure the dotted name of the key the problem is about
 *           ("transformer.rules[0].match.name"; "" for the top level); may be NULL
 * @reterr: on failure what is wrong with it ("unknown key", "must be true or false"), one
 *          line, caller frees; may be NULL
 *
 * Returns: 0; -EBADMSG (not an object, an unknown key, a bad value); -ENOMEM.
 */
int gpuh_config_load_root(struct gpuh_config *c, json_object *root, char ret_key[GPUH_CONFIG_KEY_MAX],
                          char **reterr);

/**
 * gpuh_config_load_match:
 * @rule: receives transformer.rules[@idx].match @m (on failure, partly filled: rule_clear)
 *
 * Returns: 0; -EBADMSG (no message); -ENOMEM.
 */
int gpuh_config_load_match(struct gpuh_rule *rule, json_object *m, size_t idx);

/**
 * gpuh_config_load_layouts:
 * @c: receives "layouts" @v, all of it or nothing
 *
 * Returns: 0; -EBADMSG (no message; @c has no layout); -ENOMEM.
 */
int gpuh_config_load_layouts(struct gpuh_config *c, json_object *v);

/**
 * gpuh_config_parse_method:
 * @v: a CloudStack method name: 1 to 64 letters, digits and '_' (agent.properties'
 *     agent.hooks.libvirt_vm_on_start.method / _on_stop.method)
 * @ret: receives a copy (the old value freed)
 *
 * Returns: 0; -EBADMSG (not such a name; @ret untouched); -ENOMEM.
 */
int gpuh_config_parse_method(json_object *v, char **ret);
