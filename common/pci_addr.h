/* SPDX-License-Identifier: Apache-2.0 */
/* pci_addr.h: PCI addresses (BDF, DDDD:BB:SS.F): strict parsing and formatting. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Longest formatted address: "fffff:ff:1f.7" plus NUL. */
#define GPUH_PCI_ADDR_MAX 16

struct gpuh_pci_addr {
        uint32_t domain;        /* PCI segment, 0 .. 0xfffff */
        uint8_t bus;            /* 0 .. 0xff */
        uint8_t slot;           /* device number, 0 .. 0x1f */
        uint8_t func;           /* function, 0 .. 7 */
};

/**
 * gpuh_pci_addr_parse:
 * @s: "DDDD:BB:SS.F" (domain of 4 or 5 hex digits) or "BB:SS.F" (domain 0000); hex digits in
 *     either case; nothing before or after
 * @ret: the address, written only on success
 *
 * Exactly the forms the kernel uses for PCI device names (Documentation/ABI/testing/sysfs-bus-pci,
 * "%04x:%02x:%02x.%d"), so a parsed address can never carry '/', '.' runs or other path
 * components into a sysfs path.
 *
 * Returns: 0; -EINVAL for anything else (wrong digit counts, slot > 0x1f, function > 7, signs,
 *          spaces, trailing characters, NULL).
 */
int gpuh_pci_addr_parse(const char *s, struct gpuh_pci_addr *ret);

/**
 * gpuh_pci_addr_from_libvirt:
 * @domain, @bus, @slot, @function: attribute values of a libvirt `<address type='pci'>`, e.g.
 *     "0x0000", "0x08", "0x00", "0x4" (decimal is accepted too, as libvirt does); @domain NULL
 *     means 0
 * @ret: the address, written only on success
 *
 * Source: libvirt docs/formatdomain.rst, "Device Addresses".
 *
 * Returns: 0; -EINVAL when a value is missing, not a number, or out of range.
 */
int gpuh_pci_addr_from_libvirt(const char *domain, const char *bus, const char *slot,
                               const char *function, struct gpuh_pci_addr *ret);

/**
 * gpuh_pci_addr_format:
 * @a: address
 * @buf: at least GPUH_PCI_ADDR_MAX bytes
 *
 * Returns: @buf holding "dddd:bb:ss.f" (lowercase; 5 domain digits when the domain needs them),
 *          the kernel's device name.
 */
char *gpuh_pci_addr_format(const struct gpuh_pci_addr *a, char *buf);

/**
 * gpuh_pci_addr_format_agent:
 * @a: address
 * @buf: at least GPUH_PCI_ADDR_MAX bytes
 *
 * Returns: @buf holding "bb:ss.f" when the domain is 0 (what pre-4.22 CloudStack agents parse),
 *          else the full form.
 */
char *gpuh_pci_addr_format_agent(const struct gpuh_pci_addr *a, char *buf);

/** gpuh_pci_addr_cmp: order by domain, bus, slot, function; <0, 0, >0 as strcmp. */
int gpuh_pci_addr_cmp(const struct gpuh_pci_addr *a, const struct gpuh_pci_addr *b);

/** gpuh_pci_addr_same_slot: same domain, bus and slot (functions of one card). */
bool gpuh_pci_addr_same_slot(const struct gpuh_pci_addr *a, const struct gpuh_pci_addr *b);
