/* SPDX-License-Identifier: Apache-2.0 */
/* request.c: parsing and checking GPU requests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "macro.h"
#include "request.h"
#include "strtable.h"

static const char *const req_mode_table[_GPUH_REQ_MODE_MAX] = {
        [GPUH_REQ_PASSTHROUGH] = "passthrough",
        [GPUH_REQ_VF] = "vf",
        [GPUH_REQ_MDEV] = "mdev",
        [GPUH_REQ_VENDOR_VGPU] = "vendor-vgpu",
};

GPUH_DEFINE_STRING_TABLE_LOOKUP(gpuh_req_mode, enum gpuh_req_mode, req_mode_table, "?")

static const char *const req_numa_table[_GPUH_NUMA_MAX] = {
        [GPUH_NUMA_PREFER] = "prefer",
        [GPUH_NUMA_REQUIRE] = "require",
        [GPUH_NUMA_ANY] = "any",
};

GPUH_DEFINE_STRING_TABLE_LOOKUP(gpuh_req_numa, enum gpuh_req_numa, req_numa_table, "?")

void gpuh_request_init(struct gpuh_request *r)
{
        *r = (struct gpuh_request) { .count = 1, .mode = GPUH_REQ_PASSTHROUGH, .vendor = -1, .device = -1,
                                     .numa = GPUH_NUMA_PREFER };
}

void gpuh_requests_free(struct gpuh_request *r, size_t n)
{
        if (!r)
                return;
        for (size_t i = 0; i < n; i++) {
                free(r[i].model);
                free(r[i].profile);
        }
        free(r);
}

static int hex4(const char *s)
{
        int v = 0;

        if (!s || strlen(s) != 4)
                return -1;
        for (int i = 0; i < 4; i++) {
                char c = s[i];
                if (c >= '0' && c <= '9')
                        v = v * 16 + (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v = v * 16 + (c - 'a' + 10);
                else
                        return -1;
        }
        return v;
}

static int set_text(char **field, const char *value, const char **reterr, const char *what)
{
        if (!*value || strlen(value) > 255) {
                *reterr = what;
                return -EINVAL;
        }
        /* no device or type name holds one, and it would split the error lines that quote it */
        for (const unsigned char *p = (const unsigned char *) value; *p; p++)
                if (*p < 0x20 || *p == 0x7f) {
                        *reterr = what;
                        return -EINVAL;
                }
        free(*field);
        *field = strdup(value);
        return *field ? 0 : -ENOMEM;
}

int gpuh_request_set(struct gpuh_request *r, const char *key, const char *value, const char **reterr)
{
        int v;

        if (streq(key, "count")) {
                char *end;
                long n = strtol(value, &end, 10);
                if (*value < '0' || *value > '9' || *end || n < 1 || n > GPUH_REQ_MAX_COUNT) {
                        *reterr = "count must be 1 to 16";
                        return -EINVAL;
                }
                r->count = (unsigned) n;
        } else if (streq(key, "mode")) {
                if ((v = gpuh_req_mode_from_string(value)) < 0) {
                        *reterr = "mode must be passthrough, vf, mdev or vendor-vgpu";
                        return -EINVAL;
                }
                r->mode = (enum gpuh_req_mode) v;
        } else if (streq(key, "vendor") || streq(key, "device")) {
                if ((v = hex4(value)) < 0) {
                        *reterr = "vendor and device are 4 lowercase hex digits";
                        return -EINVAL;
                }
                *(streq(key, "vendor") ? &r->vendor : &r->device) = v;
        } else if (streq(key, "model"))
                return set_text(&r->model, value, reterr, "model must be 1 to 255 characters, no control character");
        else if (streq(key, "profile"))
                return set_text(&r->profile, value, reterr, "profile must be 1 to 255 characters, no control character");
        else if (streq(key, "numa")) {
                if ((v = gpuh_req_numa_from_string(value)) < 0) {
                        *reterr = "numa must be prefer, require or any";
                        return -EINVAL;
                }
                r->numa = (enum gpuh_req_numa) v;
        } else if (streq(key, "display")) {
                if (!streq(value, "on") && !streq(value, "off") && !streq(value, "true") && !streq(value, "false")) {
                        *reterr = "display must be on or off";
                        return -EINVAL;
                }
                r->display = streq(value, "on") || streq(value, "true");
        } else {
                *reterr = "unknown request attribute";
                return -EINVAL;
        }
        return 0;
}

const char *gpuh_request_check(const struct gpuh_request *r)
{
        if ((r->mode == GPUH_REQ_MDEV || r->mode == GPUH_REQ_VENDOR_VGPU) && !r->profile)
                return "mode mdev and vendor-vgpu need a profile";
        if ((r->mode == GPUH_REQ_PASSTHROUGH || r->mode == GPUH_REQ_VF) && r->profile)
                return "profile applies to modes mdev and vendor-vgpu only";
        return NULL;
}

int gpuh_requests_from_json(struct json_object *arr, struct gpuh_request **ret, size_t *ret_n, char **reterr)
{
        struct gpuh_request *r;
        size_t n;

        *reterr = NULL;
        if (!json_object_is_type(arr, json_type_array)) {
                *reterr = strdup("requests must be an array");
                return -EINVAL;
        }
        n = json_object_array_length(arr);
        if (n == 0 || n > 16) {
                *reterr = strdup("requests must hold 1 to 16 requests");
                return -EINVAL;
        }
        r = calloc(n, sizeof(*r));
        if (!r)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(arr, i);
                const char *why = NULL;

                gpuh_request_init(&r[i]);
                if (!json_object_is_type(o, json_type_object)) {
                        why = "not an object";
                        goto bad;
                }
                json_object_object_foreach(o, key, val) {
                        const char *text;
                        int k;

                        if (json_object_is_type(val, json_type_boolean))
                                text = json_object_get_boolean(val) ? "on" : "off";
                        else if (json_object_is_type(val, json_type_int) || json_object_is_type(val, json_type_string))
                                text = json_object_get_string(val);
                        else {
                                why = "values are strings, integers or booleans";
                                goto bad;
                        }
                        if ((json_object_is_type(val, json_type_boolean) && !streq(key, "display")) ||
                            (json_object_is_type(val, json_type_int) && !streq(key, "count"))) {
                                why = "wrongly typed value";
                                goto bad;
                        }
                        k = gpuh_request_set(&r[i], key, text, &why);
                        if (k == -ENOMEM) {
                                gpuh_requests_free(r, n);
                                return k;
                        }
                        if (k < 0) {
                                if (asprintf(reterr, "requests[%zu].%s: %s", i, key, why) < 0)
                                        *reterr = NULL;
                                gpuh_requests_free(r, n);
                                return -EINVAL;
                        }
                }
                if ((why = gpuh_request_check(&r[i])))
                        goto bad;
                continue;
bad:
                if (asprintf(reterr, "requests[%zu]: %s", i, why) < 0)
                        *reterr = NULL;
                gpuh_requests_free(r, n);
                return -EINVAL;
        }
        *ret = r;
        *ret_n = n;
        return 0;
}
