/* SPDX-License-Identifier: Apache-2.0 */
/* nvml.c: NVML, dlopen()ed in a child process (nvml_child.c) with a deadline: the parent's
 * side, which starts the child, waits for its answer and reads it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "child.h"
#include "clock.h"
#include "fileio.h"
#include "log.h"
#include "nvml.h"
#include "nvml_child.h"

static const char *const nvml_errors[] = {
        [0] = "NVML_SUCCESS",
        [1] = "NVML_ERROR_UNINITIALIZED: NVML was not initialised",
        [2] = "NVML_ERROR_INVALID_ARGUMENT: an argument is invalid",
        [3] = "NVML_ERROR_NOT_SUPPORTED: not supported on this GPU or in its current mode",
        [4] = "NVML_ERROR_NO_PERMISSION: no permission (root needed)",
        [5] = "NVML_ERROR_ALREADY_INITIALIZED",
        [6] = "NVML_ERROR_NOT_FOUND: no such object",
        [7] = "NVML_ERROR_INSUFFICIENT_SIZE: a buffer is too small",
        [8] = "NVML_ERROR_INSUFFICIENT_POWER: power cables not attached properly",
        [9] = "NVML_ERROR_DRIVER_NOT_LOADED: the NVIDIA driver is not loaded",
        [10] = "NVML_ERROR_TIMEOUT: the driver timed out",
        [11] = "NVML_ERROR_IRQ_ISSUE: the kernel detected an interrupt issue with the GPU",
        [12] = "NVML_ERROR_LIBRARY_NOT_FOUND: NVML could not load a library it needs",
        [13] = "NVML_ERROR_FUNCTION_NOT_FOUND: this NVML lacks the function",
        [14] = "NVML_ERROR_CORRUPTED_INFOROM: the GPU's infoROM is corrupted",
        [15] = "NVML_ERROR_GPU_IS_LOST: the GPU fell off the bus or is inaccessible",
        [16] = "NVML_ERROR_RESET_REQUIRED: the GPU needs a reset",
        [17] = "NVML_ERROR_OPERATING_SYSTEM: the GPU control device is blocked by the OS or cgroups",
        [18] = "NVML_ERROR_LIB_RM_VERSION_MISMATCH: NVML and the driver versions differ",
        [19] = "NVML_ERROR_IN_USE: the GPU is in use",
        [20] = "NVML_ERROR_MEMORY: out of memory",
        [21] = "NVML_ERROR_NO_DATA: no data",
        [22] = "NVML_ERROR_VGPU_ECC_NOT_SUPPORTED: not available with ECC enabled",
        [23] = "NVML_ERROR_INSUFFICIENT_RESOURCES: not enough free resources (slices, placements)",
        [24] = "NVML_ERROR_FREQ_NOT_SUPPORTED",
        [25] = "NVML_ERROR_ARGUMENT_VERSION_MISMATCH: this NVML does not know the structure version",
        [26] = "NVML_ERROR_DEPRECATED",
        [27] = "NVML_ERROR_NOT_READY: the system is not ready",
        [28] = "NVML_ERROR_GPU_NOT_FOUND: no GPUs found",
        [29] = "NVML_ERROR_INVALID_STATE: not in the state the operation needs",
        [30] = "NVML_ERROR_RESET_TYPE_NOT_SUPPORTED",
};

const char *gpuh_nvml_strerror(int code)
{
        if (code == 999)
                return "NVML_ERROR_UNKNOWN: internal driver error";
        if (code >= 0 && (size_t) code < ARRAY_SIZE(nvml_errors) && nvml_errors[code])
                return nvml_errors[code];
        return "NVML error";
}

const char *gpuh_vgpu_mode_to_string(enum gpuh_vgpu_mode m)
{
        return m == GPUH_VGPU_MODE_EQUAL ? "equal-size" : m == GPUH_VGPU_MODE_MIXED ? "mixed-size" : NULL;
}

static int nvml_errno(int code)
{
        switch (code) {
        case NVML_ERROR_NOT_FOUND:
                return -ENOENT;
        case NVML_ERROR_IN_USE:
                return -EBUSY;
        case NVML_ERROR_INSUFFICIENT_RESOURCES:
                return -ENOSPC;
        case NVML_ERROR_NOT_SUPPORTED:
                return -EOPNOTSUPP;
        case NVML_ERROR_NO_PERMISSION:
                return -EPERM;
        case NVML_ERROR_INVALID_ARGUMENT:
                return -EINVAL;
        default:
                return -EIO;
        }
}

/* ---- the parent ---- */

#define ANSWER_MAX (16u << 20)

struct gpuh_nvml_query {
        pid_t pid;
        int fd;
        int64_t deadline;
        int timeout_ms;
        struct gpuh_pci_addr *gpus;
        size_t n;
};

static int start_child(int *ret_fd, pid_t *ret_pid)
{
        int pfd[2];
        pid_t pid;

        if (pipe2(pfd, O_CLOEXEC) < 0)
                return -errno;
        pid = gpuh_child_fork((const int[]) { pfd[1] }, 1, gpuh_log_get_max_prio() >= LOG_DEBUG);
        if (pid < 0) {
                close(pfd[0]);
                close(pfd[1]);
                return pid;
        }
        if (pid == 0) {
                close(pfd[0]);
                *ret_fd = pfd[1];
                *ret_pid = 0;
                return 0;
        }
        close(pfd[1]);
        *ret_fd = pfd[0];
        *ret_pid = pid;
        return 0;
}

int gpuh_nvml_query_start(const char *lib, const struct gpuh_pci_addr *gpus, size_t n, int timeout_ms,
                          struct gpuh_nvml_query **ret)
{
        struct gpuh_nvml_query *q;
        int r;

        if (n > 256)
                return -E2BIG;
        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->gpus = calloc(n + 1, sizeof(*q->gpus));
        if (!q->gpus) {
                free(q);
                return -ENOMEM;
        }
        if (n)
                memcpy(q->gpus, gpus, n * sizeof(*gpus));
        q->n = n;
        q->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
        q->deadline = gpuh_mono_ms() + q->timeout_ms;
        r = start_child(&q->fd, &q->pid);
        if (r < 0) {
                free(q->gpus);
                free(q);
                return r;
        }
        if (q->pid == 0)
                gpuh_nvml_query_child(q->fd, lib ? lib : GPUH_NVML_LIB_DEFAULT, gpus, n);
        *ret = q;
        return 0;
}

struct gpuh_nvml_info *gpuh_nvml_info_free(struct gpuh_nvml_info *i)
{
        if (!i)
                return NULL;
        for (size_t k = 0; k < i->n_gpus; k++) {
                free(i->gpus[k].error);
                free(i->gpus[k].gis);
                free(i->gpus[k].profiles);
                free(i->gpus[k].profiles_error);
                free(i->gpus[k].types);
        }
        free(i->gpus);
        free(i->error);
        free(i);
        return NULL;
}

static int64_t jint(json_object *o, const char *k, int64_t dflt)
{
        json_object *v;

        if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
                return dflt;
        return json_object_get_int64(v);
}

static const char *jstr(json_object *o, const char *k)
{
        json_object *v;

        if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static json_object *jarr(json_object *o, const char *k)
{
        json_object *v;

        if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_array))
                return NULL;
        return v;
}

static int cmp_gi(const void *a, const void *b)
{
        const struct gpuh_nvml_gi *x = a, *y = b;

        return (x->id > y->id) - (x->id < y->id);
}

static int cmp_type(const void *a, const void *b)
{
        const struct gpuh_nvml_type *x = a, *y = b;

        return (x->id > y->id) - (x->id < y->id);
}

static bool in_u32(int64_t v)
{
        return v >= 0 && v <= UINT32_MAX;
}

/* NVML_DEVICE_MIG_DISABLE 0 / _ENABLE 1; anything else: -1 */
static int mode01(int64_t v)
{
        return v == 0 || v == 1 ? (int) v : -1;
}

static int cmp_profile(const void *a, const void *b)
{
        const struct gpuh_nvml_profile *x = a, *y = b;

        return (x->id > y->id) - (x->id < y->id);
}

static int parse_profiles(json_object *arr, struct gpuh_nvml_gpu *g)
{
        size_t n = arr ? json_object_array_length(arr) : 0;

        if (!arr)
                return 0;
        g->profiles = calloc(n + 1, sizeof(*g->profiles));
        if (!g->profiles)
                return -ENOMEM;
        for (size_t i = 0; i < n && i < 64; i++) {
                json_object *e = json_object_array_get_idx(arr, i), *pl = jarr(e, "placements");
                struct gpuh_nvml_profile *p = &g->profiles[g->n_profiles];
                int64_t id = jint(e, "id", -1), sl = jint(e, "slices", -1), in = jint(e, "instances", -1),
                        mem = jint(e, "memory_mib", -1), rem = jint(e, "remaining", -1);

                if (!in_u32(id) || !in_u32(sl) || !in_u32(in))
                        continue;
                *p = (struct gpuh_nvml_profile) { .id = (unsigned) id, .slices = (unsigned) sl, .instances = (unsigned) in,
                                                  .memory_mib = mem >= 0 ? mem : -1, .remaining = rem >= 0 ? rem : -1 };
                snprintf(p->name, sizeof(p->name), "%s", jstr(e, "name") ? jstr(e, "name") : "");
                for (size_t k = 0; pl && k < json_object_array_length(pl) && p->n_placements < GPUH_NVML_MAX_PLACEMENTS; k++) {
                        json_object *x = json_object_array_get_idx(pl, k);
                        int64_t st = jint(x, "start", -1), sz = jint(x, "size", -1);

                        if (!in_u32(st) || !in_u32(sz))
                                continue;
                        p->placements[p->n_placements].start = (unsigned) st;
                        p->placements[p->n_placements++].size = (unsigned) sz;
                }
                g->n_profiles++;
        }
        qsort(g->profiles, g->n_profiles, sizeof(*g->profiles), cmp_profile);
        return 0;
}

static int parse_gpu(json_object *o, struct gpuh_nvml_gpu *g)
{
        json_object *gis = jarr(o, "gpu_instances"), *types = jarr(o, "types");
        int r;
        const char *err = jstr(o, "error"), *call = jstr(o, "error_call");
        int64_t h;

        g->mig_current = g->mig_pending = -1;
        g->vgpu_mode = GPUH_VGPU_MODE_UNKNOWN;
        if (err) {
                if (asprintf(&g->error, "%s%s%s", call ? call : "", call ? ": " : "", err) < 0) {
                        g->error = NULL;
                        return -ENOMEM;
                }
                return 0;
        }
        g->mig_current = mode01(jint(o, "mig_current", -1));
        g->mig_pending = mode01(jint(o, "mig_pending", -1));
        h = jint(o, "heterogeneous", -1);
        g->vgpu_mode = h == 1 ? GPUH_VGPU_MODE_MIXED : h == 0 ? GPUH_VGPU_MODE_EQUAL : GPUH_VGPU_MODE_UNKNOWN;
        if (gis) {
                size_t n = json_object_array_length(gis);
                g->gis = calloc(n + 1, sizeof(*g->gis));
                if (!g->gis)
                        return -ENOMEM;
                for (size_t i = 0; i < n && i < GPUH_NVML_MAX_GIS; i++) {
                        json_object *e = json_object_array_get_idx(gis, i);
                        struct gpuh_nvml_gi *gi = &g->gis[g->n_gis];
                        int64_t id = jint(e, "id", -1), pid = jint(e, "profile_id", -1),
                                st = jint(e, "start", -1), sz = jint(e, "size", -1);

                        if (!in_u32(id) || !in_u32(pid) || !in_u32(st) || !in_u32(sz))
                                continue;
                        *gi = (struct gpuh_nvml_gi) { .id = (unsigned) id, .profile_id = (unsigned) pid,
                                                      .placement_start = (unsigned) st, .placement_size = (unsigned) sz };
                        snprintf(gi->profile_name, sizeof(gi->profile_name), "%s",
                                 jstr(e, "profile_name") ? jstr(e, "profile_name") : "");
                        g->n_gis++;
                }
                qsort(g->gis, g->n_gis, sizeof(*g->gis), cmp_gi);
        }
        r = parse_profiles(jarr(o, "profiles"), g);
        if (r < 0)
                return r;
        if (jstr(o, "profiles_error") && !(g->profiles_error = strdup(jstr(o, "profiles_error"))))
                return -ENOMEM;
        if (types) {
                size_t n = json_object_array_length(types);
                g->types = calloc(n + 1, sizeof(*g->types));
                if (!g->types)
                        return -ENOMEM;
                for (size_t i = 0; i < n && i < GPUH_NVML_MAX_TYPES; i++) {
                        json_object *e = json_object_array_get_idx(types, i), *c;
                        struct gpuh_nvml_type *t = &g->types[g->n_types];
                        int64_t id = jint(e, "id", -1), fb = jint(e, "fb_mib", -1), max = jint(e, "max_instances", -1),
                                prof = jint(e, "gi_profile_id", -1);

                        if (!in_u32(id) || id == 0)
                                continue;
                        *t = (struct gpuh_nvml_type) { .id = (unsigned) id, .fb_mib = fb >= 0 ? fb : -1,
                                                       .max_instances = max >= 0 ? max : -1,
                                                       .gi_profile_id = in_u32(prof) ? prof : -1 };
                        snprintf(t->name, sizeof(t->name), "%s", jstr(e, "name") ? jstr(e, "name") : "");
                        t->creatable = json_object_object_get_ex(e, "creatable", &c) && json_object_get_boolean(c);
                        g->n_types++;
                }
                qsort(g->types, g->n_types, sizeof(*g->types), cmp_type);
        }
        return 0;
}

static int set_error(struct gpuh_nvml_info *info, const char *fmt, ...) _printf_(2, 3);
static int set_error(struct gpuh_nvml_info *info, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&info->error, fmt, ap);
        va_end(ap);
        if (r < 0) {
                info->error = NULL;
                return -ENOMEM;
        }
        return 0;
}

int gpuh_nvml_query_finish(struct gpuh_nvml_query *q, struct gpuh_nvml_info **ret)
{
        _cleanup_(gpuh_nvml_info_freep) struct gpuh_nvml_info *info = calloc(1, sizeof(*info));
        _cleanup_free_ char *buf = NULL;
        json_object *doc = NULL, *arr;
        size_t len = 0;
        int status = 0, r;

        r = gpuh_child_collect(q->pid, q->fd, q->deadline, ANSWER_MAX, &buf, &len, &status);
        if (!info) {
                r = -ENOMEM;
                goto out;
        }
        if (r == -ENOMEM)
                goto out;
        if (r == -ETIMEDOUT)
                r = set_error(info, "no answer from NVML within %d ms", q->timeout_ms);
        else if (r < 0)
                r = set_error(info, "NVML query failed: %s", strerror(-r));
        else if (!(doc = json_tokener_parse(buf)) || !json_object_is_type(doc, json_type_object))
                r = set_error(info, "NVML query process failed (%s)",
                              WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "malformed answer");
        else if (jstr(doc, "error"))
                r = set_error(info, "%s", jstr(doc, "error"));
        else if (!(arr = jarr(doc, "gpus")) || json_object_array_length(arr) != q->n)
                r = set_error(info, "NVML query process failed (malformed answer)");
        else {
                info->gpus = calloc(q->n + 1, sizeof(*info->gpus));
                if (!info->gpus)
                        r = -ENOMEM;
                for (size_t i = 0; r == 0 && i < q->n; i++) {
                        info->gpus[i].addr = q->gpus[i];
                        info->n_gpus++;
                        r = parse_gpu(json_object_array_get_idx(arr, i), &info->gpus[i]);
                }
        }
        json_object_put(doc);
        if (r == 0)
                *ret = TAKE_PTR(info);
out:
        free(q->gpus);
        free(q);
        return r;
}

int gpuh_nvml_query(const char *lib, const struct gpuh_pci_addr *gpus, size_t n, int timeout_ms,
                    struct gpuh_nvml_info **ret)
{
        struct gpuh_nvml_query *q;
        int r = gpuh_nvml_query_start(lib, gpus, n, timeout_ms, &q);

        if (r < 0)
                return r;
        return gpuh_nvml_query_finish(q, ret);
}

const struct gpuh_nvml_gpu *gpuh_nvml_info_gpu(const struct gpuh_nvml_info *i, const struct gpuh_pci_addr *addr)
{
        for (size_t k = 0; i && k < i->n_gpus; k++)
                if (gpuh_pci_addr_cmp(&i->gpus[k].addr, addr) == 0)
                        return &i->gpus[k];
        return NULL;
}

const struct gpuh_nvml_type *gpuh_nvml_gpu_type(const struct gpuh_nvml_gpu *g, unsigned id)
{
        for (size_t k = 0; g && k < g->n_types; k++)
                if (g->types[k].id == id)
                        return &g->types[k];
        return NULL;
}

/* Each change's name (a dry run's step) and what its error lines call it. */
static const struct {
        const char *name, *what;
} ops[_GPUH_NVML_OP_MAX] = {
        [GPUH_NVML_SET_MIG_MODE] = { "set-mig-mode", "set MIG mode" },
        [GPUH_NVML_CREATE_GI] = { "create-gpu-instance", "create GPU instance" },
        [GPUH_NVML_DESTROY_GI] = { "destroy-gpu-instance", "destroy GPU instance" },
        [GPUH_NVML_SET_VGPU_MODE] = { "set-vgpu-mode", "set vGPU mode" },
};

const char *gpuh_nvml_op_to_string(enum gpuh_nvml_op op)
{
        return (unsigned) op < _GPUH_NVML_OP_MAX ? ops[op].name : NULL;
}

int gpuh_nvml_change(const char *lib, const struct gpuh_pci_addr *gpu, enum gpuh_nvml_op op, unsigned arg0,
                     unsigned arg1, unsigned arg2, int timeout_ms, unsigned *ret, char **reterr)
{
        _cleanup_free_ char *buf = NULL;
        const unsigned arg[3] = { arg0, arg1, arg2 };
        char a[GPUH_PCI_ADDR_MAX];
        json_object *doc;
        int64_t deadline;
        size_t len = 0;
        int fd, status = 0, r;
        pid_t pid;

        if ((unsigned) op >= _GPUH_NVML_OP_MAX)
                return gpuh_error(reterr, -EINVAL, "NVML: unknown operation %d", (int) op);
        gpuh_pci_addr_format(gpu, a);
        if (timeout_ms <= 0)
                timeout_ms = 1;
        deadline = gpuh_mono_ms() + timeout_ms;
        r = start_child(&fd, &pid);
        if (r < 0)
                return gpuh_error(reterr, r, "GPU %s: %s: cannot start the NVML process: %s", a, ops[op].what, strerror(-r));
        if (pid == 0)
                gpuh_nvml_change_child(fd, lib ? lib : GPUH_NVML_LIB_DEFAULT, gpu, op, arg);
        r = gpuh_child_collect(pid, fd, deadline, 65536, &buf, &len, &status);
        if (r == -ENOMEM)
                return r;
        if (r == -ETIMEDOUT)
                return gpuh_error(reterr, r, "GPU %s: %s: no answer from NVML within %d ms", a, ops[op].what, timeout_ms);
        if (r < 0)
                return gpuh_error(reterr, r, "GPU %s: %s: %s", a, ops[op].what, strerror(-r));
        doc = json_tokener_parse(buf);
        if (!doc || !json_object_is_type(doc, json_type_object)) {
                json_object_put(doc);
                return gpuh_error(reterr, -EIO, "GPU %s: %s: the NVML process failed", a, ops[op].what);
        }
        if (jstr(doc, "error")) {
                int64_t code = jint(doc, "code", -1);
                const char *call = jstr(doc, "error_call");

                r = code < 0 ? -ENOENT : nvml_errno((int) code);       /* no code: NVML not loaded */
                r = gpuh_error(reterr, r, "GPU %s: %s: %s%s%s", a, ops[op].what, call ? call : "", call ? ": " : "",
                               jstr(doc, "error"));
                json_object_put(doc);
                return r;
        }
        if (jstr(doc, "activation_error"))
                gpuh_log(LOG_NOTICE, "GPU %s: %s: %s", a, ops[op].what, jstr(doc, "activation_error"));
        if (ret)
                *ret = (unsigned) jint(doc, "id", 0);
        json_object_put(doc);
        return 0;
}
