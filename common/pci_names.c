/* SPDX-License-Identifier: Apache-2.0 */
/* pci_names.c: libpci name lookups that never exit the process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pci/pci.h>

#include "log.h"
#include "macro.h"
#include "pci_names.h"

struct gpuh_pci_names {
        struct pci_access *pacc;
        char *sysfs_path;       /* owned: libpci keeps the pointer */
        char *ids_file;
        int flags;              /* extra PCI_LOOKUP_* bits */
        bool failed;            /* libpci reported an error: numeric names from now on */
        /* The last device looked up: a GPU's VFs all share one id, and libpci retries udev's
         * hwdb (several failing opens) on every lookup pci.ids cannot answer. */
        uint32_t memo_key;      /* vendor << 16 | device; valid when memo[0] */
        char memo[128];
};

/* libpci's error callback must not return (PCI_NONRET); we jump back to the lookup. */
static jmp_buf *pci_error_jmp;

static void _printf_(1, 2) __attribute__((noreturn)) pci_error_cb(char *msg, ...)
{
        char buf[256];
        va_list ap;

        va_start(ap, msg);
        vsnprintf(buf, sizeof(buf), msg, ap);
        va_end(ap);
        gpuh_log(LOG_WARNING, "libpci: %s", buf);
        if (pci_error_jmp)
                longjmp(*pci_error_jmp, 1);
        abort();        /* unreachable: every libpci call below sets the jump target */
}

static void _printf_(1, 2) pci_warning_cb(char *msg, ...)
{
        char buf[256];
        va_list ap;

        va_start(ap, msg);
        vsnprintf(buf, sizeof(buf), msg, ap);
        va_end(ap);
        gpuh_log(LOG_DEBUG, "libpci: %s", buf);
}

static void _printf_(1, 2) pci_debug_cb(char *msg, ...)
{
}

int gpuh_pci_names_new(const char *sysfs_root, const char *ids_file, struct gpuh_pci_names **ret)
{
        struct gpuh_pci_names *n = calloc(1, sizeof(*n));
        jmp_buf jb;

        if (!n)
                return -ENOMEM;
        if (asprintf(&n->sysfs_path, "%s/bus/pci", sysfs_root ? sysfs_root : "/sys") < 0) {
                free(n);
                return -ENOMEM;
        }
        if (ids_file && !(n->ids_file = strdup(ids_file)))
                return gpuh_pci_names_free(n), -ENOMEM;
        n->pacc = pci_alloc();
        if (!n->pacc)
                return gpuh_pci_names_free(n), -ENOMEM;
        n->pacc->error = pci_error_cb;
        n->pacc->warning = pci_warning_cb;
        n->pacc->debug = pci_debug_cb;
        n->pacc->method = PCI_ACCESS_SYS_BUS_PCI;
        n->pacc->id_lookup_mode = 0;            /* no ~/.pciids-cache, no DNS */
        if (setjmp(jb) == 0) {
                pci_error_jmp = &jb;
                pci_set_param(n->pacc, "sysfs.path", n->sysfs_path);
                if (n->ids_file) {
                        pci_set_name_list_path(n->pacc, n->ids_file, 0);
                        n->flags |= PCI_LOOKUP_NO_HWDB;
                }
                pci_init(n->pacc);
        } else
                n->failed = true;
        pci_error_jmp = NULL;
        *ret = n;
        return 0;
}

struct gpuh_pci_names *gpuh_pci_names_free(struct gpuh_pci_names *n)
{
        if (!n)
                return NULL;
        if (n->pacc) {
                jmp_buf jb;
                if (setjmp(jb) == 0) {
                        pci_error_jmp = &jb;
                        pci_cleanup(n->pacc);
                }
                pci_error_jmp = NULL;
        }
        free(n->sysfs_path);
        free(n->ids_file);
        free(n);
        return NULL;
}

/* One lookup under the jump guard; "<@fallback> <hex id>" when libpci fails. */
static const char *lookup(struct gpuh_pci_names *n, char *buf, size_t size, int flags,
                          unsigned a, unsigned b, const char *fallback)
{
        volatile bool ok = false;
        jmp_buf jb;

        if (!n->failed && setjmp(jb) == 0) {
                char *s;

                pci_error_jmp = &jb;
                s = pci_lookup_name(n->pacc, buf, (int) size, flags | n->flags, a, b);
                ok = s != NULL;
                if (s && s != buf)
                        snprintf(buf, size, "%s", s);
        } else if (!n->failed)
                n->failed = true;
        pci_error_jmp = NULL;
        if (!ok)
                snprintf(buf, size, "%s %04x", fallback, (flags & PCI_LOOKUP_DEVICE) ? b : a);
        return buf;
}

const char *gpuh_pci_name_vendor(struct gpuh_pci_names *n, uint16_t vendor, char *buf, size_t size)
{
        return lookup(n, buf, size, PCI_LOOKUP_VENDOR, vendor, 0, "Vendor");
}

const char *gpuh_pci_name_device(struct gpuh_pci_names *n, uint16_t vendor, uint16_t device,
                                 char *buf, size_t size)
{
        uint32_t key = (uint32_t) vendor << 16 | device;

        if (!n->memo[0] || n->memo_key != key) {
                lookup(n, n->memo, sizeof(n->memo), PCI_LOOKUP_DEVICE, vendor, device, "Device");
                n->memo_key = key;
        }
        snprintf(buf, size, "%s", n->memo);
        return buf;
}

const char *gpuh_pci_name_class(struct gpuh_pci_names *n, uint32_t class_code, char *buf, size_t size)
{
        return lookup(n, buf, size, PCI_LOOKUP_CLASS, (class_code >> 8) & 0xffff, 0, "Class");
}

void gpuh_pci_names_load(struct gpuh_pci_names *n)
{
        char buf[128];

        gpuh_pci_name_vendor(n, 0x10de, buf, sizeof(buf));
}
