/* SPDX-License-Identifier: Apache-2.0 */
/* vfio.c: driver_override, unbind, drivers_probe, and reading the result back. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "sysfs.h"
#include "vfio.h"

int gpuh_pci_driver(struct gpuh_change *c, const struct gpuh_pci_addr *a, char *buf, size_t size)
{
        int fd = gpuh_change_devfd(c, a), r;

        if (fd < 0)
                return fd;
        r = gpuh_sysfs_link_basename(fd, "driver", buf, size);
        if (r == -ENOENT) {
                buf[0] = '\0';
                return 0;
        }
        return r < 0 ? r : 0;
}

int gpuh_pci_override(struct gpuh_change *c, const struct gpuh_pci_addr *a, char *buf, size_t size)
{
        int fd = gpuh_change_devfd(c, a), r;

        if (fd < 0)
                return fd;
        r = gpuh_sysfs_read(fd, "driver_override", buf, size);
        if (r < 0)
                return r;
        if (streq(buf, "(null)"))
                buf[0] = '\0';
        return 0;
}

/* Set driver_override to @override, unbind from anything but @want, probe, and read @want back
 * ("" wants no driver at all), from the state @cur, @ovr read just before. The steps are planned
 * from that state, so a dry run lists what a real run would write. */
static int move(struct gpuh_change *c, const struct gpuh_pci_addr *a, const char *cur_in, const char *ovr,
                const char *override, const char *want, char **reterr)
{
        char name[GPUH_PCI_ADDR_MAX], rel[80], cur[64];
        int fd = gpuh_change_devfd(c, a), bus = gpuh_change_busfd(c), r;

        gpuh_pci_addr_format(a, name);
        if (fd < 0 || bus < 0)
                return gpuh_error(reterr, fd < 0 ? fd : bus, "%s: %s", name, strerror(-(fd < 0 ? fd : bus)));
        snprintf(cur, sizeof(cur), "%s", cur_in);
        if (streq(cur, want) && streq(ovr, override)) {
                gpuh_debug("%s: already on %s", name, cur[0] ? cur : "no driver");
                return 0;
        }
        if (!streq(ovr, override)) {
                r = gpuh_change_write(c, fd, "driver_override", override);
                if (r < 0)
                        return gpuh_error(reterr, r, "%s: writing driver_override: %s", name,
                                          r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
        }
        if (cur[0] && !streq(cur, want)) {
                /* the driver's own unbind file: what the device's driver/unbind link leads to */
                snprintf(rel, sizeof(rel), "drivers/%s/unbind", cur);
                r = gpuh_change_write(c, bus, rel, name);
                if (r < 0)
                        return gpuh_error(reterr, r, "%s: unbinding it from %s: %s", name, cur,
                                          r == -ETIMEDOUT ? "no answer before the deadline (something holds the device)"
                                                          : strerror(-r));
                cur[0] = '\0';
        }
        if (!cur[0] && want[0]) {
                r = gpuh_change_write(c, bus, "drivers_probe", name);
                if (r < 0)
                        return gpuh_error(reterr, r, "%s: drivers_probe: %s", name,
                                          r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
        }
        /* drivers_probe reports success even when nothing binds: read the result back */
        r = gpuh_change_wait_link(c, fd, "driver", want, cur, sizeof(cur));
        if (r == -ETIMEDOUT)
                return gpuh_error(reterr, -ENODEV, "%s: ended on %s, not %s", name, cur[0] ? cur : "no driver",
                                  want[0] ? want : "no driver");
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot read its driver: %s", name, strerror(-r));
        return 0;
}

static int read_state(struct gpuh_change *c, const struct gpuh_pci_addr *a, char *cur, size_t ncur, char *ovr,
                      size_t novr, char **reterr)
{
        char name[GPUH_PCI_ADDR_MAX];
        int r = gpuh_pci_driver(c, a, cur, ncur);

        if (r == 0)
                r = gpuh_pci_override(c, a, ovr, novr);
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot read its driver: %s", gpuh_pci_addr_format(a, name),
                                  r == -ENOENT ? "no such PCI device" : strerror(-r));
        return 0;
}

int gpuh_pci_rebind(struct gpuh_change *c, const struct gpuh_pci_addr *a, const char *driver, char **reterr)
{
        char cur[64], ovr[64];
        int r;

        if (!driver || !*driver)
                return -EINVAL;
        r = read_state(c, a, cur, sizeof(cur), ovr, sizeof(ovr), reterr);
        if (r < 0)
                return r;
        return move(c, a, cur, ovr, driver, driver, reterr);
}

int gpuh_pci_rebind_from(struct gpuh_change *c, const struct gpuh_pci_addr *a, const char *cur, const char *ovr,
                         const char *driver, char **reterr)
{
        if (!driver || !*driver || !cur || !ovr)
                return -EINVAL;
        return move(c, a, cur, ovr, driver, driver, reterr);
}

int gpuh_pci_restore(struct gpuh_change *c, const struct gpuh_pci_addr *a, const char *driver, const char *override,
                     char **reterr)
{
        char name[GPUH_PCI_ADDR_MAX], cur[64], ovr[64];
        int r;

        if (!driver || !override)
                return -EINVAL;
        r = read_state(c, a, cur, sizeof(cur), ovr, sizeof(ovr), reterr);
        if (r < 0)
                return r;
        if (!driver[0] || streq(driver, override))
                return move(c, a, cur, ovr, override, driver, reterr);
        if (streq(cur, driver) && streq(ovr, override))
                return 0;
        /* A plain reprobe binds the driver the kernel prefers, which may not be the one it had
         * (nouveau for nvidia): the recorded driver is named in driver_override for the probe,
         * then the recorded override is put back. */
        if (!streq(cur, driver)) {
                r = move(c, a, cur, ovr, driver, driver, reterr);
                if (r < 0)
                        return r;
        }
        r = gpuh_change_write(c, gpuh_change_devfd(c, a), "driver_override", override);
        if (r < 0)
                return gpuh_error(reterr, r, "%s: writing driver_override: %s", gpuh_pci_addr_format(a, name),
                                  r == -ETIMEDOUT ? "no answer before the deadline" : strerror(-r));
        return 0;
}
