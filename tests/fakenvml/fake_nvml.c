/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_nvml.c: a stand-in for NVIDIA's libnvidia-ml.so.1, for tests on machines without a GPU.
 *
 * It implements only the entry points common/nvml.c uses, with NVML's signatures, return codes
 * and structure layouts as NVIDIA's NVML API reference documents them (docs.nvidia.com/deploy/
 * nvml-api/; C declarations as in NVIDIA/go-nvml pkg/nvml/nvml.h). Its state is a JSON file
 * named by $GPUH_FAKE_NVML_STATE (a test library may read the environment), read at every call
 * and rewritten (write + rename) by the calls that change something; the FUSE sysfs emulator
 * (tests/emu) reads and updates the same file, so a GI created here makes its MIG-backed vGPU
 * types creatable in sysfs there. Format and rules: tests/fakenvml/README.md.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#define EXPORT __attribute__((visibility("default")))

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlGpuInstance_st *nvmlGpuInstance_t;
typedef unsigned int nvmlVgpuTypeId_t;

enum {
        NVML_SUCCESS = 0,
        NVML_ERROR_UNINITIALIZED = 1,
        NVML_ERROR_INVALID_ARGUMENT = 2,
        NVML_ERROR_NOT_SUPPORTED = 3,
        NVML_ERROR_NOT_FOUND = 6,
        NVML_ERROR_INSUFFICIENT_SIZE = 7,
        NVML_ERROR_DRIVER_NOT_LOADED = 9,
        NVML_ERROR_RESET_REQUIRED = 16,
        NVML_ERROR_IN_USE = 19,
        NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
        NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
        NVML_ERROR_UNKNOWN = 999,
};

#define INVALID_GPU_INSTANCE_PROFILE_ID 0xFFFFFFFFu
#define STRUCT_VERSION(type, ver) ((unsigned int) (sizeof(type) | ((ver) << 24U)))

typedef struct { unsigned int start, size; } nvmlGpuInstancePlacement_t;

typedef struct {
        unsigned int version, id, isP2pSupported, sliceCount, instanceCount, multiprocessorCount,
                copyEngineCount, decoderCount, encoderCount, jpegCount, ofaCount;
        unsigned long long memorySizeMB;
        char name[96];
} nvmlGpuInstanceProfileInfo_v2_t;

typedef struct {
        nvmlDevice_t device;
        unsigned int id, profileId;
        nvmlGpuInstancePlacement_t placement;
} nvmlGpuInstanceInfo_t;

typedef struct { unsigned int version, mode; } nvmlVgpuHeterogeneousMode_v1_t;

/* The entry points, as declared in NVML's nvml.h. */
#define P EXPORT nvmlReturn_t
P nvmlInit_v2(void);
P nvmlShutdown(void);
P nvmlDeviceGetHandleByPciBusId_v2(const char *bus_id, nvmlDevice_t *device);
P nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned *current, unsigned *pending);
P nvmlDeviceSetMigMode(nvmlDevice_t device, unsigned mode, nvmlReturn_t *activation);
P nvmlDeviceGetGpuInstanceProfileInfoV(nvmlDevice_t device, unsigned profile, nvmlGpuInstanceProfileInfo_v2_t *info);
P nvmlDeviceGetGpuInstances(nvmlDevice_t device, unsigned profile_id, nvmlGpuInstance_t *gis, unsigned *count);
P nvmlDeviceGetGpuInstancePossiblePlacements_v2(nvmlDevice_t device, unsigned profile_id,
                                                nvmlGpuInstancePlacement_t *placements, unsigned *count);
P nvmlDeviceGetGpuInstanceRemainingCapacity(nvmlDevice_t device, unsigned profile_id, unsigned *count);
P nvmlGpuInstanceGetInfo(nvmlGpuInstance_t gi, nvmlGpuInstanceInfo_t *info);
P nvmlDeviceCreateGpuInstanceWithPlacement(nvmlDevice_t device, unsigned profile_id,
                                           const nvmlGpuInstancePlacement_t *pl, nvmlGpuInstance_t *ret);
P nvmlDeviceGetGpuInstanceById(nvmlDevice_t device, unsigned id, nvmlGpuInstance_t *ret);
P nvmlGpuInstanceDestroy(nvmlGpuInstance_t gi);
P nvmlDeviceGetSupportedVgpus(nvmlDevice_t device, unsigned *count, nvmlVgpuTypeId_t *ids);
P nvmlDeviceGetCreatableVgpus(nvmlDevice_t device, unsigned *count, nvmlVgpuTypeId_t *ids);
P nvmlVgpuTypeGetName(nvmlVgpuTypeId_t id, char *name, unsigned *size);
P nvmlVgpuTypeGetFramebufferSize(nvmlVgpuTypeId_t id, unsigned long long *fb);
P nvmlVgpuTypeGetMaxInstances(nvmlDevice_t device, nvmlVgpuTypeId_t id, unsigned *n);
P nvmlVgpuTypeGetGpuInstanceProfileId(nvmlVgpuTypeId_t id, unsigned *profile);
P nvmlDeviceGetVgpuHeterogeneousMode(nvmlDevice_t device, nvmlVgpuHeterogeneousMode_v1_t *m);
P nvmlDeviceSetVgpuHeterogeneousMode(nvmlDevice_t device, const nvmlVgpuHeterogeneousMode_v1_t *m);
#undef P

static int initialised;

/* ---- state ---- */

static json_object *load(void)
{
        const char *p = getenv("GPUH_FAKE_NVML_STATE");

        return p ? json_object_from_file(p) : NULL;
}

static int save(json_object *doc)
{
        const char *p = getenv("GPUH_FAKE_NVML_STATE");
        char tmp[4096];

        snprintf(tmp, sizeof(tmp), "%s.fake.%d", p, (int) getpid());
        if (json_object_to_file_ext(tmp, doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED) < 0)
                return -1;
        return rename(tmp, p);
}

static json_object *get(json_object *o, const char *k)
{
        json_object *v;

        return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static int64_t geti(json_object *o, const char *k, int64_t dflt)
{
        json_object *v = get(o, k);

        return v ? json_object_get_int64(v) : dflt;
}

/* Failure injection: "fail": {"nvmlFoo": code} (top level or per GPU); "hang": "nvmlFoo". */
static int injected(json_object *doc, json_object *gpu, const char *fn)
{
        json_object *h = get(doc, "hang");

        if (h && strcmp(json_object_get_string(h), fn) == 0)
                for (;;)
                        pause();
        if (get(get(gpu, "fail"), fn))
                return (int) geti(get(gpu, "fail"), fn, NVML_ERROR_UNKNOWN);
        if (get(get(doc, "fail"), fn))
                return (int) geti(get(doc, "fail"), fn, NVML_ERROR_UNKNOWN);
        return 0;
}

/* Device handles are 1 + the GPU's index in the file; GI handles 1 + (index << 16 | id). */
static json_object *gpu_of(json_object *doc, nvmlDevice_t d, size_t *ret_idx)
{
        uintptr_t i = (uintptr_t) d;
        json_object *gpus = get(doc, "gpus");

        if (i == 0 || !gpus || i - 1 >= json_object_array_length(gpus))
                return NULL;
        if (ret_idx)
                *ret_idx = i - 1;
        return json_object_array_get_idx(gpus, i - 1);
}

#define BEGIN(fn, dev)                                                                          \
        json_object *doc = load(), *gpu = NULL;                                                 \
        size_t gidx = 0;                                                                        \
        int rc;                                                                                 \
        (void) gidx;                                                                            \
        if (!initialised) { json_object_put(doc); return NVML_ERROR_UNINITIALIZED; }            \
        if (!doc) return NVML_ERROR_UNKNOWN;                                                    \
        if ((dev) != (nvmlDevice_t) -1 && !(gpu = gpu_of(doc, (dev), &gidx))) {                 \
                json_object_put(doc); return NVML_ERROR_INVALID_ARGUMENT; }                     \
        if ((rc = injected(doc, gpu, fn))) { json_object_put(doc); return rc; }

#define END(code) do { int _c = (code); json_object_put(doc); return _c; } while (0)

static int mig_current(json_object *gpu)
{
        return (int) geti(get(gpu, "mig"), "current", -1);
}

/* ---- entry points ---- */

EXPORT nvmlReturn_t nvmlInit_v2(void)
{
        json_object *doc = load();
        int rc;

        if (!doc)
                return NVML_ERROR_DRIVER_NOT_LOADED;
        rc = injected(doc, NULL, "nvmlInit_v2");
        json_object_put(doc);
        if (rc)
                return rc;
        initialised++;
        return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlShutdown(void)
{
        if (!initialised)
                return NVML_ERROR_UNINITIALIZED;
        initialised--;
        return NVML_SUCCESS;
}

static int parse_bus_id(const char *s, unsigned v[4])
{
        return sscanf(s, "%x:%x:%x.%x", &v[0], &v[1], &v[2], &v[3]) == 4 ? 0 : -1;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *bus_id, nvmlDevice_t *device)
{
        unsigned want[4], have[4];
        json_object *gpus;

        BEGIN("nvmlDeviceGetHandleByPciBusId_v2", (nvmlDevice_t) -1);
        if (!bus_id || !device || parse_bus_id(bus_id, want) < 0)
                END(NVML_ERROR_INVALID_ARGUMENT);
        gpus = get(doc, "gpus");
        for (size_t i = 0; gpus && i < json_object_array_length(gpus); i++) {
                json_object *id = get(json_object_array_get_idx(gpus, i), "pci_bus_id");
                if (id && parse_bus_id(json_object_get_string(id), have) == 0 && !memcmp(want, have, sizeof(want))) {
                        if ((rc = injected(doc, json_object_array_get_idx(gpus, i), "nvmlDeviceGetHandleByPciBusId_v2")))
                                END(rc);
                        *device = (nvmlDevice_t) (uintptr_t) (i + 1);
                        END(NVML_SUCCESS);
                }
        }
        END(NVML_ERROR_NOT_FOUND);
}

EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned *current, unsigned *pending)
{
        BEGIN("nvmlDeviceGetMigMode", device);
        if (!current || !pending)
                END(NVML_ERROR_INVALID_ARGUMENT);
        if (!get(gpu, "mig"))
                END(NVML_ERROR_NOT_SUPPORTED);
        *current = (unsigned) geti(get(gpu, "mig"), "current", 0);
        *pending = (unsigned) geti(get(gpu, "mig"), "pending", *current);
        END(NVML_SUCCESS);
}

/* Refusals of mig-vgpu.md: MIG mode cannot change while VFs are enabled (the driver refuses
 * MIG off with VFs; enabling VFs wipes GIs, so MIG goes first); MIG off needs no GI left. */
EXPORT nvmlReturn_t nvmlDeviceSetMigMode(nvmlDevice_t device, unsigned mode, nvmlReturn_t *activation)
{
        json_object *mig;

        BEGIN("nvmlDeviceSetMigMode", device);
        if (!activation || mode > 1)
                END(NVML_ERROR_INVALID_ARGUMENT);
        if (!(mig = get(gpu, "mig")))
                END(NVML_ERROR_NOT_SUPPORTED);
        if (geti(gpu, "vfs_enabled", 0))
                END(NVML_ERROR_IN_USE);
        if (mode == 0 && get(gpu, "gpu_instances") && json_object_array_length(get(gpu, "gpu_instances")) > 0)
                END(NVML_ERROR_IN_USE);
        json_object_object_add(mig, "pending", json_object_new_int((int) mode));
        *activation = NVML_SUCCESS;
        if (geti(mig, "needs_reset", 0))
                *activation = NVML_ERROR_RESET_REQUIRED;        /* Ampere: pending until a GPU reset */
        else
                json_object_object_add(mig, "current", json_object_new_int((int) mode));
        END(save(doc) < 0 ? NVML_ERROR_UNKNOWN : NVML_SUCCESS);
}

static json_object *profile_by(json_object *gpu, const char *key, unsigned v)
{
        json_object *ps = get(gpu, "gi_profiles");

        for (size_t i = 0; ps && i < json_object_array_length(ps); i++)
                if (geti(json_object_array_get_idx(ps, i), key, -1) == (int64_t) v)
                        return json_object_array_get_idx(ps, i);
        return NULL;
}

EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfoV(nvmlDevice_t device, unsigned profile,
                                                        nvmlGpuInstanceProfileInfo_v2_t *info)
{
        json_object *p;

        BEGIN("nvmlDeviceGetGpuInstanceProfileInfoV", device);
        if (!info)
                END(NVML_ERROR_INVALID_ARGUMENT);
        if (info->version != STRUCT_VERSION(nvmlGpuInstanceProfileInfo_v2_t, 2))
                END(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
        if (!get(gpu, "mig") || !(p = profile_by(gpu, "index", profile)))
                END(NVML_ERROR_NOT_SUPPORTED);
        memset((char *) info + sizeof(info->version), 0, sizeof(*info) - sizeof(info->version));
        info->id = (unsigned) geti(p, "id", 0);
        info->sliceCount = (unsigned) geti(p, "slices", 1);
        info->instanceCount = (unsigned) geti(p, "instances", 1);
        info->memorySizeMB = (unsigned long long) geti(p, "memory_mib", 0);
        snprintf(info->name, sizeof(info->name), "%s", get(p, "name") ? json_object_get_string(get(p, "name")) : "");
        END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetGpuInstances(nvmlDevice_t device, unsigned profile_id, nvmlGpuInstance_t *gis,
                                             unsigned *count)
{
        json_object *arr;
        unsigned n = 0;

        BEGIN("nvmlDeviceGetGpuInstances", device);
        if (!gis || !count)
                END(NVML_ERROR_INVALID_ARGUMENT);
        if (mig_current(gpu) != 1)
                END(NVML_ERROR_NOT_SUPPORTED);
        if (!profile_by(gpu, "id", profile_id))
                END(NVML_ERROR_INVALID_ARGUMENT);
        arr = get(gpu, "gpu_instances");
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
                json_object *g = json_object_array_get_idx(arr, i);
                if (geti(g, "profile_id", -1) == (int64_t) profile_id)
                        gis[n++] = (nvmlGpuInstance_t) (uintptr_t) (1 + ((gidx << 16) | (uintptr_t) geti(g, "id", 0)));
        }
        *count = n;
        END(NVML_SUCCESS);
}

/* All placements of the profile, taken or not, in or out of MIG mode (NVML reference). */
EXPORT nvmlReturn_t nvmlDeviceGetGpuInstancePossiblePlacements_v2(nvmlDevice_t device, unsigned profile_id,
                                                                 nvmlGpuInstancePlacement_t *placements, unsigned *count)
{
        json_object *p, *pls;
        unsigned n;

        BEGIN("nvmlDeviceGetGpuInstancePossiblePlacements_v2", device);
        if (!count)
                END(NVML_ERROR_INVALID_ARGUMENT);
        if (!get(gpu, "mig") || !(p = profile_by(gpu, "id", profile_id)))
                END(NVML_ERROR_NOT_SUPPORTED);
        pls = get(p, "placements");
        n = pls ? (unsigned) json_object_array_length(pls) : 0;
        for (unsigned i = 0; placements && i < n; i++) {
                placements[i].start = (unsigned) geti(json_object_array_get_idx(pls, i), "start", 0);
                placements[i].size = (unsigned) geti(json_object_array_get_idx(pls, i), "size", 0);
        }
        *count = n;
        END(NVML_SUCCESS);
}

/* How many more GIs of the profile fit: its placements free of every GI and of each other
 * (greedy, in the profile's order: MIG placements are aligned), within its instance count. */
EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceRemainingCapacity(nvmlDevice_t device, unsigned profile_id, unsigned *count)
{
        json_object *p, *pls, *gis;
        unsigned long long taken = 0;
        unsigned n = 0, same = 0;

        BEGIN("nvmlDeviceGetGpuInstanceRemainingCapacity", device);
        if (!count)
                END(NVML_ERROR_INVALID_ARGUMENT);
        if (mig_current(gpu) != 1 || !(p = profile_by(gpu, "id", profile_id)))
                END(NVML_ERROR_NOT_SUPPORTED);
        gis = get(gpu, "gpu_instances");
        for (size_t i = 0; gis && i < json_object_array_length(gis); i++) {
                json_object *g = json_object_array_get_idx(gis, i);
                for (int64_t s = geti(g, "start", 0); s < geti(g, "start", 0) + geti(g, "size", 0) && s < 64; s++)
                        taken |= 1ULL << s;
                same += geti(g, "profile_id", -1) == (int64_t) profile_id;
        }
        pls = get(p, "placements");
        for (size_t i = 0; pls && i < json_object_array_length(pls); i++) {
                int64_t s0 = geti(json_object_array_get_idx(pls, i), "start", 0),
                        sz = geti(json_object_array_get_idx(pls, i), "size", 0);
                unsigned long long m = 0;

                for (int64_t s = s0; s < s0 + sz && s < 64; s++)
                        m |= 1ULL << s;
                if (m && !(m & taken)) {
                        taken |= m;
                        n++;
                }
        }
        if (same >= (unsigned) geti(p, "instances", 1))
                n = 0;
        else if (n > (unsigned) geti(p, "instances", 1) - same)
                n = (unsigned) geti(p, "instances", 1) - same;
        *count = n;
        END(NVML_SUCCESS);
}

static json_object *gi_of(json_object *doc, nvmlGpuInstance_t h, json_object **ret_gpu, size_t *ret_idx)
{
        uintptr_t v = (uintptr_t) h;
        json_object *gpu, *arr;

        if (v == 0)
                return NULL;
        v--;
        gpu = gpu_of(doc, (nvmlDevice_t) ((v >> 16) + 1), ret_idx);
        arr = get(gpu, "gpu_instances");
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
                if (geti(json_object_array_get_idx(arr, i), "id", -1) == (int64_t) (v & 0xffff)) {
                        *ret_gpu = gpu;
                        return json_object_array_get_idx(arr, i);
                }
        return NULL;
}

EXPORT nvmlReturn_t nvmlGpuInstanceGetInfo(nvmlGpuInstance_t gi, nvmlGpuInstanceInfo_t *info)
{
        json_object *g;

        BEGIN("nvmlGpuInstanceGetInfo", (nvmlDevice_t) -1);
        if (!info || !(g = gi_of(doc, gi, &gpu, &gidx)))
                END(NVML_ERROR_INVALID_ARGUMENT);
        info->device = (nvmlDevice_t) (uintptr_t) (gidx + 1);
        info->id = (unsigned) geti(g, "id", 0);
        info->profileId = (unsigned) geti(g, "profile_id", 0);
        info->placement.start = (unsigned) geti(g, "start", 0);
        info->placement.size = (unsigned) geti(g, "size", 0);
        END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceCreateGpuInstanceWithPlacement(nvmlDevice_t device, unsigned profile_id,
                                                            const nvmlGpuInstancePlacement_t *pl, nvmlGpuInstance_t *ret)
{
        json_object *p, *arr, *pls, *g;
        unsigned used = 0, id = 1, same = 0;
        bool ok = false;

        BEGIN("nvmlDeviceCreateGpuInstanceWithPlacement", device);
        if (!pl || !ret)
                END(NVML_ERROR_INVALID_ARGUMENT);
        if (mig_current(gpu) != 1)
                END(NVML_ERROR_NOT_SUPPORTED);
        if (!(p = profile_by(gpu, "id", profile_id)))
                END(NVML_ERROR_INVALID_ARGUMENT);
        pls = get(p, "placements");
        for (size_t i = 0; pls && i < json_object_array_length(pls) && !ok; i++) {
                json_object *e = json_object_array_get_idx(pls, i);
                ok = geti(e, "start", -1) == (int64_t) pl->start && geti(e, "size", -1) == (int64_t) pl->size;
        }
        if (!ok)
                END(NVML_ERROR_INVALID_ARGUMENT);
        if (!(arr = get(gpu, "gpu_instances"))) {
                arr = json_object_new_array();
                json_object_object_add(gpu, "gpu_instances", arr);
        }
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                unsigned s = (unsigned) geti(e, "start", 0), z = (unsigned) geti(e, "size", 0);
                if (pl->start < s + z && s < pl->start + pl->size)
                        END(NVML_ERROR_INSUFFICIENT_RESOURCES);         /* slices taken */
                used |= 1u << (geti(e, "id", 0) & 31);
                same += geti(e, "profile_id", -1) == (int64_t) profile_id;
        }
        if (same >= (unsigned) geti(p, "instances", 1))
                END(NVML_ERROR_INSUFFICIENT_RESOURCES);
        while (used & (1u << id))
                id++;
        g = json_object_new_object();
        json_object_object_add(g, "id", json_object_new_int((int) id));
        json_object_object_add(g, "profile_id", json_object_new_int((int) profile_id));
        json_object_object_add(g, "start", json_object_new_int((int) pl->start));
        json_object_object_add(g, "size", json_object_new_int((int) pl->size));
        json_object_array_add(arr, g);
        *ret = (nvmlGpuInstance_t) (uintptr_t) (1 + ((gidx << 16) | id));
        END(save(doc) < 0 ? NVML_ERROR_UNKNOWN : NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceById(nvmlDevice_t device, unsigned id, nvmlGpuInstance_t *ret)
{
        json_object *arr;

        BEGIN("nvmlDeviceGetGpuInstanceById", device);
        if (!ret)
                END(NVML_ERROR_INVALID_ARGUMENT);
        if (mig_current(gpu) != 1)
                END(NVML_ERROR_NOT_SUPPORTED);
        arr = get(gpu, "gpu_instances");
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
                if (geti(json_object_array_get_idx(arr, i), "id", -1) == (int64_t) id) {
                        *ret = (nvmlGpuInstance_t) (uintptr_t) (1 + ((gidx << 16) | id));
                        END(NVML_SUCCESS);
                }
        END(NVML_ERROR_NOT_FOUND);
}

/* A GI a vGPU sits on ("in_use": true, kept by the emulator) is refused. */
EXPORT nvmlReturn_t nvmlGpuInstanceDestroy(nvmlGpuInstance_t gi)
{
        json_object *g, *arr;

        BEGIN("nvmlGpuInstanceDestroy", (nvmlDevice_t) -1);
        if (!(g = gi_of(doc, gi, &gpu, &gidx)))
                END(NVML_ERROR_INVALID_ARGUMENT);
        if (geti(g, "in_use", 0))
                END(NVML_ERROR_IN_USE);
        arr = get(gpu, "gpu_instances");
        for (size_t i = 0; i < json_object_array_length(arr); i++)
                if (json_object_array_get_idx(arr, i) == g) {
                        json_object_array_del_idx(arr, i, 1);
                        break;
                }
        END(save(doc) < 0 ? NVML_ERROR_UNKNOWN : NVML_SUCCESS);
}

static json_object *type_by_id(json_object *doc, json_object *gpu, unsigned id)
{
        json_object *gpus = get(doc, "gpus");

        for (size_t k = 0; gpus && k < json_object_array_length(gpus); k++) {
                json_object *g = gpu ? gpu : json_object_array_get_idx(gpus, k), *ts = get(g, "vgpu_types");
                for (size_t i = 0; ts && i < json_object_array_length(ts); i++)
                        if (geti(json_object_array_get_idx(ts, i), "id", -1) == (int64_t) id)
                                return json_object_array_get_idx(ts, i);
                if (gpu)
                        break;
        }
        return NULL;
}

static nvmlReturn_t list_types(json_object *gpu, bool only_creatable, unsigned *count, nvmlVgpuTypeId_t *ids)
{
        json_object *ts = get(gpu, "vgpu_types"), *gis = get(gpu, "gpu_instances");
        unsigned n = 0, cap = *count;
        int mig = mig_current(gpu);

        for (size_t i = 0; ts && i < json_object_array_length(ts); i++) {
                json_object *t = json_object_array_get_idx(ts, i);
                int64_t prof = geti(t, "gi_profile_id", -1);
                bool ok = true;

                if (only_creatable) {
                        /* time-sliced types outside MIG mode; a MIG-backed one while a GI of its profile exists */
                        ok = mig == 1 ? prof >= 0 : prof < 0;
                        if (ok && prof >= 0) {
                                ok = false;
                                for (size_t k = 0; gis && k < json_object_array_length(gis) && !ok; k++)
                                        ok = geti(json_object_array_get_idx(gis, k), "profile_id", -2) == prof &&
                                             !geti(json_object_array_get_idx(gis, k), "in_use", 0);
                        }
                }
                if (!ok)
                        continue;
                if (n < cap && ids)
                        ids[n] = (unsigned) geti(t, "id", 0);
                n++;
        }
        *count = n;
        return n > cap ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetSupportedVgpus(nvmlDevice_t device, unsigned *count, nvmlVgpuTypeId_t *ids)
{
        BEGIN("nvmlDeviceGetSupportedVgpus", device);
        if (!count)
                END(NVML_ERROR_INVALID_ARGUMENT);
        END(list_types(gpu, false, count, ids));
}

EXPORT nvmlReturn_t nvmlDeviceGetCreatableVgpus(nvmlDevice_t device, unsigned *count, nvmlVgpuTypeId_t *ids)
{
        BEGIN("nvmlDeviceGetCreatableVgpus", device);
        if (!count)
                END(NVML_ERROR_INVALID_ARGUMENT);
        END(list_types(gpu, true, count, ids));
}

EXPORT nvmlReturn_t nvmlVgpuTypeGetName(nvmlVgpuTypeId_t id, char *name, unsigned *size)
{
        json_object *t;
        const char *s;

        BEGIN("nvmlVgpuTypeGetName", (nvmlDevice_t) -1);
        if (!name || !size)
                END(NVML_ERROR_INVALID_ARGUMENT);
        if (!(t = type_by_id(doc, NULL, id)))
                END(NVML_ERROR_INVALID_ARGUMENT);
        s = get(t, "name") ? json_object_get_string(get(t, "name")) : "";
        if (strlen(s) + 1 > *size) {
                *size = (unsigned) strlen(s) + 1;
                END(NVML_ERROR_INSUFFICIENT_SIZE);
        }
        memcpy(name, s, strlen(s) + 1);
        *size = (unsigned) strlen(s) + 1;
        END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlVgpuTypeGetFramebufferSize(nvmlVgpuTypeId_t id, unsigned long long *fb)
{
        json_object *t;

        BEGIN("nvmlVgpuTypeGetFramebufferSize", (nvmlDevice_t) -1);
        if (!fb || !(t = type_by_id(doc, NULL, id)))
                END(NVML_ERROR_INVALID_ARGUMENT);
        *fb = (unsigned long long) geti(t, "framebuffer_mib", 0) << 20;        /* bytes */
        END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlVgpuTypeGetMaxInstances(nvmlDevice_t device, nvmlVgpuTypeId_t id, unsigned *n)
{
        json_object *t;

        BEGIN("nvmlVgpuTypeGetMaxInstances", device);
        if (!n || !(t = type_by_id(doc, gpu, id)))
                END(NVML_ERROR_INVALID_ARGUMENT);
        *n = (unsigned) geti(t, "max_instances", 0);
        END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlVgpuTypeGetGpuInstanceProfileId(nvmlVgpuTypeId_t id, unsigned *profile)
{
        json_object *t;
        int64_t p;

        BEGIN("nvmlVgpuTypeGetGpuInstanceProfileId", (nvmlDevice_t) -1);
        if (!profile || !(t = type_by_id(doc, NULL, id)))
                END(NVML_ERROR_INVALID_ARGUMENT);
        p = geti(t, "gi_profile_id", -1);
        *profile = p < 0 ? INVALID_GPU_INSTANCE_PROFILE_ID : (unsigned) p;
        END(NVML_SUCCESS);
}

/* NVML_ERROR_NOT_SUPPORTED in MIG mode or on a GPU without the feature (NVML reference). */
EXPORT nvmlReturn_t nvmlDeviceGetVgpuHeterogeneousMode(nvmlDevice_t device, nvmlVgpuHeterogeneousMode_v1_t *m)
{
        BEGIN("nvmlDeviceGetVgpuHeterogeneousMode", device);
        if (!m)
                END(NVML_ERROR_INVALID_ARGUMENT);
        if (m->version != STRUCT_VERSION(nvmlVgpuHeterogeneousMode_v1_t, 1))
                END(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
        if (mig_current(gpu) == 1 || !get(gpu, "vgpu_heterogeneous_mode"))
                END(NVML_ERROR_NOT_SUPPORTED);
        m->mode = (unsigned) geti(gpu, "vgpu_heterogeneous_mode", 0);
        END(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceSetVgpuHeterogeneousMode(nvmlDevice_t device, const nvmlVgpuHeterogeneousMode_v1_t *m)
{
        BEGIN("nvmlDeviceSetVgpuHeterogeneousMode", device);
        if (!m || m->mode > 1)
                END(NVML_ERROR_INVALID_ARGUMENT);
        if (m->version != STRUCT_VERSION(nvmlVgpuHeterogeneousMode_v1_t, 1))
                END(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
        if (mig_current(gpu) == 1 || !get(gpu, "vgpu_heterogeneous_mode"))
                END(NVML_ERROR_NOT_SUPPORTED);
        if (geti(gpu, "vgpus_set", 0) > 0)
                END(NVML_ERROR_IN_USE);         /* [FAKE] a mode change with vGPUs on the GPU */
        json_object_object_add(gpu, "vgpu_heterogeneous_mode", json_object_new_int((int) m->mode));
        END(save(doc) < 0 ? NVML_ERROR_UNKNOWN : NVML_SUCCESS);
}
