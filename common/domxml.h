/* SPDX-License-Identifier: Apache-2.0 */
/* domxml.h: a libvirt domain document as the transformer reads and changes it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "agent_addr.h"
#include "alloc.h"
#include "mdev.h"
#include "pci_addr.h"
#include "request.h"

#define GPUH_DOMXML_MAX_BYTES (4u << 20)
/* Devices of one allocation record: 16 requests of at most 16 each (request.h); CloudStack's own
 * GPU hostdevs are held to it too (transform.c). A reservation of this many devices stays well
 * below the 1 MiB the reservation reader accepts (reserve.c). */
#define GPUH_DOMXML_MAX_DEVICES 256
#define GPUH_DOMXML_NS "urn:gpuhooks:domain:1"
#define GPUH_CLOUDSTACK_NS "http://cloudstack.apache.org/instance"

/* A <hostdev> the document already has that may be a GPU (CloudStack's own). */
struct gpuh_dom_hostdev {
        xmlNode *node;
        bool is_mdev;
        bool managed;                           /* managed='yes': libvirt binds it */
        struct gpuh_pci_addr addr;              /* type='pci' */
        char uuid[GPUH_UUID_STR_LEN + 1];       /* type='mdev', lowercase */
        bool agent_split;                       /* type='pci': @addr has the shape of an old CloudStack
                                                 * agent's split of DDDD:BB:SS.F (agent_addr.h) */
        struct gpuh_agent_split split;          /* then: the domain and bus it meant */
};

/* CloudStack's 4.23+ <cloudstack:instance> metadata (docs: cloudstack-domain-metadata). */
struct gpuh_cs_instance {
        bool present;
        char *service_offering, *account, *domain, *project, *zone;
        char **host_tags;                       /* NULL-terminated */
        char **tag_keys, **tag_values;          /* resource tags */
        size_t n_tags;
};

struct gpuh_domxml {
        xmlDoc *doc;
        bool has_decl;                  /* the input had an XML declaration */
        char *name;                     /* <name>, as libvirt reads it: not trimmed (domname.h) */
        char *uuid;                     /* <uuid>, lowercase; NULL when absent */
        char *cpuset;                   /* vCPU pinning: <vcpu cpuset> and <vcpupin cpuset>s, comma-joined; NULL */
        struct gpuh_cs_instance cs;
        xmlNode *wrapper;               /* our <gpuhooks:gpu> in the first <metadata> (libvirt keeps
                                         * only that one), or NULL */
        struct gpuh_request *requests;  /* from the wrapper */
        size_t n_requests;
        bool has_record;                /* the wrapper holds an allocation record */
        struct gpuh_alloc *record;      /* its devices */
        size_t n_record;
        struct gpuh_dom_hostdev *hostdevs;
        size_t n_hostdevs;
};

/**
 * gpuh_domxml_set_hostdev_addr:
 * @d: the document
 * @i: index of a type='pci' hostdev in @d->hostdevs
 * @a: its new source address
 *
 * Rewrites the hostdev's `<source><address>` (domain='0xDDDD' bus='0xBB' slot='0xSS'
 * function='0xF', as libvirt formats them) and @d->hostdevs[@i].addr; clears its agent_split.
 *
 * Returns: 0; -EINVAL (@i out of range or an mdev hostdev); -ENOMEM.
 */
int gpuh_domxml_set_hostdev_addr(struct gpuh_domxml *d, size_t i, const struct gpuh_pci_addr *a);

/**
 * gpuh_domxml_parse:
 * @buf, @len: the document (not NUL-terminated necessarily)
 * @ret: the parsed document, freed with gpuh_domxml_free()
 * @reterr: on failure a one-line reason (caller frees)
 *
 * libxml2 with no network, no entity substitution, no DTD loading; a document carrying a
 * DOCTYPE is refused (libvirt never writes one; it is where XXE and entity expansion live).
 * Whitespace and comments are kept, so an unchanged document serialises as it came.
 * Source: libvirt docs/formatdomain.rst (elements read: name, uuid, vcpu, cputune, metadata,
 * devices/hostdev).
 *
 * One pass over the document: work and memory are linear in @len (a document under the size
 * limit, 150,000 <vcpupin>s or 20,000 <hostdev>s included, parses in well under a second).
 *
 * Returns: 0; -E2BIG over GPUH_DOMXML_MAX_BYTES; -EBADMSG for anything not a well-formed,
 *          DTD-free <domain> with a usable name, a malformed request element, or an allocation
 *          record of more than GPUH_DOMXML_MAX_DEVICES devices; -ENOMEM.
 */
int gpuh_domxml_parse(const char *buf, size_t len, struct gpuh_domxml **ret, char **reterr);

/** gpuh_domxml_free: accepts NULL; returns NULL. */
struct gpuh_domxml *gpuh_domxml_free(struct gpuh_domxml *d);

/**
 * gpuh_domxml_apply:
 * @d: the document
 * @allocs, @n: the devices the domain gets; entries with request GPUH_ALLOC_REQUEST_CLOUDSTACK
 *              are CloudStack's hostdevs already in the document (kept; their `managed` set)
 * @managed_by_libvirt: managed='yes' on PCI hostdevs (else 'no': our state-change hook binds)
 *
 * Appends the new <hostdev> elements to the last <devices>, sets `managed` on CloudStack's GPU
 * hostdevs, adds model='vfio-pci' to its mdev hostdevs that lack it, and writes the allocation
 * record into our wrapper in the first <metadata> (creating either when missing), replacing an
 * older record. Shapes: docs/transformer.md.
 *
 * Returns: 0; -EBADMSG when the document has no <devices>; -ENOMEM.
 */
int gpuh_domxml_apply(struct gpuh_domxml *d, const struct gpuh_alloc *allocs, size_t n, bool managed_by_libvirt);

/**
 * gpuh_domxml_serialize:
 * @d: the document
 * @ret, @ret_len: the UTF-8 text (free()); no XML declaration unless the input had one
 *
 * Returns: 0; -ENOMEM; -EIO when libxml2 fails.
 */
int gpuh_domxml_serialize(struct gpuh_domxml *d, char **ret, size_t *ret_len);
