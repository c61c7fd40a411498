/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_keys.c: the configuration file's keys. Every JSON object of the file has one table of
 * its keys (type, range, default, field or loader), and one loop reads them all: an unknown key,
 * a wrongly typed or out-of-range value is an error naming the file and the key.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_keys.h"
#include "macro.h"

int gpuh_config_fail(char **reterr, int r, const char *path, const char *fmt, ...)
{
        _cleanup_free_ char *what = NULL;
        va_list ap;

        if (!reterr)
                return r;
        va_start(ap, fmt);
        if (vasprintf(&what, fmt, ap) < 0)
                what = NULL;
        va_end(ap);
        if (asprintf(reterr, "%s: %s", path, what ? what : "error") < 0)
                *reterr = NULL;
        gpuh_config_one_line(*reterr);
        return r;
}

void gpuh_config_one_line(char *s)
{
        /* one line, whatever a key of the file holds ("unknown key 'a\nb'") */
        for (char *p = s; p && *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
}

/* Where a value is read: the dotted name of the object that holds it ("" at the top level,
 * "transformer.rules[2].match"), where the problem goes (NULL: nowhere) and where the
 * dotted name of the key it is about goes. */
struct gpuh_config_at {
        char **reterr;
        char *key;              /* GPUH_CONFIG_KEY_MAX bytes, or NULL */
        char prefix[96];        /* the longest: "transformer.rules[18446744073709551615].match" */
};

/*
 * -EBADMSG: the key @name of the object @at ("transformer.rules[0].match" + "name"; NULL: the
 * object @at itself) into @at->key, and the problem (printf @fmt) into @at->reterr.
 */
static int fail_key(const struct gpuh_config_at *at, const char *name, const char *fmt, ...) _printf_(3, 4);
static int fail_key(const struct gpuh_config_at *at, const char *name, const char *fmt, ...)
{
        va_list ap;

        if (at->key)
                snprintf(at->key, GPUH_CONFIG_KEY_MAX, "%s%s%s", at->prefix, *at->prefix && name ? "." : "",
                         name ? name : "");
        if (!at->reterr || *at->reterr)
                return -EBADMSG;
        va_start(ap, fmt);
        if (vasprintf(at->reterr, fmt, ap) < 0)
                *at->reterr = NULL;
        va_end(ap);
        gpuh_config_one_line(*at->reterr);
        return -EBADMSG;
}

/* -EBADMSG: key @name (NULL: the object itself) of @at, and what is wrong with it */
#define FAIL_KEY(at, name, ...) fail_key((at), (name), __VA_ARGS__)

/* The value of key @k in the struct @target its table fills. */
#define FIELD(target, k, type) ((type *) (void *) ((char *) (target) + (k)->offset))

/* @at's child object @name into @sub. */
static void at_child(const struct gpuh_config_at *at, const char *name, struct gpuh_config_at *sub)
{
        *sub = *at;
        snprintf(sub->prefix, sizeof(sub->prefix), "%.64s%s%.24s", at->prefix, *at->prefix ? "." : "", name);
}

/* @at's array @name, its element @i, into @sub ("transformer.rules[2]"). */
static void at_element(const struct gpuh_config_at *at, const char *name, size_t i, struct gpuh_config_at *sub)
{
        *sub = *at;
        snprintf(sub->prefix, sizeof(sub->prefix), "%.40s%s%.24s[%zu]", at->prefix, *at->prefix ? "." : "", name, i);
}

/* 4 lowercase hex digits */
static int parse_hex16(const char *s, uint16_t *ret)
{
        if (strlen(s) != 4 || strspn(s, "0123456789abcdef") != 4)
                return -EINVAL;
        *ret = (uint16_t) strtoul(s, NULL, 16);
        return 0;
}

/* The element parsers of load_strings(): 0, -EINVAL (the element is wrong), -ENOMEM. */
static int parse_vendor(const char *s, void *ret)
{
        return parse_hex16(s, ret);
}

static int parse_pci_addr(const char *s, void *ret)
{
        return gpuh_pci_addr_parse(s, ret) < 0 ? -EINVAL : 0;
}

static int parse_abs_dir(const char *s, void *ret)
{
        if (s[0] != '/')
                return -EINVAL;
        *(char **) ret = strdup(s);
        return *(char **) ret ? 0 : -ENOMEM;
}

/* state_change.keep_vfio: "vvvv:dddd" or "vvvv:*" */
static int parse_keep_vfio(const char *s, void *ret)
{
        struct gpuh_keep_vfio *k = ret;
        char ven[5] = "", dev[5] = "";
        uint16_t d;

        if (strlen(s) == 9 && s[4] == ':') {
                memcpy(ven, s, 4);
                memcpy(dev, s + 5, 4);
        } else if (strlen(s) == 6 && s[4] == ':' && s[5] == '*')
                memcpy(ven, s, 4);
        if (parse_hex16(ven, &k->vendor) < 0 || (dev[0] && parse_hex16(dev, &d) < 0))
                return -EINVAL;
        k->device = dev[0] ? (int) d : -1;
        return 0;
}

int gpuh_config_parse_method(json_object *v, char **ret)
{
        const char *m;

        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        m = json_object_get_string(v);
        if (!*m || m[0] == '-' || strlen(m) > 64 ||
            strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(m))
                return -EBADMSG;
        free(*ret);
        *ret = strdup(m);
        return *ret ? 0 : -ENOMEM;
}

/*
 * Key @k of @at, an array of strings, each parsed by @parse into one @size-byte element of a
 * new array of n + 1 zeroed elements (NULL-terminated for pointers). *@ret holds it at once, so
 * that gpuh_config_free() frees what was read if an element fails; *@ret_n is set at the end.
 */
static int load_strings(const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at,
                        size_t size, int (*parse)(const char *s, void *ret), const char *what,
                        void **ret, size_t *ret_n)
{
        char *arr;
        size_t n;

        if (!json_object_is_type(v, json_type_array))
                return FAIL_KEY(at, k->name, "must be an array");
        n = json_object_array_length(v);
        arr = calloc(n + 1, size);
        if (!arr)
                return -ENOMEM;
        *ret = arr;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(v, i);
                int r = json_object_is_type(e, json_type_string) ? parse(json_object_get_string(e), arr + i * size)
                                                                 : -EINVAL;
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        char name[48];

                        snprintf(name, sizeof(name), "%.24s[%zu]", k->name, i);
                        return FAIL_KEY(at, name, "must be %s", what);
                }
        }
        if (ret_n)
                *ret_n = n;
        return 0;
}

/* The loaders of the keys that are not a plain bool, int or glob (GPUH_CONFIG_CUSTOM). */
typedef int load_fn(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at);
static load_fn load_section, load_state_change, load_vendors, load_exclude, load_uri, load_xml_dirs, load_rules,
        load_managed, load_method, load_keep_vfio, load_match, load_requests, load_resource_tag, load_layouts,
        load_layout_match, load_layout_profiles, load_layout_address, load_layout_id, load_layout_profile_name;

#define IGNORED(n) { .name = (n), .type = GPUH_CONFIG_IGNORED }
#define CUSTOM(n, fn) { .name = (n), .type = GPUH_CONFIG_CUSTOM, .load = (fn) }
#define CUSTOM_AT(n, s, f, fn) { .name = (n), .type = GPUH_CONFIG_CUSTOM, .offset = offsetof(s, f), .load = (fn) }
#define BOOL(n, f, d) { .name = (n), .type = GPUH_CONFIG_BOOL, .offset = offsetof(struct gpuh_config, f), .def = (d) }
#define INT(n, f, lo, hi, d) { .name = (n), .type = GPUH_CONFIG_INT, .offset = offsetof(struct gpuh_config, f), \
                               .min = (lo), .max = (hi), .def = (d) }
#define GLOB(n, f) { .name = (n), .type = GPUH_CONFIG_GLOB, .offset = offsetof(struct gpuh_rule_match, f) }
#define BOOL_AT(n, s, f, d) { .name = (n), .type = GPUH_CONFIG_BOOL, .offset = offsetof(s, f), .def = (d) }
#define INT_AT(n, s, f, lo, hi, d) { .name = (n), .type = GPUH_CONFIG_INT, .offset = offsetof(s, f), \
                                     .min = (lo), .max = (hi), .def = (d) }

/* In the order they are read (the first error found is the one reported). */
static const struct gpuh_config_key root_keys[] = {
        IGNORED("$schema"),
        CUSTOM("discovery", load_section),
        CUSTOM("libvirt", load_section),
        CUSTOM("transformer", load_section),
        CUSTOM("state_change", load_state_change),
        CUSTOM("layouts", load_layouts),
};

static const struct gpuh_config_key discovery_keys[] = {
        CUSTOM("extra_gpu_vendors", load_vendors),
        BOOL("passthrough_boot_vga", passthrough_boot_vga, false),
        CUSTOM("exclude_passthrough", load_exclude),
};

static const struct gpuh_config_key libvirt_keys[] = {
        CUSTOM_AT("uri", struct gpuh_config, libvirt_uri, load_uri),
        INT("timeout_ms", libvirt_timeout_ms, 1, 60000, 10000),
        CUSTOM("domain_xml_dirs", load_xml_dirs),
};

static const struct gpuh_config_key transformer_keys[] = {
        BOOL("allow_mixed", allow_mixed, false),
        INT("reservation_ttl_s", reservation_ttl_s, 10, 86400, 600),
        CUSTOM("managed", load_managed),
        CUSTOM("rules", load_rules),
};

static const struct gpuh_config_key state_change_keys[] = {
        CUSTOM_AT("on_start_method", struct gpuh_config, on_start_method, load_method),
        CUSTOM_AT("on_stop_method", struct gpuh_config, on_stop_method, load_method),
        INT("write_timeout_ms", write_timeout_ms, 100, 600000, 10000),
        INT("lock_timeout_ms", lock_timeout_ms, 100, 600000, 10000),
        INT("nvidia_mdev_grace_ms", nvidia_mdev_grace_ms, 0, 60000, 10000),
        INT("reconcile_min_age_s", reconcile_min_age_s, 0, 86400, 120),
        INT("prepare_timeout_ms", prepare_timeout_ms, 1000, 3600000, 120000),
        BOOL("enable_sriov", enable_sriov, false),
        CUSTOM("keep_vfio", load_keep_vfio),
};

/* Both required. */
static const struct gpuh_config_key rule_keys[] = {
        CUSTOM_AT("match", struct gpuh_rule, match, load_match),
        CUSTOM("requests", load_requests),
};

static const struct gpuh_config_key match_keys[] = {
        GLOB("name", name),
        GLOB("service_offering", service_offering),
        GLOB("host_tag", host_tag),
        GLOB("account", account),
        GLOB("domain", domain),
        GLOB("project", project),
        GLOB("zone", zone),
        CUSTOM("resource_tag", load_resource_tag),
};

/* layouts[]: "match" and "profiles" required; "mig" false: the profiles are MIG-backed only
 * where MIG mode is on already (docs/layouts.md, "MIG-backed profiles") */
static const struct gpuh_config_key layout_keys[] = {
        CUSTOM_AT("match", struct gpuh_layout, match, load_layout_match),
        CUSTOM("profiles", load_layout_profiles),
        BOOL_AT("mig", struct gpuh_layout, mig, false),
};

/* layouts[].match: "address" alone, or "vendor" and "device" (subsystem ids optional) */
static const struct gpuh_config_key layout_match_keys[] = {
        CUSTOM_AT("address", struct gpuh_layout_match, address_text, load_layout_address),
        CUSTOM_AT("vendor", struct gpuh_layout_match, vendor, load_layout_id),
        CUSTOM_AT("device", struct gpuh_layout_match, device, load_layout_id),
        CUSTOM_AT("subsystem_vendor", struct gpuh_layout_match, subsystem_vendor, load_layout_id),
        CUSTOM_AT("subsystem_device", struct gpuh_layout_match, subsystem_device, load_layout_id),
};

/* layouts[].profiles[]: "profile" required; "count" 0 (or absent): the most that fits */
static const struct gpuh_config_key layout_profile_keys[] = {
        CUSTOM_AT("profile", struct gpuh_layout_profile, profile, load_layout_profile_name),
        INT_AT("count", struct gpuh_layout_profile, count, 0, GPUH_LAYOUT_MAX_COUNT, 0),
};

enum { SEC_ROOT, SEC_DISCOVERY, SEC_LIBVIRT, SEC_TRANSFORMER, SEC_STATE_CHANGE, SEC_RULE, SEC_MATCH, SEC_LAYOUT,
       SEC_LAYOUT_MATCH, SEC_LAYOUT_PROFILE, _SEC_MAX };

#define SECTION(n, t, c) { .name = (n), .keys = (t), .n_keys = ARRAY_SIZE(t), .in_config = (c) }
static const struct gpuh_config_section sections[_SEC_MAX] = {
        [SEC_ROOT] = SECTION("", root_keys, true),
        [SEC_DISCOVERY] = SECTION("discovery", discovery_keys, true),
        [SEC_LIBVIRT] = SECTION("libvirt", libvirt_keys, true),
        [SEC_TRANSFORMER] = SECTION("transformer", transformer_keys, true),
        [SEC_STATE_CHANGE] = SECTION("state_change", state_change_keys, true),
        [SEC_RULE] = SECTION("transformer.rules[]", rule_keys, false),
        [SEC_MATCH] = SECTION("transformer.rules[].match", match_keys, false),
        [SEC_LAYOUT] = SECTION("layouts[]", layout_keys, false),
        [SEC_LAYOUT_MATCH] = SECTION("layouts[].match", layout_match_keys, false),
        [SEC_LAYOUT_PROFILE] = SECTION("layouts[].profiles[]", layout_profile_keys, false),
};

const struct gpuh_config_section *gpuh_config_sections(size_t *ret_n)
{
        *ret_n = ARRAY_SIZE(sections);
        return sections;
}

static const struct gpuh_config_key *find_key(const struct gpuh_config_section *s, const char *name)
{
        for (size_t i = 0; i < s->n_keys; i++)
                if (streq(s->keys[i].name, name))
                        return &s->keys[i];
        return NULL;
}

static int load_value(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        int64_t t;
        char **s;

        switch (k->type) {
        case GPUH_CONFIG_IGNORED:
                return 0;
        case GPUH_CONFIG_BOOL:
                if (!json_object_is_type(v, json_type_boolean))
                        return FAIL_KEY(at, k->name, "must be true or false");
                *FIELD(target, k, bool) = json_object_get_boolean(v);
                return 0;
        case GPUH_CONFIG_INT:
                if (!json_object_is_type(v, json_type_int) || (t = json_object_get_int64(v)) < k->min || t > k->max)
                        return FAIL_KEY(at, k->name, "must be an integer from %" PRId64 " to %" PRId64, k->min,
                                        k->max);
                *FIELD(target, k, int) = (int) t;
                return 0;
        case GPUH_CONFIG_GLOB:
                if (!json_object_is_type(v, json_type_string) || !*json_object_get_string(v))
                        return FAIL_KEY(at, k->name, "must be a non-empty string");
                s = FIELD(target, k, char *);
                free(*s);
                *s = strdup(json_object_get_string(v));
                return *s ? 0 : -ENOMEM;
        case GPUH_CONFIG_CUSTOM:
                return k->load(target, k, v, at);
        }
        return -EINVAL;
}

/* The object @o, read by @s's table into @target: an unknown key first, then each key in order. */
static int load_keys(void *target, json_object *o, const struct gpuh_config_section *s, const struct gpuh_config_at *at)
{
        json_object_object_foreach(o, key, val) {
                (void) val;
                if (!find_key(s, key))
                        return FAIL_KEY(at, key, "unknown key");
        }
        for (size_t i = 0; i < s->n_keys; i++) {
                json_object *v;
                int r;

                if (!json_object_object_get_ex(o, s->keys[i].name, &v))
                        continue;
                r = load_value(target, &s->keys[i], v, at);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A top-level object ("discovery", ...), read by its section's table. */
static int load_section(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        struct gpuh_config_at sub;

        if (!json_object_is_type(v, json_type_object))
                return FAIL_KEY(at, k->name, "must be an object");
        at_child(at, k->name, &sub);
        for (size_t s = 0; s < ARRAY_SIZE(sections); s++)
                if (streq(sections[s].name, sub.prefix))
                        return load_keys(target, v, &sections[s], &sub);
        return -EINVAL;
}

static int load_state_change(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        struct gpuh_config *c = target;
        struct gpuh_config_at sub;
        int r = load_section(target, k, v, at);

        if (r < 0)
                return r;
        at_child(at, k->name, &sub);
        if (streq(c->on_start_method, c->on_stop_method) || streq(c->on_start_method, "reconcile") ||
            streq(c->on_stop_method, "reconcile"))
                return FAIL_KEY(&sub, streq(c->on_start_method, "reconcile") ? "on_start_method" : "on_stop_method",
                                "on_start_method and on_stop_method must differ from each other and from 'reconcile'");
        return 0;
}

static int load_vendors(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        struct gpuh_config *c = target;

        return load_strings(k, v, at, sizeof(uint16_t), parse_vendor, "4 lowercase hex digits",
                            (void **) &c->extra_gpu_vendors, &c->n_extra_gpu_vendors);
}

static int load_exclude(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        struct gpuh_config *c = target;

        return load_strings(k, v, at, sizeof(struct gpuh_pci_addr), parse_pci_addr, "a PCI address",
                            (void **) &c->exclude_passthrough, &c->n_exclude_passthrough);
}

static int load_uri(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        char **s = FIELD(target, k, char *);

        if (json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_string) || !*json_object_get_string(v))
                return FAIL_KEY(at, k->name, "must be a non-empty string or null");
        free(*s);
        *s = strdup(json_object_get_string(v));
        return *s ? 0 : -ENOMEM;
}

static int load_xml_dirs(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        struct gpuh_config *c = target;

        strv_free(c->domain_xml_dirs);          /* the defaults */
        c->domain_xml_dirs = NULL;
        return load_strings(k, v, at, sizeof(char *), parse_abs_dir, "an absolute path",
                            (void **) &c->domain_xml_dirs, NULL);
}

static int load_managed(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        struct gpuh_config *c = target;
        const char *m = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";

        if (!streq(m, "gpuhooks") && !streq(m, "libvirt"))
                return FAIL_KEY(at, k->name, "must be \"gpuhooks\" or \"libvirt\"");
        c->managed_by_libvirt = streq(m, "libvirt");
        return 0;
}

static int load_method(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        int r = gpuh_config_parse_method(v, FIELD(target, k, char *));

        if (r < 0 && r != -ENOMEM)
                return FAIL_KEY(at, k->name, "must be a name of 1 to 64 letters, digits and '_'");
        return r;
}

static int load_keep_vfio(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        struct gpuh_config *c = target;

        return load_strings(k, v, at, sizeof(struct gpuh_keep_vfio), parse_keep_vfio,
                            "\"vvvv:dddd\" or \"vvvv:*\" (lowercase hex)", (void **) &c->keep_vfio, &c->n_keep_vfio);
}

/* transformer.rules[i].match, into the rule @target */
static int load_match(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        struct gpuh_config_at sub;

        at_child(at, k->name, &sub);
        if (!json_object_is_type(v, json_type_object) || json_object_object_length(v) == 0)
                return FAIL_KEY(&sub, NULL, "must be a non-empty object");
        return load_keys(FIELD(target, k, struct gpuh_rule_match), v, &sections[SEC_MATCH], &sub);
}

static int load_resource_tag(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        struct gpuh_rule_match *m = target;
        size_t n = 0, cap;

        if (!json_object_is_type(v, json_type_object) || (cap = (size_t) json_object_object_length(v)) == 0)
                return FAIL_KEY(at, k->name, "must be a non-empty object");
        m->tag_keys = calloc(cap, sizeof(char *));
        m->tag_globs = calloc(cap, sizeof(char *));
        if (!m->tag_keys || !m->tag_globs)
                return -ENOMEM;
        json_object_object_foreach(v, key, glob) {
                if (!json_object_is_type(glob, json_type_string)) {
                        char name[128];

                        snprintf(name, sizeof(name), "%.24s.%.96s", k->name, key);
                        return FAIL_KEY(at, name, "must be a string");
                }
                m->tag_keys[n] = strdup(key);
                m->tag_globs[n] = strdup(json_object_get_string(glob));
                m->n_tags = ++n;
                if (!m->tag_keys[n - 1] || !m->tag_globs[n - 1])
                        return -ENOMEM;
        }
        return 0;
}

/* transformer.rules[i].requests (gpuh_requests_from_json()), into the rule @target */
static int load_requests(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        struct gpuh_rule *rule = target;
        _cleanup_free_ char *why = NULL;
        int r = gpuh_requests_from_json(v, &rule->requests, &rule->n_requests, &why);

        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                /* "requests[0].mode: what is wrong": the key, then the problem */
                const char *colon = why ? strstr(why, ": ") : NULL;
                char name[64];

                if (!colon)
                        return FAIL_KEY(at, k->name, "%s", why ? why : "invalid");
                snprintf(name, sizeof(name), "%.*s", (int) (colon - why), why);
                return FAIL_KEY(at, name, "%s", colon + 2);
        }
        return 0;
}

/* One rule: an object of 'match' and 'requests', both required. */
static int load_rule(struct gpuh_rule *rule, json_object *o, const struct gpuh_config_at *at)
{
        const struct gpuh_config_section *s = &sections[SEC_RULE];
        bool ok = json_object_is_type(o, json_type_object);

        if (ok) {
                json_object_object_foreach(o, key, val) {
                        (void) val;
                        ok = ok && find_key(s, key);
                }
        }
        for (size_t i = 0; ok && i < s->n_keys; i++)
                ok = json_object_object_get_ex(o, s->keys[i].name, NULL);
        if (!ok)
                return FAIL_KEY(at, NULL, "must be an object of 'match' and 'requests'");
        return load_keys(rule, o, s, at);
}

/* transformer.rules; on failure c->rules holds what was read so far (gpuh_config_free() frees it). */
static int load_rules(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        struct gpuh_config *c = target;
        size_t n;

        if (!json_object_is_type(v, json_type_array))
                return FAIL_KEY(at, k->name, "must be an array");
        n = json_object_array_length(v);
        c->rules = calloc(n + 1, sizeof(*c->rules));
        if (!c->rules)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct gpuh_config_at sub;
                int r;

                at_element(at, k->name, i, &sub);
                c->n_rules = i + 1;
                r = load_rule(&c->rules[i], json_object_array_get_idx(v, i), &sub);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- layouts ---- */

/* An object of exactly @s's keys, its required ones present (@required: a bitmask of @s's keys). */
static bool object_of(json_object *o, const struct gpuh_config_section *s, unsigned required)
{
        if (!json_object_is_type(o, json_type_object))
                return false;
        json_object_object_foreach(o, key, val) {
                (void) val;
                if (!find_key(s, key))
                        return false;
        }
        for (size_t i = 0; i < s->n_keys; i++)
                if (required & (1u << i) && !json_object_object_get_ex(o, s->keys[i].name, NULL))
                        return false;
        return true;
}

static int load_layout_address(void *target, const struct gpuh_config_key *k, json_object *v,
                               const struct gpuh_config_at *at)
{
        struct gpuh_layout_match *m = target;
        struct gpuh_pci_addr a;
        const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        char canon[GPUH_PCI_ADDR_MAX];

        /* the full form only, as sysfs spells it: "0000:3d:00.0" */
        if (gpuh_pci_addr_parse(s, &a) < 0 || !streq(gpuh_pci_addr_format(&a, canon), s))
                return FAIL_KEY(at, k->name, "must be a full PCI address ('0000:3d:00.0', lowercase)");
        m->address = a;
        free(m->address_text);
        m->address_text = strdup(s);
        return m->address_text ? 0 : -ENOMEM;
}

static int load_layout_id(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        uint16_t id;

        if (!json_object_is_type(v, json_type_string) || parse_hex16(json_object_get_string(v), &id) < 0)
                return FAIL_KEY(at, k->name, "must be 4 lowercase hex digits");
        *FIELD(target, k, int) = id;
        return 0;
}

static int load_layout_match(void *target, const struct gpuh_config_key *k, json_object *v,
                             const struct gpuh_config_at *at)
{
        struct gpuh_layout_match *m = FIELD(target, k, struct gpuh_layout_match);
        struct gpuh_config_at sub;
        int r;

        at_child(at, k->name, &sub);
        *m = (struct gpuh_layout_match) { .vendor = -1, .device = -1, .subsystem_vendor = -1, .subsystem_device = -1 };
        if (!json_object_is_type(v, json_type_object))
                return FAIL_KEY(&sub, NULL, "must be an object");
        r = load_keys(m, v, &sections[SEC_LAYOUT_MATCH], &sub);
        if (r < 0)
                return r;
        if (m->address_text ? m->vendor >= 0 || m->device >= 0 || m->subsystem_vendor >= 0 || m->subsystem_device >= 0
                            : m->vendor < 0 || m->device < 0)
                return FAIL_KEY(&sub, NULL, "must hold 'address' alone, or 'vendor' and 'device' (and optionally "
                            "'subsystem_vendor', 'subsystem_device')");
        return 0;
}

static int load_layout_profile_name(void *target, const struct gpuh_config_key *k, json_object *v,
                                    const struct gpuh_config_at *at)
{
        char **s = FIELD(target, k, char *);
        const char *p = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        bool ok = *p && strlen(p) <= GPUH_LAYOUT_PROFILE_MAX;

        for (const char *c = p; ok && *c; c++)
                ok = (unsigned char) *c >= 0x20 && *c != 0x7f;
        if (!ok)
                return FAIL_KEY(at, k->name, "must be a vGPU profile name (1 to %d printable bytes)",
                            GPUH_LAYOUT_PROFILE_MAX);
        free(*s);
        *s = strdup(p);
        return *s ? 0 : -ENOMEM;
}

static int load_layout_profiles(void *target, const struct gpuh_config_key *k, json_object *v,
                                const struct gpuh_config_at *at)
{
        struct gpuh_layout *l = target;
        size_t n;

        if (!json_object_is_type(v, json_type_array) || (n = json_object_array_length(v)) == 0 ||
            n > GPUH_LAYOUT_MAX_PROFILES)
                return FAIL_KEY(at, k->name, "must be an array of 1 to %d profiles",
                               GPUH_LAYOUT_MAX_PROFILES);
        l->profiles = calloc(n + 1, sizeof(*l->profiles));
        if (!l->profiles)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct gpuh_config_at sub;
                json_object *e = json_object_array_get_idx(v, i);
                int r;

                at_element(at, k->name, i, &sub);
                l->n_profiles = i + 1;
                if (!object_of(e, &sections[SEC_LAYOUT_PROFILE], 1u << 0))
                        return FAIL_KEY(&sub, NULL, "must be an object of 'profile' and optionally 'count'");
                r = load_keys(&l->profiles[i], e, &sections[SEC_LAYOUT_PROFILE], &sub);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* "layouts"; on failure c->layouts holds what was read so far (gpuh_config_free() frees it). */
static int load_layouts(void *target, const struct gpuh_config_key *k, json_object *v, const struct gpuh_config_at *at)
{
        struct gpuh_config *c = target;
        size_t n;

        if (!json_object_is_type(v, json_type_array) || (n = json_object_array_length(v)) > GPUH_LAYOUT_MAX_ENTRIES)
                return FAIL_KEY(at, k->name, "must be an array of at most %d entries",
                               GPUH_LAYOUT_MAX_ENTRIES);
        c->layouts = calloc(n + 1, sizeof(*c->layouts));
        if (!c->layouts)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct gpuh_config_at sub;
                json_object *e = json_object_array_get_idx(v, i);
                int r;

                at_element(at, k->name, i, &sub);
                c->n_layouts = i + 1;
                c->layouts[i].match = (struct gpuh_layout_match) { .vendor = -1, .device = -1, .subsystem_vendor = -1,
                                                                   .subsystem_device = -1 };
                if (!object_of(e, &sections[SEC_LAYOUT], 3u))
                        return FAIL_KEY(&sub, NULL, "must be an object of 'match', 'profiles' and optionally 'mig'");
                r = load_keys(&c->layouts[i], e, &sections[SEC_LAYOUT], &sub);
                if (r < 0)
                        return r;
                for (size_t p = 0; p < i; p++) {
                        const struct gpuh_layout_match *a = &c->layouts[p].match, *b = &c->layouts[i].match;
                        if (a->address_text && b->address_text && streq(a->address_text, b->address_text))
                                return FAIL_KEY(&sub, "match", "matches the address of '%s[%zu]' again", k->name, p);
                }
        }
        return 0;
}

void gpuh_config_set_defaults(struct gpuh_config *c)
{
        for (size_t s = 0; s < ARRAY_SIZE(sections); s++)
                for (size_t i = 0; sections[s].in_config && i < sections[s].n_keys; i++) {
                        const struct gpuh_config_key *k = &sections[s].keys[i];
                        if (k->type == GPUH_CONFIG_INT)
                                *FIELD(c, k, int) = (int) k->def;
                        else if (k->type == GPUH_CONFIG_BOOL)
                                *FIELD(c, k, bool) = k->def;
                }
}

int gpuh_config_load_root(struct gpuh_config *c, json_object *root, char ret_key[GPUH_CONFIG_KEY_MAX],
                          char **reterr)
{
        struct gpuh_config_at at = { .reterr = reterr, .key = ret_key };

        if (ret_key)
                *ret_key = '\0';
        if (!json_object_is_type(root, json_type_object))
                return FAIL_KEY(&at, NULL, "the top level must be an object");
        return load_keys(c, root, &sections[SEC_ROOT], &at);
}

int gpuh_config_load_match(struct gpuh_rule *rule, json_object *m, size_t idx)
{
        struct gpuh_config_at at = { 0 };

        snprintf(at.prefix, sizeof(at.prefix), "transformer.rules[%zu]", idx);
        return load_match(rule, &rule_keys[0], m, &at);
}

int gpuh_config_load_layouts(struct gpuh_config *c, json_object *v)
{
        struct gpuh_config_at at = { 0 };
        int r = load_layouts(c, &root_keys[ARRAY_SIZE(root_keys) - 1], v, &at);

        if (r < 0) {
                for (size_t i = 0; i < c->n_layouts; i++)
                        gpuh_layout_clear(&c->layouts[i]);
                free(c->layouts);
                c->layouts = NULL;
                c->n_layouts = 0;
        }
        return r;
}
