/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvml.h: what only NVIDIA's management library can tell or do: MIG mode, GPU instances, the
 * vGPU types a GPU offers with their framebuffer and GPU-instance profile, and the vGPU
 * (heterogeneous) mode. sysfs has none of it (research: MIG GPU instances cannot be created
 * through sysfs; NVIDIA vGPU user guide, "MIG-backed vGPU").
 *
 * NVML (libnvidia-ml.so.1, shipped with the host driver) is loaded with dlopen(3) in a child
 * process only (child.h), which answers through a pipe within a deadline: a hung driver costs
 * the deadline, the library never maps into the hook, and no NVML output reaches stderr. Every
 * NVML failure becomes one line (gpuh_nvml_strerror()). The entry points and structures used
 * are NVIDIA's NVML API reference (docs.nvidia.com/deploy/nvml-api/), as declared in nvml.h of
 * NVIDIA/go-nvml (pkg/nvml/nvml.h); nvml.c declares just those.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci_addr.h"

#define GPUH_NVML_LIB_DEFAULT "libnvidia-ml.so.1"

/* Deadline of one NVML query or change (the agent gives gpudiscovery 30 s in all). */
#define GPUH_NVML_TIMEOUT_MS 10000

/* How many of each the child reports per GPU (NVML has at most 7-8 GIs and ~100 types). */
#define GPUH_NVML_MAX_GIS       64
#define GPUH_NVML_MAX_TYPES     512

/* One GPU instance (nvmlGpuInstanceInfo_t, with its profile's name). */
struct gpuh_nvml_gi {
        unsigned id;                    /* unique within the GPU */
        unsigned profile_id;            /* nvmlGpuInstanceProfileInfo_v2_t.id, e.g. 19 (A100 1g.5gb) */
        char profile_name[96];          /* its .name, "MIG 1g.5gb"; "" when NVML gives none */
        unsigned placement_start;       /* first memory slice */
        unsigned placement_size;        /* memory slices */
};

#define GPUH_NVML_MAX_PLACEMENTS 16

/* One GPU instance profile of a GPU in MIG mode (nvmlGpuInstanceProfileInfo_v2_t), with where
 * its GIs may go and how many more can be made now. */
struct gpuh_nvml_profile {
        unsigned id;                    /* profile id, e.g. 19 (A100 1g.5gb) */
        char name[96];                  /* "MIG 1g.5gb" */
        unsigned slices;                /* .sliceCount */
        unsigned instances;             /* .instanceCount: most GIs of it on the GPU */
        int64_t memory_mib;             /* .memorySizeMB */
        int64_t remaining;              /* nvmlDeviceGetGpuInstanceRemainingCapacity; -1 unknown */
        struct { unsigned start, size; } placements[GPUH_NVML_MAX_PLACEMENTS];
                                        /* nvmlDeviceGetGpuInstancePossiblePlacements_v2: all of
                                         * them, taken or not (for a GI with explicit placement) */
        size_t n_placements;
};

/* One vGPU type the GPU supports (nvmlDeviceGetSupportedVgpus). */
struct gpuh_nvml_type {
        unsigned id;                    /* vGPU type id, the number sysfs lists (1153, 474) */
        char name[64];                  /* nvmlVgpuTypeGetName: "NVIDIA A100-1-5C" */
        int64_t fb_mib;                 /* nvmlVgpuTypeGetFramebufferSize / 1 MiB; -1 unknown */
        int64_t max_instances;          /* nvmlVgpuTypeGetMaxInstances on this GPU; -1 unknown */
        int64_t gi_profile_id;          /* nvmlVgpuTypeGetGpuInstanceProfileId; -1: time-sliced */
        bool creatable;                 /* in nvmlDeviceGetCreatableVgpus now */
};

/* vGPU mode of a GPU (nvmlDeviceGetVgpuHeterogeneousMode). */
enum gpuh_vgpu_mode {
        GPUH_VGPU_MODE_UNKNOWN = -1,    /* not asked, not supported (MIG on, pre-Ada), failed */
        GPUH_VGPU_MODE_EQUAL = 0,       /* heterogeneous mode off: one size per GPU (the default) */
        GPUH_VGPU_MODE_MIXED = 1,       /* heterogeneous mode on */
};

/**
 * gpuh_vgpu_mode_to_string: "equal-size", "mixed-size"; NULL for GPUH_VGPU_MODE_UNKNOWN (the
 * inventory's gpuhooks.vgpu_mode, docs/inventory.md).
 */
const char *gpuh_vgpu_mode_to_string(enum gpuh_vgpu_mode m);

struct gpuh_nvml_gpu {
        struct gpuh_pci_addr addr;
        char *error;                    /* one line: why NVML told nothing of it; NULL when it did */
        int mig_current, mig_pending;   /* 0 off, 1 on; -1 when the GPU has no MIG */
        enum gpuh_vgpu_mode vgpu_mode;
        struct gpuh_nvml_gi *gis;       /* by id */
        size_t n_gis;
        struct gpuh_nvml_profile *profiles;     /* by id; in MIG mode and out of it (no remaining
                                                 * then), none when the GPU has no MIG */
        size_t n_profiles;
        char *profiles_error;           /* MIG off and no profile listed: NVML's refusal (one line); else NULL */
        struct gpuh_nvml_type *types;   /* by id */
        size_t n_types;
};

struct gpuh_nvml_info {
        char *error;                    /* NVML as a whole unusable (not loaded, init failed,
                                         * no answer in time): one line; gpus then empty */
        struct gpuh_nvml_gpu *gpus;     /* in the order asked */
        size_t n_gpus;
};

/**
 * gpuh_nvml_strerror:
 * @code: an nvmlReturn_t value
 *
 * One clear line per NVML return code (NVML API reference, nvmlReturn_t), as NVIDIA names
 * it ("NVML_ERROR_IN_USE: the GPU is in use"). Unknown codes give "NVML error".
 */
const char *gpuh_nvml_strerror(int code);

struct gpuh_nvml_query;

/**
 * gpuh_nvml_query_start:
 * @lib: the library to dlopen (GPUH_NVML_LIB_DEFAULT when NULL: the driver's, by soname)
 * @gpus, @n: the GPUs to ask about (PCI addresses of PFs bound to nvidia); at most 256
 * @timeout_ms: deadline for the whole exchange, counted from now
 * @ret: the running query, ended by gpuh_nvml_query_finish()
 *
 * Forks the child that loads NVML, initialises it (nvmlInit_v2), asks per GPU (handle by PCI
 * bus id; MIG mode; every GPU-instance profile with its placements, in MIG mode also its
 * remaining capacity, and its instances; supported and creatable
 * vGPU types with name, framebuffer, max instances and GI profile; heterogeneous mode) and
 * answers as one JSON document. Call it with no other thread running (fork(2)).
 *
 * Returns: 0; -E2BIG (@n too large); -ENOMEM; -errno of pipe2/fork.
 */
int gpuh_nvml_query_start(const char *lib, const struct gpuh_pci_addr *gpus, size_t n, int timeout_ms,
                          struct gpuh_nvml_query **ret);

/**
 * gpuh_nvml_query_finish:
 * @q: the query (freed, its child reaped, in every case)
 * @ret: what NVML said; when it could not answer, .error says why (the library missing, its
 *       init failing, no answer within the deadline, a malformed answer). Free with
 *       gpuh_nvml_info_free().
 *
 * Returns: 0 (also when NVML failed: see .error); -ENOMEM.
 */
int gpuh_nvml_query_finish(struct gpuh_nvml_query *q, struct gpuh_nvml_info **ret);

/** gpuh_nvml_query: start and finish in one call. Returns as gpuh_nvml_query_finish(). */
int gpuh_nvml_query(const char *lib, const struct gpuh_pci_addr *gpus, size_t n, int timeout_ms,
                    struct gpuh_nvml_info **ret);

/** gpuh_nvml_info_free: accepts NULL; returns NULL. */
struct gpuh_nvml_info *gpuh_nvml_info_free(struct gpuh_nvml_info *i);
static inline void gpuh_nvml_info_freep(struct gpuh_nvml_info **i) { gpuh_nvml_info_free(*i); }

/** gpuh_nvml_info_gpu: the entry of @addr in @i, or NULL (also for a NULL @i). */
const struct gpuh_nvml_gpu *gpuh_nvml_info_gpu(const struct gpuh_nvml_info *i, const struct gpuh_pci_addr *addr);

/** gpuh_nvml_gpu_type: type @id of @g, or NULL. */
const struct gpuh_nvml_type *gpuh_nvml_gpu_type(const struct gpuh_nvml_gpu *g, unsigned id);

/*
 * Changes, each in its own child with a deadline (for prepare's GI creation, issue 11 item 3).
 * Each returns 0, or a negative errno with one line in *@reterr naming the GPU, the operation
 * and NVML's answer: -ENOENT (no NVML; the GPU or GI unknown to it: NVML_ERROR_NOT_FOUND), -ETIMEDOUT, -EBUSY
 * (NVML_ERROR_IN_USE), -ENOSPC (NVML_ERROR_INSUFFICIENT_RESOURCES), -EOPNOTSUPP
 * (NVML_ERROR_NOT_SUPPORTED), -EPERM (NVML_ERROR_NO_PERMISSION), -EINVAL (invalid argument),
 * -EIO (any other NVML error), -ENOMEM.
 */
enum gpuh_nvml_op {
        GPUH_NVML_SET_MIG_MODE,         /* arg0: 0 off, 1 on (nvmlDeviceSetMigMode) */
        GPUH_NVML_CREATE_GI,            /* arg0 profile id, arg1 placement start, arg2 size
                                         * (nvmlDeviceCreateGpuInstanceWithPlacement); *ret: GI id */
        GPUH_NVML_DESTROY_GI,           /* arg0 GI id (nvmlDeviceGetGpuInstanceById, nvmlGpuInstanceDestroy) */
        GPUH_NVML_SET_VGPU_MODE,        /* arg0: 0 equal-size, 1 mixed-size
                                         * (nvmlDeviceSetVgpuHeterogeneousMode) */
        _GPUH_NVML_OP_MAX,
};

/**
 * gpuh_nvml_op_to_string: "set-mig-mode", "create-gpu-instance", "destroy-gpu-instance",
 * "set-vgpu-mode" (a dry run's "nvml" step, docs/state-change.md); NULL outside the enum.
 */
const char *gpuh_nvml_op_to_string(enum gpuh_nvml_op op);

/**
 * gpuh_nvml_change:
 * @lib: as gpuh_nvml_query_start()
 * @gpu: the GPU
 * @op, @arg0, @arg1, @arg2: the change (enum gpuh_nvml_op)
 * @timeout_ms: deadline
 * @ret: receives the created GI's id (GPUH_NVML_CREATE_GI), may be NULL
 * @reterr: on failure, one line (caller frees)
 *
 * Returns: see above.
 */
int gpuh_nvml_change(const char *lib, const struct gpuh_pci_addr *gpu, enum gpuh_nvml_op op, unsigned arg0,
                     unsigned arg1, unsigned arg2, int timeout_ms, unsigned *ret, char **reterr);
