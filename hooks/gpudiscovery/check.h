/* SPDX-License-Identifier: Apache-2.0 */
/* check.h: is this host fit for GPU passthrough and vGPU with gpuhooks? (gpudiscovery --check) */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "inventory.h"

enum gpuh_check_status {
        GPUH_CHECK_OK,
        GPUH_CHECK_INFO,        /* worth knowing, changes nothing */
        GPUH_CHECK_WARN,        /* some GPU or feature will not work */
        GPUH_CHECK_FAIL,        /* the host is not ready */
        _GPUH_CHECK_STATUS_MAX,
};

struct gpuh_finding {
        enum gpuh_check_status status;
        const char *check;      /* stable id: "iommu", "interrupt-remapping", "vfio-pci", ... */
        char *device;           /* PCI address, or NULL */
        char *message;          /* one line */
};

struct gpuh_findings {
        struct gpuh_finding *v;
        size_t n;
};

/* Where a host keeps what the checks look at. NULL fields take the defaults. */
struct gpuh_check_opts {
        int sysfs_fd;                   /* sysfs root fd (required) */
        const char *root;               /* files of the installation (hooks, agent.properties) are
                                         * read under this directory, "/" by default: a DESTDIR */
        const struct gpuh_config *cfg;  /* required */
        const char *config_error;       /* the configuration file could not be used
                                         * (gpuh_config_load_or_default()): its line, or NULL */
};

/**
 * gpuh_check_host:
 * @o: where to look
 * @inv: the inventory of the host (gpuh_host_scan())
 * @ret: the findings, in a fixed order; free with gpuh_findings_clear()
 *
 * Looks at:
 *  - the configuration: @o->config_error fails ("config"): the hooks refuse GPU domains until
 *    it is fixed;
 *  - the IOMMU: on when devices sit in IOMMU groups (kernel/iommu_groups), whatever class/iommu
 *    lists (a POWER host lists nothing there); when off, the advice of the platform: Intel VT-d
 *    (firmware, intel_iommu=on), AMD-Vi (firmware; not amd_iommu=off) or POWER (bare-metal
 *    PowerNV), the platform told from sysfs alone (check.c, platform_of(): the units' names
 *    dmar* / ivhd*, firmware/opal, the PCI host bridges' vendor); Documentation/driver-api/vfio.rst;
 *  - interrupt remapping: the IR bit (3) of each Intel unit's intel-iommu/ecap (VT-d spec,
 *    "Extended Capability Register"), and vfio_iommu_type1's allow_unsafe_interrupts;
 *  - vfio-pci: bus/pci/drivers/vfio-pci (the module loaded);
 *  - each GPU: on nouveau (not fit for NVIDIA vGPU, and in the way of passthrough), driving
 *    the console (boot_vga), an IOMMU group shared with foreign devices, left without a
 *    driver, offered for passthrough, carrying mdev types or vendor vGPU VFs; each function
 *    the state-change hook quarantined (fails);
 *  - the installation under @o->root: CloudStack's agent.properties (agent.hooks.basedir and the
 *    hook names and methods, as the agent reads them), the two agent hooks and the libvirt
 *    qemu.d hook present and executable, the agent's gpudiscovery.sh being gpuhooks'.
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_check_host(const struct gpuh_check_opts *o, const struct gpuh_inventory *inv, struct gpuh_findings *ret);

/** gpuh_check_ready: no finding failed. */
bool gpuh_check_ready(const struct gpuh_findings *f);

/**
 * gpuh_check_status_to_string / _from_string: "ok", "info", "warn", "fail" (the first column
 * of gpudiscovery --check); "?" for a value outside the enum; _from_string: -EINVAL.
 */
const char *gpuh_check_status_to_string(enum gpuh_check_status s);
int gpuh_check_status_from_string(const char *s);

/** gpuh_findings_clear: frees what the findings hold. */
void gpuh_findings_clear(struct gpuh_findings *f);

struct json_object;

/** gpuh_findings_to_json: {"ready": bool, "findings": [{"status", "check", "device", "message"}]}; NULL on ENOMEM. */
struct json_object *gpuh_findings_to_json(const struct gpuh_findings *f);
