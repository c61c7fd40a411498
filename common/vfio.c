/* SPDX-License-Identifier: Apache-2.0 */
/* vfio.c: driver_override, unbind, drivers_probe, and reading the result back. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Set driver_override to @override, unbind from anything but @want, probe, and read @want back
 * ("" wants no driver at all). */
static int move(int root_fd, const struct gpuh_pci_addr *a, const char *override, const char *want,
                int timeout_ms, char **reterr)
{
        char name[GPUH_PCI_ADDR_MAX], rel[80], cur[64], ovr[64];
        int64_t deadline = now_ms() + timeout_ms;
        int r, wait_ms = 1;

        gpuh_pci_addr_format(a, name);
        r = gpuh_pci_driver(root_fd, a, cur, sizeof(cur));
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot read its driver: %s", name, strerror(-r));
        r = gpuh_pci_override(root_fd, a, ovr, sizeof(ovr));
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot read driver_override: %s", name, strerror(-r));
        if (streq(cur, want) && streq(ovr, override)) {
                gpuh_debug("%s: already on %s", name, cur[0] ? cur : "no driver");
                return 0;
        }
        if (!streq(ovr, override)) {
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver_override", name);
                r = gpuh_sysfs_write_deadline(root_fd, rel, override, timeout_ms);
                if (r < 0)
                        return gpuh_error(reterr, r, "%s: writing driver_override: %s", name, strerror(-r));
        }
        if (cur[0] && !streq(cur, want)) {
                snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver/unbind", name);
                r = gpuh_sysfs_write_deadline(root_fd, rel, name, timeout_ms);
                if (r < 0)
                        return gpuh_error(reterr, r, "%s: unbinding it from %s: %s", name, cur,
                                          r == -ETIMEDOUT ? "no answer before the deadline (something holds the device)"
                                                          : strerror(-r));
        }
        r = gpuh_pci_driver(root_fd, a, cur, sizeof(cur));
        if (r == 0 && !cur[0] && want[0]) {
                r = gpuh_sysfs_write_deadline(root_fd, "bus/pci/drivers_probe", name, timeout_ms);
                if (r < 0)
                        return gpuh_error(reterr, r, "%s: drivers_probe: %s", name, strerror(-r));
        }
        /* drivers_probe reports success even when nothing binds: read the result back. Probing
         * may be asynchronous, so the link is read again, with growing pauses, until the deadline. */
        for (;;) {
                r = gpuh_pci_driver(root_fd, a, cur, sizeof(cur));
                if (r < 0)
                        return gpuh_error(reterr, r, "%s: cannot read its driver: %s", name, strerror(-r));
                if (streq(cur, want))
                        return 0;
                if (now_ms() >= deadline)
                        break;
                poll(NULL, 0, wait_ms);
                wait_ms = wait_ms < 64 ? wait_ms * 2 : 64;
        }
        return gpuh_error(reterr, -ENODEV, "%s: ended on %s, not %s", name, cur[0] ? cur : "no driver",
                          want[0] ? want : "no driver");
}

int gpuh_pci_rebind(int root_fd, const struct gpuh_pci_addr *a, const char *driver, int timeout_ms,
                    char **reterr)
{
        if (!driver || !*driver)
                return -EINVAL;
        return move(root_fd, a, driver, driver, timeout_ms, reterr);
}

int gpuh_pci_restore(int root_fd, const struct gpuh_pci_addr *a, const char *driver, const char *override,
                     int timeout_ms, char **reterr)
{
        if (!driver || !override)
                return -EINVAL;
        return move(root_fd, a, override, driver, timeout_ms, reterr);
}
