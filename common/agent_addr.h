/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent_addr.h: a PCI address as CloudStack KVM agents before 4.22.1 write it for a device in a
 * PCI domain other than 0000.
 *
 * Those agents (LibvirtGpuDef before apache/cloudstack PR #12981) split the inventory's
 * busAddress on ':' and take the first part as the bus, the second up to its '.' as the slot,
 * and keep the default function '0x0'; the domain is always '0x0000'. For `000b:01:00.0` they
 * write `<address domain='0x0000' bus='0x000b' slot='0x01' function='0x0'/>`: the device's slot
 * and function are lost, and the address names 0000:0b:01.0, a device that does not exist or,
 * worse, another one (apache/cloudstack issue #12960 shows the same split for `0001:d6:00.0`,
 * which libvirt refuses for its slot 0xd6).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci_addr.h"

/* What the shape of a hostdev address says the agent meant: a function on this bus. */
struct gpuh_agent_split {
        uint32_t domain;                /* DDDD, from the bus attribute */
        uint8_t bus;                    /* BB, from the slot attribute */
};

/**
 * gpuh_agent_split_detect:
 * @domain, @bus, @slot, @function: the attribute values of a `<hostdev type='pci'>`'s source
 *                                  `<address>` (@domain may be NULL)
 * @ret: receives the domain and bus the agent meant, only when true is returned
 *
 * The shape an old agent writes for a three-part address and nobody else does: domain 0, a
 * bus of "0x" and 4 or 5 hex digits (a PCI domain, as the inventory spells it; a bus has two),
 * a slot of "0x" and 2 hex digits (the bus), function 0.
 *
 * Returns: true when the address has that shape.
 */
bool gpuh_agent_split_detect(const char *domain, const char *bus, const char *slot, const char *function,
                             struct gpuh_agent_split *ret);

/**
 * gpuh_agent_split_resolve:
 * @s: what the address's shape says (gpuh_agent_split_detect())
 * @literal: the address as written
 * @literal_exists: whether a PCI function has that address on this host
 * @cands: the functions CloudStack may allocate (the inventory's GPUs and VFs) on @s's domain
 *         and bus; @n of them
 * @ret: receives the function the agent meant, only when 1 is returned
 * @why, @size: receive one line when -ENOTUNIQ is returned
 *
 * Never guesses: the address is rewritten only when the literal one names no device and
 * exactly one candidate exists.
 *
 * Returns: 1 (rewrite to @ret); 0 (no candidate: not a device CloudStack allocated, the
 *          address stands as written); -ENOTUNIQ (the literal address exists too, or several
 *          candidates: ambiguous).
 */
int gpuh_agent_split_resolve(const struct gpuh_agent_split *s, const struct gpuh_pci_addr *literal,
                             bool literal_exists, const struct gpuh_pci_addr *cands, size_t n,
                             struct gpuh_pci_addr *ret, char *why, size_t size);
