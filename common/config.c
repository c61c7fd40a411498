/* SPDX-License-Identifier: Apache-2.0 */
/* config.c: the configuration file: read, checked by config_keys.c's tables, or the defaults. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "config.h"
#include "config_keys.h"
#include "fileio.h"
#include "macro.h"

static void json_putp(json_object **o)
{
        if (*o)
                json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

int gpuh_config_new_default(struct gpuh_config **ret)
{
        struct gpuh_config *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        gpuh_config_set_defaults(c);
        c->on_start_method = strdup("onStart");
        c->on_stop_method = strdup("onStop");
        if (!c->on_start_method || !c->on_stop_method) {
                gpuh_config_free(c);
                return -ENOMEM;
        }
        c->domain_xml_dirs = calloc(3, sizeof(char *));
        if (!c->domain_xml_dirs ||
            !(c->domain_xml_dirs[0] = strdup("/run/libvirt/qemu")) ||
            !(c->domain_xml_dirs[1] = strdup("/etc/libvirt/qemu"))) {
                gpuh_config_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static void rule_clear(struct gpuh_rule *rule)
{
        struct gpuh_rule_match *m = &rule->match;

        free(m->name);
        free(m->service_offering);
        free(m->host_tag);
        free(m->account);
        free(m->domain);
        free(m->project);
        free(m->zone);
        for (size_t k = 0; k < m->n_tags; k++) {
                free(m->tag_keys[k]);
                free(m->tag_globs[k]);
        }
        free(m->tag_keys);
        free(m->tag_globs);
        gpuh_requests_free(rule->requests, rule->n_requests);
        *rule = (struct gpuh_rule) { 0 };
}

struct gpuh_config *gpuh_config_free(struct gpuh_config *c)
{
        if (!c)
                return NULL;
        free(c->extra_gpu_vendors);
        free(c->exclude_passthrough);
        free(c->libvirt_uri);
        free(c->on_start_method);
        free(c->on_stop_method);
        free(c->keep_vfio);
        strv_free(c->domain_xml_dirs);
        for (size_t i = 0; i < c->n_rules; i++)
                rule_clear(&c->rules[i]);
        free(c->rules);
        for (size_t i = 0; i < c->n_layouts; i++)
                gpuh_layout_clear(&c->layouts[i]);
        free(c->layouts);
        free(c);
        return NULL;
}

/* "line L, column C" of byte @off of @buf (both from 1; a column counts bytes) */
static void position(const char *buf, size_t off, unsigned *line, unsigned *col)
{
        *line = 1;
        *col = 1;
        for (size_t i = 0; i < off && buf[i]; i++) {
                if (buf[i] == '\n') {
                        (*line)++;
                        *col = 1;
                } else
                        (*col)++;
        }
}

static size_t skip_ws(const char *buf, size_t len, size_t i)
{
        while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
                i++;
        return i;
}

/*
 * The JSON value at byte @i of @buf, parsed by json-c's tokener (not strict: it stops at the
 * end of the value): its end into *@ret_end and, when @ret_string, the string it is (a key,
 * unescaped; caller frees). Returns 0; -EBADMSG (no value there).
 */
static int value_at(json_tokener *tok, const char *buf, size_t len, size_t i, size_t *ret_end, char **ret_string)
{
        json_object *o;

        json_tokener_reset(tok);
        o = json_tokener_parse_ex(tok, buf + i, (int) (len - i));
        if (json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret_end = i + json_tokener_get_parse_end(tok);
        if (ret_string) {
                *ret_string = json_object_is_type(o, json_type_string) ? strdup(json_object_get_string(o)) : NULL;
                json_object_put(o);
                return *ret_string ? 0 : -EBADMSG;
        }
        json_object_put(o);
        return 0;
}

/*
 * key_offset:
 * @buf, @len: a valid JSON document (the configuration file as it was read)
 * @key: a dotted key as config_keys.c names it ("transformer.rules[0].match.name"; "" for
 *       the document)
 *
 * Where @key is in @buf: walking the path from the top, each member name and each value
 * between is read with json-c's tokener (which gives where it ends), so the scan knows only
 * the structural characters { } [ ] : , of the levels on the path. The offset is that of the
 * key's name (an array element: its value); of the last key found when the path cannot be
 * followed further (a name holding a '.' of its own); of the last occurrence of a key json-c
 * kept when it appears twice. Bounded: each byte is read at most once per level of the path.
 *
 * Returns: the byte offset.
 */
static size_t key_offset(const char *buf, size_t len, const char *key)
{
        json_tokener *tok = json_tokener_new();
        size_t best = skip_ws(buf, len, 0), i = best;
        const char *k = key;

        if (!tok)
                return best;
        while (*k) {
                char name[GPUH_CONFIG_KEY_MAX];
                size_t n = strcspn(k, ".["), found_key = 0, found_val = 0;
                bool found = false;

                if (*k == '[') {
                        /* an array index */
                        char *end;
                        unsigned long idx = strtoul(k + 1, &end, 10);

                        if (*end != ']' || i >= len || buf[i] != '[')
                                break;
                        k = end + (end[1] == '.' ? 2 : 1);
                        i = skip_ws(buf, len, i + 1);
                        for (unsigned long e = 0; i < len && buf[i] != ']'; e++) {
                                size_t vend;

                                if (e == idx) {
                                        found = true;
                                        found_key = found_val = i;
                                        break;
                                }
                                if (value_at(tok, buf, len, i, &vend, NULL) < 0)
                                        break;
                                i = skip_ws(buf, len, vend);
                                if (i < len && buf[i] == ',')
                                        i = skip_ws(buf, len, i + 1);
                        }
                } else {
                        /* a member name */
                        snprintf(name, sizeof(name), "%.*s", (int) n, k);
                        k += n;
                        if (*k == '.')
                                k++;
                        if (i >= len || buf[i] != '{')
                                break;
                        i = skip_ws(buf, len, i + 1);
                        while (i < len && buf[i] == '"') {
                                _cleanup_free_ char *member = NULL;
                                size_t kend, vstart, vend;

                                if (value_at(tok, buf, len, i, &kend, &member) < 0)
                                        break;
                                vstart = skip_ws(buf, len, kend);
                                if (vstart >= len || buf[vstart] != ':')
                                        break;
                                vstart = skip_ws(buf, len, vstart + 1);
                                if (streq(member, name)) {
                                        found = true;
                                        found_key = i;
                                        found_val = vstart;
                                }
                                if (value_at(tok, buf, len, vstart, &vend, NULL) < 0)
                                        break;
                                i = skip_ws(buf, len, vend);
                                if (i < len && buf[i] == ',')
                                        i = skip_ws(buf, len, i + 1);
                        }
                }
                if (!found)
                        break;
                best = found_key;
                i = found_val;
        }
        json_tokener_free(tok);
        return best;
}

/* "FILE:LINE:COLUMN: key KEY: PROBLEM" (or without "key KEY: " for the top level) */
static int fail_at(char **reterr, int r, const char *path, const char *buf, size_t len, const char *key,
                   const char *problem)
{
        unsigned line, col;

        position(buf, key_offset(buf, len, key), &line, &col);
        if (!reterr)
                return r;
        if (asprintf(reterr, "%s:%u:%u: %s%s%s%s", path, line, col, *key ? "key " : "", key, *key ? ": " : "",
                     problem ? problem : "invalid") < 0)
                *reterr = NULL;
        gpuh_config_one_line(*reterr);
        return r;
}

/* The file as JSON: *@ret_root NULL when it is absent and may be. *@ret_buf holds its bytes. */
static int parse_file(const char *path, bool must_exist, json_object **ret_root, char **ret_buf, size_t *ret_len,
                      char **reterr)
{
        _cleanup_free_ char *buf = NULL;
        json_object *root;
        json_tokener *tok;
        enum json_tokener_error jerr;
        size_t len = 0, end;
        unsigned line, col;
        int r;

        *ret_root = NULL;
        r = gpuh_read_file_at(AT_FDCWD, path, GPUH_CONFIG_MAX_BYTES, &buf, &len);
        if (r == -ENOENT && !must_exist)
                return 0;
        if (r == -EISDIR)
                return gpuh_config_fail(reterr, -EINVAL, path, "not a regular file");
        if (r == -E2BIG)
                return gpuh_config_fail(reterr, r, path, "larger than %u bytes", GPUH_CONFIG_MAX_BYTES);
        if (r < 0)
                return gpuh_config_fail(reterr, r, path, "%s", strerror(-r));

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, buf, (int) len);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!root || jerr != json_tokener_success || buf[end + strspn(buf + end, " \t\r\n")]) {
                /* json_tokener_continue: the document ended before the value did */
                const char *msg = !root && (jerr == json_tokener_success || jerr == json_tokener_continue) ?
                                  "incomplete document" :
                                  jerr != json_tokener_success ? json_tokener_error_desc(jerr) :
                                  "trailing content after the JSON value";
                if (root)
                        json_object_put(root);
                if (jerr == json_tokener_success && root)
                        end += strspn(buf + end, " \t\r\n");
                position(buf, end, &line, &col);
                if (reterr && asprintf(reterr, "%s:%u:%u: not valid JSON: %s", path, line, col, msg) < 0)
                        *reterr = NULL;
                gpuh_config_one_line(reterr ? *reterr : NULL);
                return -EBADMSG;
        }
        *ret_root = root;
        *ret_buf = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* The file into @c: parse_file(), then the key tables; a problem with a key is named with
 * its position. */
static int load_file(struct gpuh_config *c, const char *path, bool must_exist, json_object **ret_root, char **reterr)
{
        _cleanup_free_ char *buf = NULL, *problem = NULL;
        char key[GPUH_CONFIG_KEY_MAX] = "";
        size_t len = 0;
        int r;

        r = parse_file(path, must_exist, ret_root, &buf, &len, reterr);
        if (r < 0 || !*ret_root)
                return r;
        r = gpuh_config_load_root(c, *ret_root, key, &problem);
        if (r == -ENOMEM || r == 0)
                return r;
        return fail_at(reterr, r, path, buf, len, key, problem);
}

int gpuh_config_load(const char *path, bool must_exist, struct gpuh_config **ret, char **reterr)
{
        _cleanup_(gpuh_config_freep) struct gpuh_config *c = NULL;
        _cleanup_json_ json_object *root = NULL;
        int r;

        if (reterr)
                *reterr = NULL;
        if (!path)
                path = GPUH_CONFIG_DEFAULT_PATH;
        r = gpuh_config_new_default(&c);
        if (r < 0)
                return r;
        r = load_file(c, path, must_exist, &root, reterr);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

/* From a broken file: every transformer.rules entry whose match is valid, with its requests
 * when they are valid too (else none). A domain such a rule matches is known to want GPUs, and
 * is refused rather than started without them; an entry whose match is broken matches nothing. */
static int salvage_rules(struct gpuh_config *c, json_object *v)
{
        size_t n;

        if (!json_object_is_type(v, json_type_array))
                return 0;
        n = json_object_array_length(v);
        c->rules = calloc(n + 1, sizeof(*c->rules));
        if (!c->rules)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *rule = json_object_array_get_idx(v, i), *m, *reqs;
                struct gpuh_rule *x = &c->rules[c->n_rules];
                _cleanup_free_ char *why = NULL;
                int r;

                if (!json_object_is_type(rule, json_type_object) || !json_object_object_get_ex(rule, "match", &m))
                        continue;
                r = gpuh_config_load_match(x, m, i);
                if (r == -ENOMEM) {
                        rule_clear(x);
                        return r;
                }
                if (r < 0) {
                        rule_clear(x);
                        continue;
                }
                c->n_rules++;
                if (json_object_object_get_ex(rule, "requests", &reqs) &&
                    gpuh_requests_from_json(reqs, &x->requests, &x->n_requests, &why) == -ENOMEM)
                        return -ENOMEM;
        }
        return 0;
}

/* From a file that failed to load: its transformer.rules (salvage_rules()), its CloudStack
 * method names when valid, and its layouts when they are all valid (the slots CloudStack was
 * shown keep their addresses: a typo elsewhere must not send them to Error); anything else
 * stays at its default. */
static int salvage(struct gpuh_config *c, json_object *root)
{
        json_object *o, *v;
        int r;

        if (!root || !json_object_is_type(root, json_type_object))
                return 0;
        if (json_object_object_get_ex(root, "transformer", &o) && json_object_is_type(o, json_type_object) &&
            json_object_object_get_ex(o, "rules", &v) && (r = salvage_rules(c, v)) < 0)
                return r;
        if (json_object_object_get_ex(root, "layouts", &v) && gpuh_config_load_layouts(c, v) == -ENOMEM)
                return -ENOMEM;
        if (json_object_object_get_ex(root, "state_change", &o) && json_object_is_type(o, json_type_object)) {
                _cleanup_free_ char *start = NULL, *stop = NULL;

                r = json_object_object_get_ex(o, "on_start_method", &v) ? gpuh_config_parse_method(v, &start) : 0;
                if (r == 0 && json_object_object_get_ex(o, "on_stop_method", &v))
                        r = gpuh_config_parse_method(v, &stop);
                if (r == -ENOMEM)
                        return r;
                if (r == 0 && (start || stop)) {
                        const char *s1 = start ? start : c->on_start_method, *s2 = stop ? stop : c->on_stop_method;

                        if (!streq(s1, s2) && !streq(s1, "reconcile") && !streq(s2, "reconcile")) {
                                if (start) {
                                        free(c->on_start_method);
                                        c->on_start_method = TAKE_PTR(start);
                                }
                                if (stop) {
                                        free(c->on_stop_method);
                                        c->on_stop_method = TAKE_PTR(stop);
                                }
                        }
                }
        }
        return 0;
}

int gpuh_config_load_or_default(const char *path, bool must_exist, struct gpuh_config **ret, char **ret_error)
{
        _cleanup_(gpuh_config_freep) struct gpuh_config *c = NULL;
        _cleanup_json_ json_object *root = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        *ret_error = NULL;
        if (!path)
                path = GPUH_CONFIG_DEFAULT_PATH;
        r = gpuh_config_new_default(&c);
        if (r < 0)
                return r;
        r = load_file(c, path, must_exist, &root, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                /* what load_root() filled in so far is dropped: defaults, and what salvage() finds */
                c = gpuh_config_free(c);
                r = gpuh_config_new_default(&c);
                if (r == 0)
                        r = salvage(c, root);
                if (r < 0)
                        return r;
                if (!err && asprintf(&err, "%s: unusable", path) < 0)
                        return -ENOMEM;
                *ret_error = TAKE_PTR(err);
        }
        *ret = TAKE_PTR(c);
        return 0;
}

bool gpuh_config_keep_vfio(const struct gpuh_config *c, uint16_t vendor, uint16_t device)
{
        for (size_t i = 0; c && i < c->n_keep_vfio; i++)
                if (c->keep_vfio[i].vendor == vendor && (c->keep_vfio[i].device < 0 || c->keep_vfio[i].device == device))
                        return true;
        return false;
}

bool gpuh_config_is_extra_vendor(const struct gpuh_config *c, uint16_t vendor)
{
        for (size_t i = 0; c && i < c->n_extra_gpu_vendors; i++)
                if (c->extra_gpu_vendors[i] == vendor)
                        return true;
        return false;
}

bool gpuh_config_excludes_passthrough(const struct gpuh_config *c, const struct gpuh_pci_addr *a)
{
        for (size_t i = 0; c && i < c->n_exclude_passthrough; i++)
                if (gpuh_pci_addr_cmp(&c->exclude_passthrough[i], a) == 0)
                        return true;
        return false;
}
