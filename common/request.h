/* SPDX-License-Identifier: Apache-2.0 */
/* request.h: what a domain asks for: GPUs by mode, model and profile (docs/transformer.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct json_object;

enum gpuh_req_mode {
        GPUH_REQ_PASSTHROUGH,   /* a whole GPU, type='pci', with its companion functions */
        GPUH_REQ_VF,            /* a plain SR-IOV VF (AMD MxGPU, Intel), type='pci' */
        GPUH_REQ_MDEV,          /* an mdev of a type, type='mdev' */
        GPUH_REQ_VENDOR_VGPU,   /* an NVIDIA vendor-specific vGPU VF, type='pci' managed='no' */
        _GPUH_REQ_MODE_MAX,
};

enum gpuh_req_numa {
        GPUH_NUMA_PREFER,       /* the vCPUs' node first */
        GPUH_NUMA_REQUIRE,      /* only the vCPUs' node */
        GPUH_NUMA_ANY,
        _GPUH_NUMA_MAX,
};

#define GPUH_REQ_MAX_COUNT 16

struct gpuh_request {
        unsigned count;         /* 1 .. GPUH_REQ_MAX_COUNT */
        enum gpuh_req_mode mode;
        int vendor;             /* -1: any */
        int device;             /* -1: any */
        char *model;            /* libpci device name, NULL: any */
        char *profile;          /* mdev type name or id, vendor vGPU type name or id */
        enum gpuh_req_numa numa;
        bool display;
};

/**
 * gpuh_req_mode_to_string / _from_string: "passthrough", "vf", "mdev", "vendor-vgpu" (a request's
 * mode, docs/transformer.md); "?" for a value outside the enum; _from_string: -EINVAL.
 */
const char *gpuh_req_mode_to_string(enum gpuh_req_mode m);
int gpuh_req_mode_from_string(const char *s);
/**
 * gpuh_req_numa_to_string / _from_string: "prefer", "require", "any" (a request's numa,
 * docs/transformer.md); "?" for a value outside the enum; _from_string: -EINVAL.
 */
const char *gpuh_req_numa_to_string(enum gpuh_req_numa n);
int gpuh_req_numa_from_string(const char *s);

/** gpuh_requests_free: frees @n requests and the array; accepts NULL. */
void gpuh_requests_free(struct gpuh_request *r, size_t n);

/**
 * gpuh_request_set:
 * @r: the request, zeroed or defaulted (count 1, vendor/device -1, numa prefer)
 * @key: attribute or JSON key: count, mode, vendor, device, model, profile, numa, display
 * @value: its text ("2", "mdev", "10de", "NVIDIA A2-4Q", "require", "on")
 * @reterr: on failure, a static description of what is wrong
 *
 * One parser for both request forms: XML attributes and the config file's JSON (whose numbers
 * and booleans are passed as text).
 *
 * Returns: 0; -EINVAL for an unknown key or a bad value; -ENOMEM.
 */
int gpuh_request_set(struct gpuh_request *r, const char *key, const char *value, const char **reterr);

/** gpuh_request_init: the defaults of gpuh_request_set(). */
void gpuh_request_init(struct gpuh_request *r);

/**
 * gpuh_request_check:
 * @r: a filled request
 *
 * Returns: NULL when @r is complete, else why not ("mode 'mdev' needs a profile").
 */
const char *gpuh_request_check(const struct gpuh_request *r);

/**
 * gpuh_requests_from_json:
 * @arr: a JSON array of request objects (config file `transformer.rules[].requests`)
 * @ret, @ret_n: the requests
 * @reterr: on failure, a one-line reason naming the index and key (caller frees)
 *
 * Returns: 0; -EINVAL; -ENOMEM.
 */
int gpuh_requests_from_json(struct json_object *arr, struct gpuh_request **ret, size_t *ret_n, char **reterr);
