/* SPDX-License-Identifier: Apache-2.0 */
/* alloc.h: one device given to a domain, as the allocation record and reservations hold it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "mdev.h"
#include "pci_addr.h"

enum gpuh_alloc_kind {
        GPUH_ALLOC_PCI,                 /* a whole GPU (with companions) */
        GPUH_ALLOC_VF,                  /* a plain SR-IOV VF */
        GPUH_ALLOC_MDEV,                /* an mdev on a PF or VF */
        GPUH_ALLOC_VENDOR_VGPU,         /* an NVIDIA vendor-specific vGPU VF */
        _GPUH_ALLOC_KIND_MAX,
};

#define GPUH_ALLOC_REQUEST_CLOUDSTACK (-1)     /* CloudStack's own hostdev */
#define GPUH_ALLOC_MAX_COMPANIONS 8

struct gpuh_alloc {
        enum gpuh_alloc_kind kind;
        struct gpuh_pci_addr addr;      /* PCI, VF, VENDOR_VGPU: the function */
        struct gpuh_pci_addr parent;    /* VF, VENDOR_VGPU: its PF; MDEV: the mdev's parent function */
        char uuid[GPUH_UUID_STR_LEN + 1];       /* MDEV */
        char mdev_type[64];             /* MDEV: type directory name */
        bool mdev_new;                  /* MDEV: to be created at start */
        unsigned vgpu_type;             /* VENDOR_VGPU: numeric type */
        struct gpuh_pci_addr companions[GPUH_ALLOC_MAX_COMPANIONS];     /* PCI: same-card functions */
        size_t n_companions;
        int request;                    /* index of the request, or GPUH_ALLOC_REQUEST_CLOUDSTACK */
        bool display;                   /* MDEV: display='on' ramfb='on' */
        /* MDEV, VENDOR_VGPU of a MIG-backed type in a layout slot (layout.h): the GPU instance
         * prepare creates for it on the GPU (the PF), unless one of that profile and placement
         * exists */
        bool gi;
        unsigned gi_profile;            /* NVML GPU-instance profile id */
        unsigned gi_start, gi_size;     /* its placement: first memory slice, slices */
};

/**
 * gpuh_alloc_kind_to_string / _from_string: "pci", "vf", "mdev", "vendor-vgpu" (the kind="" of
 * an allocation record and a reservation, docs/transformer.md); "?" for a value outside the
 * enum; _from_string: -EINVAL.
 */
const char *gpuh_alloc_kind_to_string(enum gpuh_alloc_kind k);
int gpuh_alloc_kind_from_string(const char *s);

/**
 * gpuh_alloc_holds_pci:
 * Returns: true when @a gives the domain PCI function @addr itself (the GPU, a companion, a VF).
 */
bool gpuh_alloc_holds_pci(const struct gpuh_alloc *a, const struct gpuh_pci_addr *addr);
