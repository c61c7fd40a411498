/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_config_schema: the loader's key tables (gpuh_config_sections()) against
 * schemas/gpuhooks-config.schema.json: every key of the schema is accepted, every key the
 * loader accepts is in the schema, with the same types, ranges and defaults; and the loader
 * behaves as its tables say (ranges, types, unknown keys, the schema's defaults).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <inttypes.h>

#include <json-c/json.h>

#include "config.h"
#include "testutil.h"

static json_object *schema;

static int setup(void **state)
{
        const char *src = getenv("GPUH_TEST_SRCDIR");
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/schemas/gpuhooks-config.schema.json", src ? src : ".");
        schema = json_object_from_file(path);
        if (!schema) {
                fprintf(stderr, "%s: %s\n", path, json_util_get_last_err());
                return -1;
        }
        return tu_group_setup(state);
}

static int teardown(void **state)
{
        json_object_put(schema);
        return tu_group_teardown(state);
}

static json_object *get(json_object *o, const char *key)
{
        json_object *v = NULL;

        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* @o, or what its "$ref": "#/$defs/NAME" names */
static json_object *resolve(json_object *o)
{
        json_object *ref = get(o, "$ref");
        const char *r;

        if (!ref)
                return o;
        r = json_object_get_string(ref);
        if (!startswith(r, "#/$defs/"))
                fail_msg("unsupported $ref '%s'", r);
        return resolve(get(get(schema, "$defs"), r + strlen("#/$defs/")));
}

/* The schema's object for a section name: "" the top level, "a.b" nested, "a[]" the items of a. */
static json_object *schema_object(const char *section)
{
        json_object *node = schema;
        char buf[128], *save = NULL;

        snprintf(buf, sizeof(buf), "%s", section);
        for (char *c = strtok_r(buf, ".", &save); c; c = strtok_r(NULL, ".", &save)) {
                size_t l = strlen(c);
                bool items = l > 2 && streq(c + l - 2, "[]");

                if (items)
                        c[l - 2] = '\0';
                node = resolve(get(get(node, "properties"), c));
                if (items)
                        node = resolve(get(node, "items"));
                if (!node)
                        fail_msg("section '%s': '%s' is not in the schema", section, c);
        }
        return node;
}

static const char *type_of(json_object *prop)
{
        json_object *t = get(prop, "type");

        return t ? json_object_get_string(t) : "";
}

/* Both directions: the loader's keys are the schema's properties, type for type. */
static void test_keys_are_the_schema(void **state)
{
        size_t n;
        const struct gpuh_config_section *s = gpuh_config_sections(&n);

        assert_true(n >= 1);
        assert_string_equal(s[0].name, "");
        for (size_t i = 0; i < n; i++) {
                json_object *props = get(schema_object(s[i].name), "properties");

                assert_non_null(props);
                /* schema -> loader */
                json_object_object_foreach(props, key, val) {
                        bool found = false;

                        (void) val;
                        for (size_t k = 0; k < s[i].n_keys; k++)
                                found = found || streq(s[i].keys[k].name, key);
                        if (!found)
                                fail_msg("schema key '%s' in '%s' is not accepted by the loader", key, s[i].name);
                }
                /* loader -> schema */
                for (size_t k = 0; k < s[i].n_keys; k++) {
                        const struct gpuh_config_key *lk = &s[i].keys[k];
                        json_object *p = resolve(get(props, lk->name)), *d = get(p, "default");

                        if (!p)
                                fail_msg("loader key '%s' in '%s' is not in the schema", lk->name, s[i].name);
                        switch (lk->type) {
                        case GPUH_CONFIG_BOOL:
                                if (!streq(type_of(p), "boolean") || !d || json_object_get_boolean(d) != (lk->def != 0))
                                        fail_msg("'%s.%s': boolean, default %s, is not the schema's", s[i].name, lk->name,
                                                 lk->def ? "true" : "false");
                                break;
                        case GPUH_CONFIG_INT:
                                if (!streq(type_of(p), "integer") ||
                                    json_object_get_int64(get(p, "minimum")) != lk->min ||
                                    json_object_get_int64(get(p, "maximum")) != lk->max || !d ||
                                    json_object_get_int64(d) != lk->def)
                                        fail_msg("'%s.%s': integer %" PRId64 " .. %" PRId64 ", default %" PRId64
                                                 " is not the schema's", s[i].name, lk->name, lk->min, lk->max, lk->def);
                                break;
                        case GPUH_CONFIG_GLOB:
                                if (!streq(type_of(p), "string") || json_object_get_int64(get(p, "minLength")) != 1)
                                        fail_msg("'%s.%s': the schema's is not a non-empty string", s[i].name, lk->name);
                                break;
                        case GPUH_CONFIG_IGNORED:
                                if (!streq(lk->name, "$schema"))
                                        fail_msg("'%s.%s' ignored", s[i].name, lk->name);
                                break;
                        case GPUH_CONFIG_CUSTOM:
                                if (streq(type_of(p), "boolean") || streq(type_of(p), "integer"))
                                        fail_msg("'%s.%s' is a plain %s: a table entry of that type", s[i].name,
                                                 lk->name, type_of(p));
                                break;
                        }
                }
        }
}

/* Every object of the schema with properties is a section of the loader (but the requests,
 * which gpuh_requests_from_json() reads: test_requests). */
static void test_every_schema_object_is_a_section(void **state)
{
        static const char *const objects[] = { "discovery", "libvirt", "transformer", "state_change",
                                               "transformer.rules[]", "transformer.rules[].match" };
        size_t n;
        const struct gpuh_config_section *s = gpuh_config_sections(&n);
        json_object *top = get(schema, "properties");

        /* the top level's objects are named in the list */
        json_object_object_foreach(top, key, val) {
                bool listed = !streq(type_of(val), "object");

                for (size_t i = 0; i < ARRAY_SIZE(objects); i++)
                        listed = listed || streq(objects[i], key);
                if (!listed)
                        fail_msg("schema object '%s' is not listed here", key);
        }
        for (size_t o = 0; o < ARRAY_SIZE(objects); o++) {
                bool found = false;

                for (size_t i = 0; i < n; i++)
                        found = found || streq(s[i].name, objects[o]);
                if (!found)
                        fail_msg("schema object '%s' has no table in the loader", objects[o]);
        }
}

/* Load @root (taken over) as a file. */
static int load(json_object *root, struct gpuh_config **c, char **err)
{
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/s.json", tu_dir);
        assert_int_equal(json_object_to_file(path, root), 0);
        json_object_put(root);
        *c = NULL;
        *err = NULL;
        return gpuh_config_load(path, true, c, err);
}

static json_object *obj1(const char *key, json_object *v)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, key, v);
        return o;
}

/* A file setting key @key of section @s to @v (taken over); NULL for a rule's own keys. */
static json_object *file_with(const struct gpuh_config_section *s, const char *key, json_object *v)
{
        if (!*s->name)
                return obj1(key, v);
        if (s->in_config)
                return obj1(s->name, obj1(key, v));
        if (streq(s->name, "transformer.rules[].match")) {
                json_object *rule = obj1("match", obj1(key, v)), *rules = json_object_new_array();

                json_object_object_add(rule, "requests", json_tokener_parse("[{\"mode\": \"passthrough\"}]"));
                json_object_array_add(rules, rule);
                return obj1("transformer", obj1("rules", rules));
        }
        json_object_put(v);
        return NULL;
}

/* Every field of two configurations. */
static void assert_config_equal(const struct gpuh_config *a, const struct gpuh_config *b, const char *what)
{
        size_t n;
        const struct gpuh_config_section *s = gpuh_config_sections(&n);
        char **x = a->domain_xml_dirs, **y = b->domain_xml_dirs;

        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; s[i].in_config && k < s[i].n_keys; k++) {
                        const struct gpuh_config_key *key = &s[i].keys[k];
                        const char *pa = (const char *) a + key->offset, *pb = (const char *) b + key->offset;

                        if ((key->type == GPUH_CONFIG_INT && *(const int *) pa != *(const int *) pb) ||
                            (key->type == GPUH_CONFIG_BOOL && *(const bool *) pa != *(const bool *) pb))
                                fail_msg("%s: '%s.%s' differs", what, s[i].name, key->name);
                }
        if (a->n_extra_gpu_vendors != b->n_extra_gpu_vendors || a->n_exclude_passthrough != b->n_exclude_passthrough ||
            a->n_keep_vfio != b->n_keep_vfio || a->n_rules != b->n_rules || a->managed_by_libvirt != b->managed_by_libvirt ||
            !a->libvirt_uri != !b->libvirt_uri || (a->libvirt_uri && !streq(a->libvirt_uri, b->libvirt_uri)) ||
            !streq(a->on_start_method, b->on_start_method) || !streq(a->on_stop_method, b->on_stop_method))
                fail_msg("%s: the configurations differ", what);
        for (; *x && *y; x++, y++)
                if (!streq(*x, *y))
                        fail_msg("%s: domain_xml_dirs differ", what);
        if (*x || *y)
                fail_msg("%s: domain_xml_dirs differ", what);
}

/* A file that sets a key to the schema's default gives the built-in defaults. */
static void test_schema_defaults(void **state)
{
        size_t n, checked = 0;
        const struct gpuh_config_section *s = gpuh_config_sections(&n);
        struct gpuh_config *def;

        assert_int_equal(gpuh_config_new_default(&def), 0);
        for (size_t i = 0; i < n; i++) {
                json_object *props = get(schema_object(s[i].name), "properties");

                json_object_object_foreach(props, key, val) {
                        json_object *d, *f;
                        struct gpuh_config *c;
                        char *err, what[128];

                        if (!json_object_object_get_ex(resolve(val), "default", &d))
                                continue;       /* d is NULL for a default of null */
                        if (!(f = file_with(&s[i], key, json_object_get(d))))
                                continue;
                        snprintf(what, sizeof(what), "%s.%s = %s", s[i].name, key, json_object_to_json_string(d));
                        if (load(f, &c, &err) < 0)
                                fail_msg("%s: %s", what, err);
                        assert_config_equal(c, def, what);
                        gpuh_config_free(c);
                        checked++;
                }
        }
        assert_true(checked >= 19);      /* every key of the four sections */
        gpuh_config_free(def);
}

/* install/gpuhooks.json, the file a package installs, holds the built-in defaults. */
static void test_installed_defaults(void **state)
{
        const char *src = getenv("GPUH_TEST_SRCDIR");
        struct gpuh_config *c = NULL, *def;
        char path[PATH_MAX], *err = NULL;

        snprintf(path, sizeof(path), "%s/install/gpuhooks.json", src ? src : ".");
        if (gpuh_config_load(path, true, &c, &err) < 0)
                fail_msg("%s", err);
        assert_int_equal(gpuh_config_new_default(&def), 0);
        assert_config_equal(c, def, path);
        gpuh_config_free(c);
        gpuh_config_free(def);
}

static void expect_error(json_object *f, const char *needle, const char *what)
{
        struct gpuh_config *c;
        char *err;
        int r = load(f, &c, &err);

        if (r != -EBADMSG || !err || !strstr(err, needle))
                fail_msg("%s: %d '%s', expected -EBADMSG and '%s'", what, r, err ? err : "(none)", needle);
        assert_null(c);
        free(err);
}

/* Each integer key takes its range's ends, and nothing outside; each boolean true and false
 * only; each glob a non-empty string; each object no unknown key. */
static void test_tables_hold(void **state)
{
        size_t n;
        const struct gpuh_config_section *s = gpuh_config_sections(&n);

        for (size_t i = 0; i < n; i++) {
                char name[128], needle[256];
                json_object *f = file_with(&s[i], "zz_unknown", json_object_new_int(1));

                if (!f)
                        continue;
                snprintf(needle, sizeof(needle), "key %s%szz_unknown: unknown key",
                         streq(s[i].name, "transformer.rules[].match") ? "transformer.rules[0].match" : s[i].name,
                         *s[i].name ? "." : "");
                expect_error(f, needle, needle);
                for (size_t k = 0; k < s[i].n_keys; k++) {
                        const struct gpuh_config_key *key = &s[i].keys[k];
                        struct gpuh_config *c;
                        char *err;

                        snprintf(name, sizeof(name), "key %s%s%s:",
                                 streq(s[i].name, "transformer.rules[].match") ? "transformer.rules[0].match" : s[i].name,
                                 *s[i].name ? "." : "", key->name);
                        if (key->type == GPUH_CONFIG_INT) {
                                int64_t ends[] = { key->min, key->max };

                                for (size_t e = 0; e < 2; e++) {
                                        assert_int_equal(load(file_with(&s[i], key->name, json_object_new_int64(ends[e])),
                                                              &c, &err), 0);
                                        assert_int_equal(*(const int *) ((const char *) c + key->offset), ends[e]);
                                        gpuh_config_free(c);
                                }
                                snprintf(needle, sizeof(needle), "%s must be an integer from %" PRId64 " to %" PRId64,
                                         name, key->min, key->max);
                                expect_error(file_with(&s[i], key->name, json_object_new_int64(key->min - 1)), needle, name);
                                expect_error(file_with(&s[i], key->name, json_object_new_int64(key->max + 1)), needle, name);
                                expect_error(file_with(&s[i], key->name, json_object_new_string("1000")), needle, name);
                        } else if (key->type == GPUH_CONFIG_BOOL) {
                                for (int b = 0; b < 2; b++) {
                                        assert_int_equal(load(file_with(&s[i], key->name, json_object_new_boolean(b)),
                                                              &c, &err), 0);
                                        assert_int_equal(*(const bool *) ((const char *) c + key->offset), b);
                                        gpuh_config_free(c);
                                }
                                snprintf(needle, sizeof(needle), "%s must be true or false", name);
                                expect_error(file_with(&s[i], key->name, json_object_new_int(1)), needle, name);
                        } else if (key->type == GPUH_CONFIG_GLOB) {
                                assert_int_equal(load(file_with(&s[i], key->name, json_object_new_string("a*")), &c, &err), 0);
                                assert_string_equal(*(char *const *) ((const char *) &c->rules[0].match + key->offset), "a*");
                                gpuh_config_free(c);
                                snprintf(needle, sizeof(needle), "%s must be a non-empty string", name);
                                expect_error(file_with(&s[i], key->name, json_object_new_string("")), needle, name);
                        }
                }
        }
}

/* A sample value for a request property of the schema (its enum's values, an integer range's
 * ends, a string of the pattern or length): the valid ones and the invalid ones. */
static void samples(json_object *p, json_object *good, json_object *bad)
{
        json_object *e = get(p, "enum"), *pat = get(p, "pattern"), *max = get(p, "maxLength");

        if (e) {
                for (size_t i = 0; i < json_object_array_length(e); i++)
                        json_object_array_add(good, json_object_get(json_object_array_get_idx(e, i)));
                json_object_array_add(bad, json_object_new_string("no-such-value"));
        } else if (streq(type_of(p), "integer")) {
                int64_t lo = json_object_get_int64(get(p, "minimum")), hi = json_object_get_int64(get(p, "maximum"));

                json_object_array_add(good, json_object_new_int64(lo));
                json_object_array_add(good, json_object_new_int64(hi));
                json_object_array_add(bad, json_object_new_int64(lo - 1));
                json_object_array_add(bad, json_object_new_int64(hi + 1));
        } else if (pat && streq(json_object_get_string(pat), "^[0-9a-f]{4}$")) {
                json_object_array_add(good, json_object_new_string("10de"));
                json_object_array_add(bad, json_object_new_string("10DE"));
                json_object_array_add(bad, json_object_new_string("10de0"));
        } else if (pat && !streq(json_object_get_string(pat), "^[^\\u0000-\\u001f\\u007f]+$")) {
                fail_msg("no sample for the pattern %s", json_object_get_string(pat));
        } else if (streq(type_of(p), "string") && max) {
                /* a name: no control characters (the pattern above, when there is one) */
                if (pat) {
                        json_object_array_add(good, json_object_new_string("NVIDIA A2-4Q"));
                        json_object_array_add(bad, json_object_new_string("NVIDIA\tA2-4Q"));
                        json_object_array_add(bad, json_object_new_string("A2\n"));
                }
                char s[1024];
                size_t l = (size_t) json_object_get_int64(max);

                assert_true(l + 1 < sizeof(s));
                memset(s, 'x', l + 1);
                s[l + 1] = '\0';
                json_object_array_add(bad, json_object_new_string(s));
                s[l] = '\0';
                json_object_array_add(good, json_object_new_string(s));
                json_object_array_add(good, json_object_new_string("x"));
                json_object_array_add(bad, json_object_new_string(""));
        } else
                fail_msg("no sample for %s", json_object_to_json_string(p));
}

/* A file with one rule asking for one request of @key = @v (taken over). 'profile' goes with
 * mode mdev, modes mdev and vendor-vgpu with a profile (the schema's if/then/else). */
static json_object *file_with_request(const char *key, json_object *v)
{
        json_object *req = obj1(key, v), *reqs = json_object_new_array(), *rule, *rules = json_object_new_array();
        const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";

        if (streq(key, "profile"))
                json_object_object_add(req, "mode", json_object_new_string("mdev"));
        if (streq(key, "mode") && (streq(s, "mdev") || streq(s, "vendor-vgpu")))
                json_object_object_add(req, "profile", json_object_new_string("x"));
        json_object_array_add(reqs, req);
        rule = obj1("match", obj1("name", json_object_new_string("*")));
        json_object_object_add(rule, "requests", reqs);
        json_object_array_add(rules, rule);
        return obj1("transformer", obj1("rules", rules));
}

/* transformer.rules[].requests: every property of the schema's request, its valid values
 * accepted and invalid ones refused; a key outside the schema refused. */
static void test_requests(void **state)
{
        json_object *props = get(resolve(get(get(schema, "$defs"), "request")), "properties");
        size_t checked = 0;

        assert_non_null(props);
        json_object_object_foreach(props, key, val) {
                json_object *good = json_object_new_array(), *bad = json_object_new_array();
                char needle[128];

                samples(val, good, bad);
                for (size_t i = 0; i < json_object_array_length(good); i++) {
                        json_object *v = json_object_array_get_idx(good, i);
                        struct gpuh_config *c;
                        char *err;

                        if (load(file_with_request(key, json_object_get(v)), &c, &err) < 0)
                                fail_msg("request %s = %s: %s", key, json_object_to_json_string(v), err);
                        assert_int_equal(c->rules[0].n_requests, 1);
                        gpuh_config_free(c);
                        checked++;
                }
                snprintf(needle, sizeof(needle), "requests[0].%s", key);
                for (size_t i = 0; i < json_object_array_length(bad); i++)
                        expect_error(file_with_request(key, json_object_get(json_object_array_get_idx(bad, i))),
                                     needle, key);
                json_object_put(good);
                json_object_put(bad);
        }
        assert_true(checked >= 15);
        expect_error(file_with_request("zz_unknown", json_object_new_string("x")), "requests[0].zz_unknown", "unknown");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keys_are_the_schema),
                cmocka_unit_test(test_every_schema_object_is_a_section),
                cmocka_unit_test(test_schema_defaults),
                cmocka_unit_test(test_installed_defaults),
                cmocka_unit_test(test_tables_hold),
                cmocka_unit_test(test_requests),
        };
        return cmocka_run_group_tests_name("config_schema", tests, setup, teardown);
}
