/* SPDX-License-Identifier: Apache-2.0 */
/* transform.h: a domain XML in, GPUs reserved and written in (docs/transformer.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "host.h"
#include "rule.h"

struct json_object;

struct gpuh_transform_opts {
        struct gpuh_host_opts host;     /* where the host is; host.cfg is required */
        const char *state_dir;          /* NULL: GPUH_STATE_DIR_DEFAULT (the CLI layer read GPUHOOKS_STATE_DIR) */
        bool explain;                   /* plan only: reserve nothing, return the plan */
        int lock_timeout_ms;            /* waiting for the host lock */
        /* The configuration file could not be used and host.cfg holds the defaults
         * (gpuh_config_load_or_default()): its one line, or NULL. A domain that asks for no
         * GPU passes unchanged; one that does fails with this line. */
        const char *config_error;
};

/**
 * gpuh_transform:
 * @o: options
 * @in, @len: the domain XML as received
 * @ret_out, @ret_len: the new document; *@ret_out NULL means "unchanged": print @in as it is
 * @ret_explain: with @o->explain, the plan (requests, candidates, chosen, error), also on
 *               failure; else NULL
 * @reterr: on failure, one line for the operator (caller frees)
 *
 * Finds what the domain asks for (CloudStack's GPU hostdevs, our request element, a config
 * rule), takes the host lock, chooses devices from the live inventory, usage and the other
 * domains' live reservations (reclaiming expired ones), writes the hostdevs and the allocation
 * record, and stores the reservation, all or nothing: on any failure no reservation is left.
 * A domain whose document already carries our record (a second transform of our output) or
 * whose live reservation was made for the same requests gets the same devices back.
 *
 * Returns: 0; -EBADMSG (unusable XML, bad request; @o->config_error and the domain asks for
 *          GPUs); -E2BIG (too large, or CloudStack hostdevs naming more than
 *          GPUH_DOMXML_MAX_DEVICES GPU devices); -ENOSPC (too few free
 *          devices); -EBUSY (a CloudStack device held elsewhere); -ENODEV; -EINVAL;
 *          -EIO (neither libvirt nor its XML files could say which devices domains use: nothing
 *          is handed out blind); -ETIMEDOUT (host lock); -ENOMEM; -errno of the state directory.
 */
int gpuh_transform(const struct gpuh_transform_opts *o, const char *in, size_t len,
                   char **ret_out, size_t *ret_len, struct json_object **ret_explain, char **reterr);
