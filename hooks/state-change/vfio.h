/* SPDX-License-Identifier: Apache-2.0 */
/* vfio.h: moving a PCI function between drivers (vfio-pci and back), verified, with deadlines. */
#pragma once

#include <stddef.h>

#include "change.h"
#include "pci_addr.h"

#define GPUH_VFIO_DRIVER "vfio-pci"

/*
 * The sequence, as root would type it (Documentation/ABI/testing/sysfs-bus-pci; libvirt
 * src/util/virpci.c, virPCIDeviceBindWithDriverOverride):
 *
 *   echo vfio-pci     > /sys/bus/pci/devices/0000:05:00.0/driver_override
 *   echo 0000:05:00.0 > /sys/bus/pci/drivers/nvidia/unbind      (where its driver link leads)
 *   echo 0000:05:00.0 > /sys/bus/pci/drivers_probe
 *
 * and back: write "\n" to driver_override (clears it), unbind, drivers_probe again, which binds
 * the driver the kernel's ID tables choose. drivers_probe succeeds even when no driver binds, so
 * the result is read back from the `driver` link.
 */

/**
 * gpuh_pci_driver:
 * @c: the change (its kept directory of the function is used)
 * @a: the function
 * @buf, @size: receive the bound driver's name, "" when unbound
 *
 * Returns: 0; -ENOENT when the device is gone; -errno of readlinkat.
 */
int gpuh_pci_driver(struct gpuh_change *c, const struct gpuh_pci_addr *a, char *buf, size_t size);

/**
 * gpuh_pci_override:
 * @c, @a: as gpuh_pci_driver()
 * @buf, @size: receive driver_override, "" when unset ("(null)" in sysfs)
 *
 * Returns: 0; -ENOENT when the device is gone (or before Linux 3.16, which has no
 *          driver_override); -errno of the read.
 */
int gpuh_pci_override(struct gpuh_change *c, const struct gpuh_pci_addr *a, char *buf, size_t size);

/**
 * gpuh_pci_rebind:
 * @c: the change (sysfs root, deadline, dry run)
 * @a: the function
 * @driver: the driver it must end up on ("vfio-pci"); driver_override is set to it
 * @reterr: on failure, one line naming the device, the step and the cause (caller frees)
 *
 * Nothing is written when the function already is on @driver with the override as asked.
 * Unbind and drivers_probe get the change's deadline; the new driver is read back until the
 * deadline (probing can be asynchronous).
 *
 * Returns: 0; -ETIMEDOUT (a write or the probe did not finish); -ENODEV when it ended on
 *          another driver or none; -errno of the writes (-EBUSY, -EINVAL from the kernel).
 */
int gpuh_pci_rebind(struct gpuh_change *c, const struct gpuh_pci_addr *a, const char *driver, char **reterr);

/**
 * gpuh_pci_rebind_from:
 * @c, @a, @driver, @reterr: as gpuh_pci_rebind()
 * @cur, @ovr: the function's driver ("" none) and driver_override ("" unset), as the caller
 *             read them just before (under the function's lock), so they are not read again
 *
 * Returns: as gpuh_pci_rebind(); -EINVAL for a NULL argument.
 */
int gpuh_pci_rebind_from(struct gpuh_change *c, const struct gpuh_pci_addr *a, const char *cur, const char *ovr,
                         const char *driver, char **reterr);

/**
 * gpuh_pci_restore:
 * @c: the change
 * @a: the function
 * @driver: the driver it had before ("" when it had none), as recorded before the change
 * @override: the driver_override it had ("" when unset)
 * @reterr: as gpuh_pci_rebind()
 *
 * The function is unbound from whatever it is on unless that is @driver, and, when @driver is
 * not "", probed with driver_override naming @driver (a plain reprobe binds the driver the
 * kernel's ID tables prefer, nouveau where nvidia was); the driver is read back, and then
 * driver_override is set back to @override (an empty line clears it). Nothing is written when
 * the function already is as recorded.
 *
 * Returns: 0; -ENODEV when it ended on another driver; -ETIMEDOUT; -errno of the writes.
 */
int gpuh_pci_restore(struct gpuh_change *c, const struct gpuh_pci_addr *a, const char *driver, const char *override,
                     char **reterr);
