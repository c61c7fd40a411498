/* SPDX-License-Identifier: Apache-2.0 */
/* pci_names.h: vendor, device and class names through libpci (pci.ids, udev hwdb). */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct gpuh_pci_names;

#define GPUH_PCI_NAMES_CACHE_DIR "/var/cache/gpuhooks"
#define GPUH_PCI_NAMES_CACHE_FILE "pci-names.json"

/**
 * gpuh_pci_names_new:
 * @sysfs_root: the sysfs root in use; libpci's "sysfs.path" is set to <root>/bus/pci so that
 *              nothing libpci touches lies outside it
 * @ids_file: a pci.ids file to use instead of the system's, NULL for the default; when given,
 *            udev's hwdb is not consulted either, so names depend on that file alone
 * @cache_dir: directory of the names cache (GPUH_PCI_NAMES_CACHE_FILE), or NULL for none
 * @ret: the new handle, freed with gpuh_pci_names_free()
 *
 * libpci is set to PCI_ACCESS_SYS_BUS_PCI with error/warning handlers that never exit the
 * process (libpci's default error handler calls exit(1)); no DNS lookups, no ~/.pciids-cache.
 *
 * libpci parses all of pci.ids (1.3 MB, about 35,000 entries) before its first answer, which
 * costs more than reading a whole GPU host's sysfs. The names cache keeps the answers libpci
 * gave, for the ids this host has, under a key made of the size and modification time of
 * pci.ids, of every udev hwdb.bin libpci could consult, and of libpci's version: any update
 * of those makes the cache miss, and libpci answers again. The cache only ever holds libpci's
 * own answers; a missing, stale, unreadable or damaged cache costs time, never a name.
 *
 * Returns: 0; -ENOMEM.
 */
int gpuh_pci_names_new(const char *sysfs_root, const char *ids_file, const char *cache_dir,
                       struct gpuh_pci_names **ret);

/**
 * gpuh_pci_names_load:
 * @n: names handle
 *
 * Reads the names cache now, and when it cannot be used, makes libpci load its ID database,
 * so both can happen in a thread while sysfs is read; lookups do it on first use otherwise.
 * A handle must be used by one thread at a time.
 */
void gpuh_pci_names_load(struct gpuh_pci_names *n);

/**
 * gpuh_pci_names_save:
 * @n: names handle
 *
 * Writes the names cache when lookups added to it (atomically: a temporary file renamed over
 * it). The cache directory is created (one level, mode 0755) when missing.
 *
 * Returns: 0 (also when there is no cache or nothing new); -errno when it could not be
 *          written, which callers may ignore.
 */
int gpuh_pci_names_save(struct gpuh_pci_names *n);

/** gpuh_pci_names_free: accepts NULL; returns NULL. */
struct gpuh_pci_names *gpuh_pci_names_free(struct gpuh_pci_names *n);
static inline void gpuh_pci_names_freep(struct gpuh_pci_names **n) { gpuh_pci_names_free(*n); }

/**
 * gpuh_pci_name_vendor / gpuh_pci_name_device / gpuh_pci_name_class:
 * @n: names handle
 * @buf, @size: receive the name; 128 bytes hold every pci.ids entry
 *
 * As `lspci -nnm` prints them: "NVIDIA Corporation", "GA107GL [A2 / A16]", "3D controller"
 * (class lookups use base class and subclass, @class_code >> 8). Unknown ids give libpci's
 * numeric form ("Vendor 1234", "Device 5678", "Class 1234"); a failing libpci gives the same.
 *
 * Returns: @buf.
 */
const char *gpuh_pci_name_vendor(struct gpuh_pci_names *n, uint16_t vendor, char *buf, size_t size);
const char *gpuh_pci_name_device(struct gpuh_pci_names *n, uint16_t vendor, uint16_t device,
                                 char *buf, size_t size);
const char *gpuh_pci_name_class(struct gpuh_pci_names *n, uint32_t class_code, char *buf, size_t size);
