/* SPDX-License-Identifier: Apache-2.0 */
/* nvml_child.c: the child processes that load NVML (dlopen) and ask or change what the parent
 * (nvml.c) wants, answering in JSON through a pipe. */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fileio.h"
#include "macro.h"
#include "nvml.h"
#include "nvml_child.h"

/*
 * The part of NVML's API used here, as NVIDIA's NVML API reference documents it
 * (docs.nvidia.com/deploy/nvml-api/; C declarations as in NVIDIA/go-nvml pkg/nvml/nvml.h).
 * Nothing else of nvml.h is needed, so it is not a build dependency.
 */
typedef int nvmlReturn_t;                               /* enum nvmlReturn_enum */
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlGpuInstance_st *nvmlGpuInstance_t;
typedef unsigned int nvmlVgpuTypeId_t;

#define NVML_GPU_INSTANCE_PROFILE_COUNT 0x12            /* profile indexes 0 .. 0x11 (NVML 12.9) */
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_VGPU_NAME_BUFFER_SIZE 64
#define INVALID_GPU_INSTANCE_PROFILE_ID 0xFFFFFFFFu
#define NVML_STRUCT_VERSION(type, ver) ((unsigned int) (sizeof(type) | ((ver) << 24U)))

typedef struct {
        unsigned int start;             /* index of the first memory slice */
        unsigned int size;              /* memory slices */
} nvmlGpuInstancePlacement_t;

typedef struct {
        unsigned int version;           /* nvmlGpuInstanceProfileInfo_v2 */
        unsigned int id;
        unsigned int isP2pSupported;
        unsigned int sliceCount;
        unsigned int instanceCount;
        unsigned int multiprocessorCount;
        unsigned int copyEngineCount;
        unsigned int decoderCount;
        unsigned int encoderCount;
        unsigned int jpegCount;
        unsigned int ofaCount;
        unsigned long long memorySizeMB;
        char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
} nvmlGpuInstanceProfileInfo_v2_t;

typedef struct {
        nvmlDevice_t device;
        unsigned int id;
        unsigned int profileId;
        nvmlGpuInstancePlacement_t placement;
} nvmlGpuInstanceInfo_t;

typedef struct {
        unsigned int version;           /* nvmlVgpuHeterogeneousMode_v1 */
        unsigned int mode;              /* NVML_FEATURE_ENABLED 1, _DISABLED 0 */
} nvmlVgpuHeterogeneousMode_v1_t;

struct nvml_api {
        nvmlReturn_t (*init)(void);                                                     /* nvmlInit_v2 */
        nvmlReturn_t (*shutdown)(void);                                                 /* nvmlShutdown */
        nvmlReturn_t (*handle_by_bus_id)(const char *, nvmlDevice_t *);                 /* nvmlDeviceGetHandleByPciBusId_v2 */
        nvmlReturn_t (*get_mig_mode)(nvmlDevice_t, unsigned *, unsigned *);             /* nvmlDeviceGetMigMode */
        nvmlReturn_t (*set_mig_mode)(nvmlDevice_t, unsigned, nvmlReturn_t *);           /* nvmlDeviceSetMigMode */
        nvmlReturn_t (*gi_profile_info)(nvmlDevice_t, unsigned, nvmlGpuInstanceProfileInfo_v2_t *);
                                                                                        /* nvmlDeviceGetGpuInstanceProfileInfoV */
        nvmlReturn_t (*get_gis)(nvmlDevice_t, unsigned, nvmlGpuInstance_t *, unsigned *);       /* nvmlDeviceGetGpuInstances */
        nvmlReturn_t (*placements)(nvmlDevice_t, unsigned, nvmlGpuInstancePlacement_t *, unsigned *);
                                                                                        /* nvmlDeviceGetGpuInstancePossiblePlacements_v2 */
        nvmlReturn_t (*remaining)(nvmlDevice_t, unsigned, unsigned *);                  /* nvmlDeviceGetGpuInstanceRemainingCapacity */
        nvmlReturn_t (*gi_info)(nvmlGpuInstance_t, nvmlGpuInstanceInfo_t *);            /* nvmlGpuInstanceGetInfo */
        nvmlReturn_t (*create_gi)(nvmlDevice_t, unsigned, const nvmlGpuInstancePlacement_t *, nvmlGpuInstance_t *);
                                                                                        /* nvmlDeviceCreateGpuInstanceWithPlacement */
        nvmlReturn_t (*gi_by_id)(nvmlDevice_t, unsigned, nvmlGpuInstance_t *);          /* nvmlDeviceGetGpuInstanceById */
        nvmlReturn_t (*destroy_gi)(nvmlGpuInstance_t);                                  /* nvmlGpuInstanceDestroy */
        nvmlReturn_t (*supported_vgpus)(nvmlDevice_t, unsigned *, nvmlVgpuTypeId_t *);  /* nvmlDeviceGetSupportedVgpus */
        nvmlReturn_t (*creatable_vgpus)(nvmlDevice_t, unsigned *, nvmlVgpuTypeId_t *);  /* nvmlDeviceGetCreatableVgpus */
        nvmlReturn_t (*type_name)(nvmlVgpuTypeId_t, char *, unsigned *);               /* nvmlVgpuTypeGetName */
        nvmlReturn_t (*type_fb)(nvmlVgpuTypeId_t, unsigned long long *);                /* nvmlVgpuTypeGetFramebufferSize */
        nvmlReturn_t (*type_max)(nvmlDevice_t, nvmlVgpuTypeId_t, unsigned *);           /* nvmlVgpuTypeGetMaxInstances */
        nvmlReturn_t (*type_gi_profile)(nvmlVgpuTypeId_t, unsigned *);                  /* nvmlVgpuTypeGetGpuInstanceProfileId */
        nvmlReturn_t (*get_hetero)(nvmlDevice_t, nvmlVgpuHeterogeneousMode_v1_t *);    /* nvmlDeviceGetVgpuHeterogeneousMode */
        nvmlReturn_t (*set_hetero)(nvmlDevice_t, const nvmlVgpuHeterogeneousMode_v1_t *);
                                                                                        /* nvmlDeviceSetVgpuHeterogeneousMode */
};
static int api_load(const char *lib, struct nvml_api *api, char *err, size_t size)
{
        void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);

        if (!h) {
                const char *e = dlerror();
                snprintf(err, size, "cannot load NVML: %s", e ? e : lib);
                return -ENOENT;
        }
#define SYM(field, name)                                                                        \
        if (!(*(void **) &api->field = dlsym(h, name))) {                                       \
                snprintf(err, size, "cannot load NVML: %s lacks %s", lib, name);                \
                return -ENOENT;                                                                 \
        }
        SYM(init, "nvmlInit_v2");
        SYM(shutdown, "nvmlShutdown");
        SYM(handle_by_bus_id, "nvmlDeviceGetHandleByPciBusId_v2");
        SYM(get_mig_mode, "nvmlDeviceGetMigMode");
        SYM(set_mig_mode, "nvmlDeviceSetMigMode");
        SYM(gi_profile_info, "nvmlDeviceGetGpuInstanceProfileInfoV");
        SYM(get_gis, "nvmlDeviceGetGpuInstances");
        SYM(placements, "nvmlDeviceGetGpuInstancePossiblePlacements_v2");
        SYM(remaining, "nvmlDeviceGetGpuInstanceRemainingCapacity");
        SYM(gi_info, "nvmlGpuInstanceGetInfo");
        SYM(create_gi, "nvmlDeviceCreateGpuInstanceWithPlacement");
        SYM(gi_by_id, "nvmlDeviceGetGpuInstanceById");
        SYM(destroy_gi, "nvmlGpuInstanceDestroy");
        SYM(supported_vgpus, "nvmlDeviceGetSupportedVgpus");
        SYM(creatable_vgpus, "nvmlDeviceGetCreatableVgpus");
        SYM(type_name, "nvmlVgpuTypeGetName");
        SYM(type_fb, "nvmlVgpuTypeGetFramebufferSize");
        SYM(type_max, "nvmlVgpuTypeGetMaxInstances");
        SYM(type_gi_profile, "nvmlVgpuTypeGetGpuInstanceProfileId");
        SYM(get_hetero, "nvmlDeviceGetVgpuHeterogeneousMode");
        SYM(set_hetero, "nvmlDeviceSetVgpuHeterogeneousMode");
#undef SYM
        return 0;
}

/* NVML's bus id form: "%08x:%02x:%02x.%x" (nvmlPciInfo_t.busId, NVML_DEVICE_PCI_BUS_ID_FMT). */
static void bus_id(const struct gpuh_pci_addr *a, char buf[32])
{
        snprintf(buf, 32, "%08x:%02x:%02x.%x", (unsigned) a->domain, a->bus, a->slot, a->func);
}

static void jset(json_object *o, const char *k, json_object *v)
{
        json_object_object_add(o, k, v);
}

/* The GIs of profile @pi into @gis (MIG mode only: GIs exist only there). */
static void child_gis(const struct nvml_api *api, nvmlDevice_t dev, const nvmlGpuInstanceProfileInfo_v2_t *pi,
                      json_object *gis)
{
        nvmlGpuInstance_t h[GPUH_NVML_MAX_GIS];
        unsigned cnt = GPUH_NVML_MAX_GIS;

        if (api->get_gis(dev, pi->id, h, &cnt) != NVML_SUCCESS)
                return;
        for (unsigned i = 0; i < cnt && i < GPUH_NVML_MAX_GIS; i++) {
                nvmlGpuInstanceInfo_t info;
                json_object *g;

                memset(&info, 0, sizeof(info));
                if (api->gi_info(h[i], &info) != NVML_SUCCESS)
                        continue;
                g = json_object_new_object();
                jset(g, "id", json_object_new_int64(info.id));
                jset(g, "profile_id", json_object_new_int64(info.profileId));
                jset(g, "profile_name", json_object_new_string(pi->name));
                jset(g, "start", json_object_new_int64(info.placement.start));
                jset(g, "size", json_object_new_int64(info.placement.size));
                json_object_array_add(gis, g);
        }
}

/* One GI profile (@pi) with its placements, and in MIG mode (@mig) its remaining capacity. */
static json_object *child_profile(const struct nvml_api *api, nvmlDevice_t dev, const nvmlGpuInstanceProfileInfo_v2_t *pi,
                                  bool mig)
{
        nvmlGpuInstancePlacement_t pl[GPUH_NVML_MAX_PLACEMENTS];
        unsigned npl = 0, rem = 0;
        json_object *po = json_object_new_object(), *pa = json_object_new_array();

        jset(po, "id", json_object_new_int64(pi->id));
        jset(po, "name", json_object_new_string(pi->name));
        jset(po, "slices", json_object_new_int64(pi->sliceCount));
        jset(po, "instances", json_object_new_int64(pi->instanceCount));
        jset(po, "memory_mib", json_object_new_int64((int64_t) pi->memorySizeMB));
        if (mig && api->remaining(dev, pi->id, &rem) == NVML_SUCCESS)
                jset(po, "remaining", json_object_new_int64(rem));
        /* the count first (NULL array): the array must hold them all */
        if (api->placements(dev, pi->id, NULL, &npl) == NVML_SUCCESS && npl <= GPUH_NVML_MAX_PLACEMENTS &&
            api->placements(dev, pi->id, pl, &npl) == NVML_SUCCESS)
                for (unsigned i = 0; i < npl && i < GPUH_NVML_MAX_PLACEMENTS; i++) {
                        json_object *e = json_object_new_object();
                        jset(e, "start", json_object_new_int64(pl[i].start));
                        jset(e, "size", json_object_new_int64(pl[i].size));
                        json_object_array_add(pa, e);
                }
        jset(po, "placements", pa);
        return po;
}

/* A MIG-capable GPU's profiles and GIs into @o: every profile index is asked
 * (NVML_GPU_INSTANCE_PROFILE_*), in MIG mode and out of it (where a layout's "mig": true
 * needs the profile table before switching MIG on); GIs in MIG mode only. Out of MIG mode a
 * GPU that answers no profile gets "profiles_error": the first refusal. */
static void child_mig(const struct nvml_api *api, nvmlDevice_t dev, bool mig, json_object *o)
{
        json_object *gis = json_object_new_array(), *profiles = json_object_new_array();
        int first_err = NVML_SUCCESS;

        for (unsigned p = 0; p < NVML_GPU_INSTANCE_PROFILE_COUNT; p++) {
                nvmlGpuInstanceProfileInfo_v2_t pi = { .version = NVML_STRUCT_VERSION(nvmlGpuInstanceProfileInfo_v2_t, 2) };
                int r = api->gi_profile_info(dev, p, &pi);

                if (r != NVML_SUCCESS) {
                        if (first_err == NVML_SUCCESS)
                                first_err = r;
                        continue;       /* not a profile of this GPU */
                }
                pi.name[sizeof(pi.name) - 1] = '\0';
                json_object_array_add(profiles, child_profile(api, dev, &pi, mig));
                if (mig)
                        child_gis(api, dev, &pi, gis);
        }
        if (!mig && json_object_array_length(profiles) == 0 && first_err != NVML_SUCCESS)
                jset(o, "profiles_error", json_object_new_string(gpuh_nvml_strerror(first_err)));
        jset(o, "gpu_instances", gis);
        jset(o, "profiles", profiles);
}

/* The vGPU types NVML says @dev supports, with what it says of each, into @o. */
static void child_types(const struct nvml_api *api, nvmlDevice_t dev, json_object *o)
{
        nvmlVgpuTypeId_t ids[GPUH_NVML_MAX_TYPES], creatable[GPUH_NVML_MAX_TYPES];
        unsigned n = GPUH_NVML_MAX_TYPES, nc = GPUH_NVML_MAX_TYPES;
        json_object *types = json_object_new_array();

        if (api->supported_vgpus(dev, &n, ids) != NVML_SUCCESS)
                n = 0;
        if (api->creatable_vgpus(dev, &nc, creatable) != NVML_SUCCESS)
                nc = 0;
        for (unsigned i = 0; i < n && i < GPUH_NVML_MAX_TYPES; i++) {
                json_object *t = json_object_new_object();
                char name[NVML_VGPU_NAME_BUFFER_SIZE] = "";
                unsigned size = sizeof(name), max = 0, prof = INVALID_GPU_INSTANCE_PROFILE_ID;
                unsigned long long fb = 0;
                bool cr = false;

                jset(t, "id", json_object_new_int64(ids[i]));
                if (api->type_name(ids[i], name, &size) == NVML_SUCCESS) {
                        name[sizeof(name) - 1] = '\0';
                        jset(t, "name", json_object_new_string(name));
                }
                if (api->type_fb(ids[i], &fb) == NVML_SUCCESS)
                        jset(t, "fb_mib", json_object_new_int64((int64_t) (fb >> 20)));
                if (api->type_max(dev, ids[i], &max) == NVML_SUCCESS)
                        jset(t, "max_instances", json_object_new_int64(max));
                if (api->type_gi_profile(ids[i], &prof) == NVML_SUCCESS && prof != INVALID_GPU_INSTANCE_PROFILE_ID)
                        jset(t, "gi_profile_id", json_object_new_int64(prof));
                for (unsigned k = 0; k < nc && k < GPUH_NVML_MAX_TYPES && !cr; k++)
                        cr = creatable[k] == ids[i];
                jset(t, "creatable", json_object_new_boolean(cr));
                json_object_array_add(types, t);
        }
        jset(o, "types", types);
}

/* What a GPU is: into @o, or "error" on the first call that fails outright. */
static void child_gpu(const struct nvml_api *api, nvmlDevice_t dev, json_object *o)
{
        nvmlVgpuHeterogeneousMode_v1_t hm = { .version = NVML_STRUCT_VERSION(nvmlVgpuHeterogeneousMode_v1_t, 1) };
        unsigned cur = 0, pend = 0;
        int r;

        r = api->get_mig_mode(dev, &cur, &pend);
        if (r == NVML_SUCCESS) {
                jset(o, "mig_current", json_object_new_int((int) cur));
                jset(o, "mig_pending", json_object_new_int((int) pend));
                child_mig(api, dev, cur == 1, o);
        } else if (r != NVML_ERROR_NOT_SUPPORTED) {
                /* a GPU that fails the first question tells nothing reliable */
                jset(o, "error", json_object_new_string(gpuh_nvml_strerror(r)));
                jset(o, "error_call", json_object_new_string("nvmlDeviceGetMigMode"));
                return;
        } else {
                jset(o, "gpu_instances", json_object_new_array());
                jset(o, "profiles", json_object_new_array());
        }
        if (api->get_hetero(dev, &hm) == NVML_SUCCESS)
                jset(o, "heterogeneous", json_object_new_int((int) hm.mode));
        child_types(api, dev, o);
}

static void __attribute__((noreturn)) child_send(int fd, json_object *doc, int code)
{
        const char *s = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);

        if (!s || gpuh_write_all(fd, s, strlen(s)) < 0)
                _exit(3);
        _exit(code);
}

static json_object *child_error(const char *msg)
{
        json_object *doc = json_object_new_object();

        jset(doc, "error", json_object_new_string(msg));
        return doc;
}

/* In a child: NVML loaded from @lib and initialised into @api, or the reason sent on @fd and
 * the child gone (both children start so). */
static void child_open(int fd, const char *lib, struct nvml_api *api)
{
        char err[512];
        int r;

        signal(SIGPIPE, SIG_IGN);
        if (api_load(lib, api, err, sizeof(err)) < 0)
                child_send(fd, child_error(err), 0);
        r = api->init();
        if (r != NVML_SUCCESS) {
                snprintf(err, sizeof(err), "nvmlInit_v2: %s", gpuh_nvml_strerror(r));
                child_send(fd, child_error(err), 0);
        }
}

void gpuh_nvml_query_child(int fd, const char *lib, const struct gpuh_pci_addr *gpus, size_t n)
{
        struct nvml_api api;
        json_object *doc, *arr;
        int r;

        child_open(fd, lib, &api);
        doc = json_object_new_object();
        arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_new_object();
                nvmlDevice_t dev;
                char id[32];

                bus_id(&gpus[i], id);
                r = api.handle_by_bus_id(id, &dev);
                if (r != NVML_SUCCESS) {
                        jset(o, "error", json_object_new_string(gpuh_nvml_strerror(r)));
                        jset(o, "error_call", json_object_new_string("nvmlDeviceGetHandleByPciBusId_v2"));
                } else
                        child_gpu(&api, dev, o);
                json_object_array_add(arr, o);
        }
        jset(doc, "gpus", arr);
        api.shutdown();
        child_send(fd, doc, 0);
}

void gpuh_nvml_change_child(int fd, const char *lib, const struct gpuh_pci_addr *gpu, enum gpuh_nvml_op op,
                            const unsigned arg[3])
{
        struct nvml_api api;
        json_object *doc = json_object_new_object();
        const char *call = NULL;
        nvmlDevice_t dev;
        nvmlGpuInstance_t gi = NULL;
        char id[32];
        int r;

        child_open(fd, lib, &api);
        bus_id(gpu, id);
        call = "nvmlDeviceGetHandleByPciBusId_v2";
        r = api.handle_by_bus_id(id, &dev);
        if (r == NVML_SUCCESS)
                switch (op) {
                case GPUH_NVML_SET_MIG_MODE: {
                        nvmlReturn_t activation = NVML_SUCCESS;
                        call = "nvmlDeviceSetMigMode";
                        r = api.set_mig_mode(dev, arg[0], &activation);
                        if (r == NVML_SUCCESS && activation != NVML_SUCCESS) {
                                /* set, but pending until a reset (NVML_ERROR_RESET_REQUIRED) or refused */
                                jset(doc, "activation", json_object_new_int(activation));
                                jset(doc, "activation_error", json_object_new_string(gpuh_nvml_strerror(activation)));
                        }
                        break;
                }
                case GPUH_NVML_CREATE_GI: {
                        nvmlGpuInstancePlacement_t pl = { .start = arg[1], .size = arg[2] };
                        nvmlGpuInstanceInfo_t info;
                        call = "nvmlDeviceCreateGpuInstanceWithPlacement";
                        r = api.create_gi(dev, arg[0], &pl, &gi);
                        memset(&info, 0, sizeof(info));
                        if (r == NVML_SUCCESS) {
                                call = "nvmlGpuInstanceGetInfo";
                                r = api.gi_info(gi, &info);
                        }
                        if (r == NVML_SUCCESS)
                                jset(doc, "id", json_object_new_int64(info.id));
                        break;
                }
                case GPUH_NVML_DESTROY_GI:
                        call = "nvmlDeviceGetGpuInstanceById";
                        r = api.gi_by_id(dev, arg[0], &gi);
                        if (r == NVML_SUCCESS) {
                                call = "nvmlGpuInstanceDestroy";
                                r = api.destroy_gi(gi);
                        }
                        break;
                case GPUH_NVML_SET_VGPU_MODE: {
                        nvmlVgpuHeterogeneousMode_v1_t hm = {
                                .version = NVML_STRUCT_VERSION(nvmlVgpuHeterogeneousMode_v1_t, 1), .mode = arg[0] };
                        call = "nvmlDeviceSetVgpuHeterogeneousMode";
                        r = api.set_hetero(dev, &hm);
                        break;
                }
                default:
                        r = NVML_ERROR_INVALID_ARGUMENT;
                        break;
                }
        if (r != NVML_SUCCESS) {
                jset(doc, "code", json_object_new_int(r));
                jset(doc, "error", json_object_new_string(gpuh_nvml_strerror(r)));
                jset(doc, "error_call", json_object_new_string(call));
        }
        api.shutdown();
        child_send(fd, doc, 0);
}

