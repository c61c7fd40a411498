/* SPDX-License-Identifier: Apache-2.0 */
/* vfio.c: driver_override, unbind, drivers_probe, and reading the result back. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "sysfs.h"
#include "vfio.h"

int gpuh_pci_driver(int root_fd, const struct gpuh_pci_addr *a, char *buf, size_t size)
{
        char name[GPUH_PCI_ADDR_MAX], rel[64];
        int r;

        gpuh_pci_addr_format(a, name);
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s", name);
        r = gpuh_sysfs_exists(root_fd, rel);
        if (r <= 0)
                return r == 0 ? -ENOENT : r;
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver", name);
        r = gpuh_sysfs_link_basename(root_fd, rel, buf, size);
        if (r == -ENOENT) {
                buf[0] = '\0';
                return 0;
        }
        return r < 0 ? r : 0;
}

int gpuh_pci_override(int root_fd, const struct gpuh_pci_addr *a, char *buf, size_t size)
{
        char name[GPUH_PCI_ADDR_MAX], rel[80];
        int r;

        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver_override", gpuh_pci_addr_format(a, name));
        r = gpuh_sysfs_read(root_fd, rel, buf, size);
        if (r < 0)
                return r;
        if (streq(buf, "(null)"))
                buf[0] = '\0';
        return 0;
}

/* Set driver_override to @override, unbind from anything but @want, probe, and read @want back
 * ("" wants no driver at all). The steps are planned from the state read first, so a dry run
 * lists what a real run would write. */
static int move(struct gpuh_change *c, const struct gpuh_pci_addr *a, const char *override, const char *want,
                char **reterr)
{
        char name[GPUH_PCI_ADDR_MAX], rel[80], cur[64], ovr[64];
        int r;

        gpuh_pci_addr_format(a, name);
        r = gpuh_pci_driver(c->root_fd, a, cur, sizeof(cur));
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot read its driver: %s", name, strerror(-r));
        r = gpuh_pci_override(c->root_fd, a, ovr, sizeof(ovr));
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot read driver_override: %s", name, strerror(-r));
        if (streq(cur, want) && streq(ovr, override)) {
                gpuh_debug("%s: already on %s", name, cur[0] ? cur : "no driver");
                return 0;
        }
        if (!streq(ovr, override)) {
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver_override", name);
                r = gpuh_change_write(c, rel, override);
                if (r < 0)
                        return gpuh_error(reterr, r, "%s: writing driver_override: %s", name,
                                          r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
        }
        if (cur[0] && !streq(cur, want)) {
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver/unbind", name);
                r = gpuh_change_write(c, rel, name);
                if (r < 0)
                        return gpuh_error(reterr, r, "%s: unbinding it from %s: %s", name, cur,
                                          r == -ETIMEDOUT ? "no answer before the deadline (something holds the device)"
                                                          : strerror(-r));
                cur[0] = '\0';
        }
        if (!cur[0] && want[0]) {
                r = gpuh_change_write(c, "bus/pci/drivers_probe", name);
                if (r < 0)
                        return gpuh_error(reterr, r, "%s: drivers_probe: %s", name,
                                          r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
        }
        /* drivers_probe reports success even when nothing binds: read the result back */
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver", name);
        r = gpuh_change_wait_link(c, rel, want, cur, sizeof(cur));
        if (r == -ETIMEDOUT)
                return gpuh_error(reterr, -ENODEV, "%s: ended on %s, not %s", name, cur[0] ? cur : "no driver",
                                  want[0] ? want : "no driver");
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot read its driver: %s", name, strerror(-r));
        return 0;
}

int gpuh_pci_rebind(struct gpuh_change *c, const struct gpuh_pci_addr *a, const char *driver, char **reterr)
{
        if (!driver || !*driver)
                return -EINVAL;
        return move(c, a, driver, driver, reterr);
}

int gpuh_pci_restore(struct gpuh_change *c, const struct gpuh_pci_addr *a, const char *driver, const char *override,
                     char **reterr)
{
        char name[GPUH_PCI_ADDR_MAX], rel[80], cur[64], ovr[64];
        int r;

        if (!driver || !override)
                return -EINVAL;
        if (!driver[0] || streq(driver, override))
                return move(c, a, override, driver, reterr);
        gpuh_pci_addr_format(a, name);
        r = gpuh_pci_driver(c->root_fd, a, cur, sizeof(cur));
        if (r == 0)
                r = gpuh_pci_override(c->root_fd, a, ovr, sizeof(ovr));
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot read its driver: %s", name, strerror(-r));
        if (streq(cur, driver) && streq(ovr, override))
                return 0;
        /* A plain reprobe binds the driver the kernel prefers, which may not be the one it had
         * (nouveau for nvidia): the recorded driver is named in driver_override for the probe,
         * then the recorded override is put back. */
        if (!streq(cur, driver)) {
                r = move(c, a, driver, driver, reterr);
                if (r < 0)
                        return r;
        }
        snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver_override", name);
        r = gpuh_change_write(c, rel, override);
        if (r < 0)
                return gpuh_error(reterr, r, "%s: writing driver_override: %s", name, strerror(-r));
        return 0;
}
