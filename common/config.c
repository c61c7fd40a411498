/* SPDX-License-Identifier: Apache-2.0 */
/* config.c: loading and checking the configuration file with json-c. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "config.h"
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
        c->libvirt_timeout_ms = 10000;
        c->reservation_ttl_s = 600;
        c->write_timeout_ms = 10000;
        c->lock_timeout_ms = 10000;
        c->nvidia_mdev_grace_ms = 10000;
        c->reconcile_min_age_s = 120;
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
        for (size_t i = 0; i < c->n_rules; i++) {
                struct gpuh_rule_match *m = &c->rules[i].match;
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
                gpuh_requests_free(c->rules[i].requests, c->rules[i].n_requests);
        }
        free(c->rules);
        free(c);
        return NULL;
}

static int fail(char **reterr, int r, const char *path, const char *fmt, ...) _printf_(4, 5);
static int fail(char **reterr, int r, const char *path, const char *fmt, ...)
{
        _cleanup_free_ char *what = NULL;
        va_list ap;

        if (!reterr)
                return r;
        va_start(ap, fmt);
        if (vasprintf(&what, fmt, ap) < 0)
                what = NULL;
        va_end(ap);
        if (asprintf(reterr, "config '%s': %s", path, what ? what : "error") < 0)
                *reterr = NULL;
        /* one line, whatever a key of the file holds ("unknown key 'a\nb'") */
        for (char *p = *reterr; p && *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        return r;
}

static int check_keys(json_object *o, const char *const *allowed, const char **ret_bad)
{
        json_object_object_foreach(o, key, val) {
                bool ok = false;
                (void) val;
                for (const char *const *a = allowed; *a; a++)
                        if (streq(*a, key))
                                ok = true;
                if (!ok) {
                        *ret_bad = key;
                        return -EBADMSG;
                }
        }
        return 0;
}

static int parse_hex16(const char *s, uint16_t *ret)
{
        unsigned v = 0;

        if (strlen(s) != 4)
                return -EINVAL;
        for (int i = 0; i < 4; i++) {
                char ch = s[i];
                unsigned d;
                if (ch >= '0' && ch <= '9')
                        d = (unsigned) (ch - '0');
                else if (ch >= 'a' && ch <= 'f')
                        d = (unsigned) (ch - 'a' + 10);
                else
                        return -EINVAL;
                v = v << 4 | d;
        }
        *ret = (uint16_t) v;
        return 0;
}

static int load_discovery(struct gpuh_config *c, json_object *o, const char *path, char **reterr)
{
        static const char *const keys[] = { "extra_gpu_vendors", "passthrough_boot_vga",
                                             "exclude_passthrough", NULL };
        json_object *v;
        const char *bad;

        if (!json_object_is_type(o, json_type_object))
                return fail(reterr, -EBADMSG, path, "'discovery' must be an object");
        if (check_keys(o, keys, &bad) < 0)
                return fail(reterr, -EBADMSG, path, "unknown key 'discovery.%s'", bad);
        if (json_object_object_get_ex(o, "extra_gpu_vendors", &v)) {
                size_t n;
                if (!json_object_is_type(v, json_type_array))
                        return fail(reterr, -EBADMSG, path, "'discovery.extra_gpu_vendors' must be an array");
                n = json_object_array_length(v);
                c->extra_gpu_vendors = calloc(n + 1, sizeof(uint16_t));
                if (!c->extra_gpu_vendors)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        json_object *e = json_object_array_get_idx(v, i);
                        if (!json_object_is_type(e, json_type_string) ||
                            parse_hex16(json_object_get_string(e), &c->extra_gpu_vendors[i]) < 0)
                                return fail(reterr, -EBADMSG, path,
                                            "'discovery.extra_gpu_vendors[%zu]' must be 4 lowercase hex digits", i);
                }
                c->n_extra_gpu_vendors = n;
        }
        if (json_object_object_get_ex(o, "passthrough_boot_vga", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        return fail(reterr, -EBADMSG, path, "'discovery.passthrough_boot_vga' must be true or false");
                c->passthrough_boot_vga = json_object_get_boolean(v);
        }
        if (json_object_object_get_ex(o, "exclude_passthrough", &v)) {
                size_t n;
                if (!json_object_is_type(v, json_type_array))
                        return fail(reterr, -EBADMSG, path, "'discovery.exclude_passthrough' must be an array");
                n = json_object_array_length(v);
                c->exclude_passthrough = calloc(n + 1, sizeof(struct gpuh_pci_addr));
                if (!c->exclude_passthrough)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        json_object *e = json_object_array_get_idx(v, i);
                        if (!json_object_is_type(e, json_type_string) ||
                            gpuh_pci_addr_parse(json_object_get_string(e), &c->exclude_passthrough[i]) < 0)
                                return fail(reterr, -EBADMSG, path,
                                            "'discovery.exclude_passthrough[%zu]' must be a PCI address", i);
                }
                c->n_exclude_passthrough = n;
        }
        return 0;
}

static int load_libvirt(struct gpuh_config *c, json_object *o, const char *path, char **reterr)
{
        static const char *const keys[] = { "uri", "timeout_ms", "domain_xml_dirs", NULL };
        json_object *v;
        const char *bad;

        if (!json_object_is_type(o, json_type_object))
                return fail(reterr, -EBADMSG, path, "'libvirt' must be an object");
        if (check_keys(o, keys, &bad) < 0)
                return fail(reterr, -EBADMSG, path, "unknown key 'libvirt.%s'", bad);
        if (json_object_object_get_ex(o, "uri", &v) && !json_object_is_type(v, json_type_null)) {
                if (!json_object_is_type(v, json_type_string) || !*json_object_get_string(v))
                        return fail(reterr, -EBADMSG, path, "'libvirt.uri' must be a non-empty string or null");
                c->libvirt_uri = strdup(json_object_get_string(v));
                if (!c->libvirt_uri)
                        return -ENOMEM;
        }
        if (json_object_object_get_ex(o, "timeout_ms", &v)) {
                int64_t t;
                if (!json_object_is_type(v, json_type_int) ||
                    (t = json_object_get_int64(v)) < 1 || t > 60000)
                        return fail(reterr, -EBADMSG, path, "'libvirt.timeout_ms' must be an integer from 1 to 60000");
                c->libvirt_timeout_ms = (int) t;
        }
        if (json_object_object_get_ex(o, "domain_xml_dirs", &v)) {
                size_t n;
                char **dirs;
                if (!json_object_is_type(v, json_type_array))
                        return fail(reterr, -EBADMSG, path, "'libvirt.domain_xml_dirs' must be an array");
                n = json_object_array_length(v);
                dirs = calloc(n + 1, sizeof(char *));
                if (!dirs)
                        return -ENOMEM;
                strv_free(c->domain_xml_dirs);
                c->domain_xml_dirs = dirs;
                for (size_t i = 0; i < n; i++) {
                        json_object *e = json_object_array_get_idx(v, i);
                        if (!json_object_is_type(e, json_type_string) || json_object_get_string(e)[0] != '/')
                                return fail(reterr, -EBADMSG, path,
                                            "'libvirt.domain_xml_dirs[%zu]' must be an absolute path", i);
                        dirs[i] = strdup(json_object_get_string(e));
                        if (!dirs[i])
                                return -ENOMEM;
                }
        }
        return 0;
}

static int get_int(json_object *o, const char *key, int64_t lo, int64_t hi, int *ret)
{
        json_object *v;
        int64_t t;

        if (!json_object_object_get_ex(o, key, &v))
                return 0;
        if (!json_object_is_type(v, json_type_int) || (t = json_object_get_int64(v)) < lo || t > hi)
                return -EBADMSG;
        *ret = (int) t;
        return 0;
}

static int get_method(json_object *o, const char *key, char **ret)
{
        json_object *v;
        const char *m;

        if (!json_object_object_get_ex(o, key, &v))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        m = json_object_get_string(v);
        if (!*m || m[0] == '-' || strlen(m) > 64 || strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(m))
                return -EBADMSG;
        free(*ret);
        *ret = strdup(m);
        return *ret ? 0 : -ENOMEM;
}

static int load_state_change(struct gpuh_config *c, json_object *o, const char *path, char **reterr)
{
        static const char *const keys[] = { "on_start_method", "on_stop_method", "write_timeout_ms", "lock_timeout_ms",
                                             "enable_sriov", "keep_vfio", "nvidia_mdev_grace_ms", "reconcile_min_age_s",
                                             NULL };
        json_object *v;
        const char *bad;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return fail(reterr, -EBADMSG, path, "'state_change' must be an object");
        if (check_keys(o, keys, &bad) < 0)
                return fail(reterr, -EBADMSG, path, "unknown key 'state_change.%s'", bad);
        if ((r = get_method(o, "on_start_method", &c->on_start_method)) < 0 ||
            (r = get_method(o, "on_stop_method", &c->on_stop_method)) < 0)
                return r == -ENOMEM ? r : fail(reterr, r, path, "'state_change.on_start_method' and 'on_stop_method' must be "
                                               "names of letters, digits and '_'");
        if (streq(c->on_start_method, c->on_stop_method) || streq(c->on_start_method, "reconcile") ||
            streq(c->on_stop_method, "reconcile"))
                return fail(reterr, -EBADMSG, path, "'state_change.on_start_method' and 'on_stop_method' must differ "
                            "from each other and from 'reconcile'");
        if (get_int(o, "write_timeout_ms", 100, 600000, &c->write_timeout_ms) < 0)
                return fail(reterr, -EBADMSG, path, "'state_change.write_timeout_ms' must be an integer from 100 to 600000");
        if (get_int(o, "lock_timeout_ms", 100, 600000, &c->lock_timeout_ms) < 0)
                return fail(reterr, -EBADMSG, path, "'state_change.lock_timeout_ms' must be an integer from 100 to 600000");
        if (get_int(o, "nvidia_mdev_grace_ms", 0, 60000, &c->nvidia_mdev_grace_ms) < 0)
                return fail(reterr, -EBADMSG, path, "'state_change.nvidia_mdev_grace_ms' must be an integer from 0 to 60000");
        if (get_int(o, "reconcile_min_age_s", 0, 86400, &c->reconcile_min_age_s) < 0)
                return fail(reterr, -EBADMSG, path, "'state_change.reconcile_min_age_s' must be an integer from 0 to 86400");
        if (json_object_object_get_ex(o, "enable_sriov", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        return fail(reterr, -EBADMSG, path, "'state_change.enable_sriov' must be true or false");
                c->enable_sriov = json_object_get_boolean(v);
        }
        if (json_object_object_get_ex(o, "keep_vfio", &v)) {
                size_t n;
                if (!json_object_is_type(v, json_type_array))
                        return fail(reterr, -EBADMSG, path, "'state_change.keep_vfio' must be an array");
                n = json_object_array_length(v);
                c->keep_vfio = calloc(n + 1, sizeof(*c->keep_vfio));
                if (!c->keep_vfio)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        json_object *e = json_object_array_get_idx(v, i);
                        const char *t = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
                        char ven[5] = "", dev[5] = "";
                        uint16_t d;

                        if (strlen(t) == 9 && t[4] == ':') {
                                memcpy(ven, t, 4);
                                memcpy(dev, t + 5, 4);
                        } else if (strlen(t) == 6 && t[4] == ':' && t[5] == '*')
                                memcpy(ven, t, 4);
                        if (parse_hex16(ven, &c->keep_vfio[i].vendor) < 0 ||
                            (dev[0] && parse_hex16(dev, &d) < 0))
                                return fail(reterr, -EBADMSG, path,
                                            "'state_change.keep_vfio[%zu]' must be \"vvvv:dddd\" or \"vvvv:*\" (lowercase hex)", i);
                        c->keep_vfio[i].device = dev[0] ? (int) d : -1;
                }
                c->n_keep_vfio = n;
        }
        return 0;
}

bool gpuh_config_keep_vfio(const struct gpuh_config *c, uint16_t vendor, uint16_t device)
{
        for (size_t i = 0; c && i < c->n_keep_vfio; i++)
                if (c->keep_vfio[i].vendor == vendor && (c->keep_vfio[i].device < 0 || c->keep_vfio[i].device == device))
                        return true;
        return false;
}

static int load_match(struct gpuh_rule_match *m, json_object *o, size_t idx, const char *path, char **reterr)
{
        static const char *const keys[] = { "name", "service_offering", "host_tag", "resource_tag", "account",
                                            "domain", "project", "zone", NULL };
        struct { const char *key; char **field; } fields[] = {
                { "name", &m->name }, { "service_offering", &m->service_offering }, { "host_tag", &m->host_tag },
                { "account", &m->account }, { "domain", &m->domain }, { "project", &m->project }, { "zone", &m->zone },
        };
        json_object *v;
        const char *bad;

        if (!json_object_is_type(o, json_type_object) || json_object_object_length(o) == 0)
                return fail(reterr, -EBADMSG, path, "'transformer.rules[%zu].match' must be a non-empty object", idx);
        if (check_keys(o, keys, &bad) < 0)
                return fail(reterr, -EBADMSG, path, "unknown key 'transformer.rules[%zu].match.%s'", idx, bad);
        for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
                if (!json_object_object_get_ex(o, fields[i].key, &v))
                        continue;
                if (!json_object_is_type(v, json_type_string) || !*json_object_get_string(v))
                        return fail(reterr, -EBADMSG, path, "'transformer.rules[%zu].match.%s' must be a non-empty string",
                                    idx, fields[i].key);
                if (!(*fields[i].field = strdup(json_object_get_string(v))))
                        return -ENOMEM;
        }
        if (json_object_object_get_ex(o, "resource_tag", &v)) {
                size_t n = 0, cap;
                if (!json_object_is_type(v, json_type_object) || (cap = (size_t) json_object_object_length(v)) == 0)
                        return fail(reterr, -EBADMSG, path, "'transformer.rules[%zu].match.resource_tag' must be a non-empty object", idx);
                m->tag_keys = calloc(cap, sizeof(char *));
                m->tag_globs = calloc(cap, sizeof(char *));
                if (!m->tag_keys || !m->tag_globs)
                        return -ENOMEM;
                json_object_object_foreach(v, key, glob) {
                        if (!json_object_is_type(glob, json_type_string))
                                return fail(reterr, -EBADMSG, path, "'transformer.rules[%zu].match.resource_tag.%s' must be a string", idx, key);
                        m->tag_keys[n] = strdup(key);
                        m->tag_globs[n] = strdup(json_object_get_string(glob));
                        m->n_tags = ++n;
                        if (!m->tag_keys[n - 1] || !m->tag_globs[n - 1])
                                return -ENOMEM;
                }
        }
        return 0;
}

static int load_transformer(struct gpuh_config *c, json_object *o, const char *path, char **reterr)
{
        static const char *const keys[] = { "rules", "allow_mixed", "reservation_ttl_s", "managed", NULL };
        json_object *v;
        const char *bad;

        if (!json_object_is_type(o, json_type_object))
                return fail(reterr, -EBADMSG, path, "'transformer' must be an object");
        if (check_keys(o, keys, &bad) < 0)
                return fail(reterr, -EBADMSG, path, "unknown key 'transformer.%s'", bad);
        if (json_object_object_get_ex(o, "allow_mixed", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        return fail(reterr, -EBADMSG, path, "'transformer.allow_mixed' must be true or false");
                c->allow_mixed = json_object_get_boolean(v);
        }
        if (json_object_object_get_ex(o, "reservation_ttl_s", &v)) {
                int64_t t;
                if (!json_object_is_type(v, json_type_int) || (t = json_object_get_int64(v)) < 10 || t > 86400)
                        return fail(reterr, -EBADMSG, path, "'transformer.reservation_ttl_s' must be an integer from 10 to 86400");
                c->reservation_ttl_s = (int) t;
        }
        if (json_object_object_get_ex(o, "managed", &v)) {
                const char *m = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
                if (!streq(m, "gpuhooks") && !streq(m, "libvirt"))
                        return fail(reterr, -EBADMSG, path, "'transformer.managed' must be \"gpuhooks\" or \"libvirt\"");
                c->managed_by_libvirt = streq(m, "libvirt");
        }
        if (json_object_object_get_ex(o, "rules", &v)) {
                size_t n;
                if (!json_object_is_type(v, json_type_array))
                        return fail(reterr, -EBADMSG, path, "'transformer.rules' must be an array");
                n = json_object_array_length(v);
                c->rules = calloc(n + 1, sizeof(*c->rules));
                if (!c->rules)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        static const char *const rkeys[] = { "match", "requests", NULL };
                        json_object *rule = json_object_array_get_idx(v, i), *m, *reqs;
                        _cleanup_free_ char *why = NULL;
                        int r;

                        c->n_rules = i + 1;
                        if (!json_object_is_type(rule, json_type_object) || check_keys(rule, rkeys, &bad) < 0 ||
                            !json_object_object_get_ex(rule, "match", &m) ||
                            !json_object_object_get_ex(rule, "requests", &reqs))
                                return fail(reterr, -EBADMSG, path,
                                            "'transformer.rules[%zu]' must be an object of 'match' and 'requests'", i);
                        r = load_match(&c->rules[i].match, m, i, path, reterr);
                        if (r < 0)
                                return r;
                        r = gpuh_requests_from_json(reqs, &c->rules[i].requests, &c->rules[i].n_requests, &why);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return fail(reterr, -EBADMSG, path, "'transformer.rules[%zu].%s'", i, why ? why : "requests");
                }
        }
        return 0;
}

int gpuh_config_load(const char *path, bool must_exist, struct gpuh_config **ret, char **reterr)
{
        static const char *const keys[] = { "$schema", "discovery", "libvirt", "transformer", "state_change", NULL };
        _cleanup_(gpuh_config_freep) struct gpuh_config *c = NULL;
        _cleanup_free_ char *buf = NULL;
        _cleanup_json_ json_object *root = NULL;
        json_tokener *tok;
        enum json_tokener_error jerr;
        json_object *v;
        const char *bad;
        size_t len = 0, end;
        int r;

        if (reterr)
                *reterr = NULL;
        if (!path)
                path = GPUH_CONFIG_DEFAULT_PATH;
        r = gpuh_config_new_default(&c);
        if (r < 0)
                return r;
        r = gpuh_read_file_at(AT_FDCWD, path, GPUH_CONFIG_MAX_BYTES, &buf, &len);
        if (r == -ENOENT && !must_exist) {
                *ret = TAKE_PTR(c);
                return 0;
        }
        if (r == -EISDIR)
                return fail(reterr, -EINVAL, path, "not a regular file");
        if (r == -E2BIG)
                return fail(reterr, r, path, "larger than %u bytes", GPUH_CONFIG_MAX_BYTES);
        if (r < 0)
                return fail(reterr, r, path, "%s", strerror(-r));

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, buf, (int) len);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        if (!root || jerr != json_tokener_success || buf[end + strspn(buf + end, " \t\r\n")]) {
                const char *msg = !root && jerr == json_tokener_success ? "incomplete document" :
                                  jerr != json_tokener_success ? json_tokener_error_desc(jerr) :
                                  "trailing content after the JSON value";
                json_tokener_free(tok);
                return fail(reterr, -EBADMSG, path, "not valid JSON: %s", msg);
        }
        json_tokener_free(tok);

        if (!json_object_is_type(root, json_type_object))
                return fail(reterr, -EBADMSG, path, "top level must be an object");
        if (check_keys(root, keys, &bad) < 0)
                return fail(reterr, -EBADMSG, path, "unknown key '%s'", bad);
        if (json_object_object_get_ex(root, "discovery", &v) && (r = load_discovery(c, v, path, reterr)) < 0)
                return r;
        if (json_object_object_get_ex(root, "libvirt", &v) && (r = load_libvirt(c, v, path, reterr)) < 0)
                return r;
        if (json_object_object_get_ex(root, "transformer", &v) && (r = load_transformer(c, v, path, reterr)) < 0)
                return r;
        if (json_object_object_get_ex(root, "state_change", &v) && (r = load_state_change(c, v, path, reterr)) < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
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
