/* SPDX-License-Identifier: Apache-2.0 */
/* vgpu_names.c: the cache of NVIDIA vendor vGPU type names, read strictly, written atomically. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fileio.h"
#include "log.h"
#include "vgpu_names.h"

bool gpuh_vgpu_name_ok(const char *name)
{
        size_t len = 0;

        if (!name)
                return false;
        for (; name[len]; len++)
                if ((unsigned char) name[len] < 0x20 || (unsigned char) name[len] > 0x7e || len >= GPUH_VGPU_NAME_MAX)
                        return false;
        return len > 0;
}

/* "1152" -> 1152; 0 for anything but 1 .. UINT32_MAX in decimal without a leading zero. */
static unsigned parse_id(const char *s)
{
        uint64_t v = 0;

        if (*s < '1' || *s > '9')
                return 0;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return 0;
                v = v * 10 + (uint64_t) (*s - '0');
                if (v > UINT32_MAX)
                        return 0;
        }
        return (unsigned) v;
}

static void json_putp(json_object **o)
{
        if (*o)
                json_object_put(*o);
}

int gpuh_vgpu_names_parse(const char *text, struct gpuh_vgpu_type **ret)
{
        _cleanup_(json_putp) json_object *root = NULL;
        _cleanup_free_ char *canon = NULL;
        struct gpuh_vgpu_type *t = NULL;
        json_object *version, *types;
        json_tokener *tok;
        size_t n = 0, len = strlen(text), end;
        unsigned prev = 0;
        bool ok;
        int r;

        if (len > GPUH_VGPU_NAMES_MAX_BYTES)
                return -EBADMSG;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, text, (int) len);
        ok = root && json_tokener_get_error(tok) == json_tokener_success;
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!ok || text[end + strspn(text + end, " \t\r\n")] || !json_object_is_type(root, json_type_object) ||
            json_object_object_length(root) != 2 ||
            !json_object_object_get_ex(root, "version", &version) || !json_object_is_type(version, json_type_int) ||
            json_object_get_int64(version) != 1 ||
            !json_object_object_get_ex(root, "types", &types) || !json_object_is_type(types, json_type_object) ||
            json_object_object_length(types) > GPUH_VGPU_NAMES_MAX)
                return -EBADMSG;
        t = calloc((size_t) json_object_object_length(types) + 1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        json_object_object_foreach(types, key, val) {
                unsigned id = parse_id(key);
                const char *name = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : NULL;

                if (id <= prev || !gpuh_vgpu_name_ok(name) || strlen(name) != (size_t) json_object_get_string_len(val)) {
                        gpuh_vgpu_types_free(t, n);
                        return -EBADMSG;
                }
                t[n].id = id;
                t[n].name = strdup(name);
                if (!t[n].name) {
                        gpuh_vgpu_types_free(t, n);
                        return -ENOMEM;
                }
                n++;
                prev = id;
        }
        /* and byte for byte what gpuh_vgpu_names_format() writes: nothing else is ours */
        r = gpuh_vgpu_names_format(t, n, &canon);
        if (r < 0 || !streq(canon, text)) {
                gpuh_vgpu_types_free(t, n);
                return r == -ENOMEM ? r : -EBADMSG;
        }
        *ret = t;
        return (int) n;
}

int gpuh_vgpu_names_format(const struct gpuh_vgpu_type *t, size_t n, char **ret)
{
        _cleanup_(json_putp) json_object *root = json_object_new_object();
        json_object *types = json_object_new_object();
        const char *s;

        if (!root || !types || json_object_object_add(root, "version", json_object_new_int(1)) < 0 ||
            json_object_object_add(root, "types", types) < 0) {
                json_object_put(types);
                return -ENOMEM;
        }
        if (n > GPUH_VGPU_NAMES_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                char key[16];
                json_object *v;

                if (t[i].id == 0 || (i > 0 && t[i].id <= t[i - 1].id) || !gpuh_vgpu_name_ok(t[i].name))
                        return -EINVAL;
                snprintf(key, sizeof(key), "%u", t[i].id);
                v = json_object_new_string(t[i].name);
                if (!v || json_object_object_add(types, key, v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }
        s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s || asprintf(ret, "%s\n", s) < 0)
                return -ENOMEM;
        return 0;
}

/* An entry of the cache to write: names borrowed from the lists or the old cache. */
struct entry {
        unsigned id;
        const char *name;
        bool seen;                      /* a list on this host shows it */
};

static int cmp_id(const void *a, const void *b)
{
        const struct entry *x = a, *y = b;

        return x->id < y->id ? -1 : x->id > y->id;
}

/* This host's first, then by id: who stays when there are too many. */
static int cmp_keep(const void *a, const void *b)
{
        const struct entry *x = a, *y = b;

        if (x->seen != y->seen)
                return x->seen ? -1 : 1;
        return cmp_id(a, b);
}

static struct entry *find(struct entry *e, size_t n, unsigned id)
{
        for (size_t i = 0; i < n; i++)
                if (e[i].id == id)
                        return &e[i];
        return NULL;
}

/* The old cache plus what the host's lists show, by id, at most GPUH_VGPU_NAMES_MAX; *changed
 * when that is not the old cache. */
static int merge(const struct gpuh_inventory *inv, const struct gpuh_vgpu_type *old, size_t n_old,
                 struct entry **ret, size_t *ret_n, bool *changed)
{
        struct entry *e;
        size_t n = 0, cap = n_old;

        for (size_t g = 0; g < inv->n_gpus; g++)
                for (size_t v = 0; v < inv->gpus[g].n_vfs; v++)
                        cap += inv->gpus[g].vfs[v].vendor_vgpu.n_creatable;
        e = calloc(cap + 1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        *changed = false;
        for (size_t g = 0; g < inv->n_gpus; g++)
                for (size_t v = 0; v < inv->gpus[g].n_vfs; v++) {
                        const struct gpuh_vendor_vgpu *vv = &inv->gpus[g].vfs[v].vendor_vgpu;

                        for (size_t k = 0; k < vv->n_creatable; k++) {
                                const struct gpuh_vgpu_type *t = &vv->creatable[k];
                                const char *was;

                                if (!gpuh_vgpu_name_ok(t->name) || find(e, n, t->id))
                                        continue;       /* the first list to name an id wins */
                                e[n++] = (struct entry) { t->id, t->name, true };
                                was = gpuh_vgpu_type_name(old, n_old, t->id);
                                *changed |= !was || !streq(was, t->name);
                        }
                }
        for (size_t i = 0; i < n_old; i++)
                if (!find(e, n, old[i].id))
                        e[n++] = (struct entry) { old[i].id, old[i].name, false };
        if (n > GPUH_VGPU_NAMES_MAX) {
                qsort(e, n, sizeof(*e), cmp_keep);
                n = GPUH_VGPU_NAMES_MAX;
                *changed = true;
        }
        if (n > 1)
                qsort(e, n, sizeof(*e), cmp_id);
        *ret = e;
        *ret_n = n;
        return 0;
}

static int write_cache(const char *state_dir, const struct entry *e, size_t n)
{
        _cleanup_free_ struct gpuh_vgpu_type *t = calloc(n + 1, sizeof(*t));
        _cleanup_free_ char *text = NULL;
        int r;

        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                t[i] = (struct gpuh_vgpu_type) { e[i].id, (char *) e[i].name };
        r = gpuh_vgpu_names_format(t, n, &text);
        if (r < 0)
                return r;
        return gpuh_write_file_atomic(state_dir, GPUH_VGPU_NAMES_FILE, text, strlen(text), 0644, false);
}

int gpuh_vgpu_names_update(struct gpuh_inventory *inv, const char *state_dir)
{
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ struct entry *e = NULL;
        struct gpuh_vgpu_type *old = NULL;
        size_t len, n_e = 0, n_old = 0;
        bool changed;
        int r;

        if (!state_dir || !*state_dir)
                return 0;
        dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                gpuh_debug("vGPU names cache: state directory '%s': %s", state_dir, strerror(errno));
                return 0;
        }
        r = gpuh_read_file_at(dfd, GPUH_VGPU_NAMES_FILE, GPUH_VGPU_NAMES_MAX_BYTES, &text, &len);
        if (r == -ENOMEM)
                return r;
        if (r == 0) {
                r = gpuh_vgpu_names_parse(text, &old);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        gpuh_debug("vGPU names cache '%s/%s' is damaged: not used", state_dir, GPUH_VGPU_NAMES_FILE);
                        old = NULL;
                } else
                        n_old = (size_t) r;
        } else if (r != -ENOENT)
                gpuh_debug("vGPU names cache '%s/%s': %s: not used", state_dir, GPUH_VGPU_NAMES_FILE, strerror(-r));
        /* from here on @old belongs to @inv: names below point into it */
        gpuh_vgpu_types_free(inv->known_types, inv->n_known_types);
        inv->known_types = old;
        inv->n_known_types = n_old;

        for (size_t g = 0; g < inv->n_gpus; g++)
                for (size_t v = 0; v < inv->gpus[g].n_vfs; v++) {
                        struct gpuh_vf *vf = &inv->gpus[g].vfs[v];

                        if (vf->has_vendor_vgpu && vf->vendor_vgpu.current_type != 0 && !vf->current_type_name)
                                vf->current_type_name = gpuh_vgpu_type_name(old, n_old, vf->vendor_vgpu.current_type);
                }

        r = merge(inv, old, n_old, &e, &n_e, &changed);
        if (r < 0)
                return r;
        if (!changed && n_e == n_old)
                return 0;
        r = write_cache(state_dir, e, n_e);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                gpuh_debug("vGPU names cache '%s/%s' not written: %s", state_dir, GPUH_VGPU_NAMES_FILE, strerror(-r));
        return 0;
}
