/* SPDX-License-Identifier: Apache-2.0 */
/* error_json.c: a failure as one JSON object (error_json.h). */
#include <ctype.h>
#include <string.h>

#include "error_json.h"
#include "mdev.h"
#include "pci_addr.h"

/* Whether @c, with @next beyond it, would make an address or a UUID part of something larger:
 * a hex digit, or one of ':' '.' '-' with a hex digit beyond ("0000:05:00.0: busy" ends an
 * address, "0000:05:00.0.1" does not). */
static bool joins(char c, char next)
{
        return isxdigit((unsigned char) c) || ((c == ':' || c == '.' || c == '-') && isxdigit((unsigned char) next));
}

/* The first token of length @len in @msg that stands alone and @ok accepts. */
static bool find_token(const char *msg, size_t len, bool (*ok)(const char *s), char ret[static GPUH_ERROR_DEVICE_MAX])
{
        size_t n = strlen(msg);
        char tok[GPUH_ERROR_DEVICE_MAX];

        if (len >= sizeof(tok))
                return false;
        for (size_t i = 0; i + len <= n; i++) {
                if (!isxdigit((unsigned char) msg[i]) || (i > 0 && joins(msg[i - 1], i > 1 ? msg[i - 2] : '\0')) ||
                    (msg[i + len] && joins(msg[i + len], msg[i + len + 1])))
                        continue;
                memcpy(tok, msg + i, len);
                tok[len] = '\0';
                if (!ok(tok))
                        continue;
                for (size_t k = 0; k < len; k++)
                        ret[k] = (char) tolower((unsigned char) tok[k]);
                ret[len] = '\0';
                return true;
        }
        return false;
}

static bool is_pci_addr(const char *s)
{
        struct gpuh_pci_addr a;

        return gpuh_pci_addr_parse(s, &a) == 0;
}

bool gpuh_error_device(const char *msg, char ret[static GPUH_ERROR_DEVICE_MAX])
{
        if (!msg)
                return false;
        /* "DDDD:BB:SS.F": 12 characters (a 5-digit domain, 13) */
        return find_token(msg, 12, is_pci_addr, ret) || find_token(msg, 13, is_pci_addr, ret) ||
               find_token(msg, GPUH_UUID_STR_LEN, gpuh_uuid_is_valid, ret);
}

json_object *gpuh_error_to_json(const char *msg, int r)
{
        json_object *o = json_object_new_object();
        char dev[GPUH_ERROR_DEVICE_MAX];

        if (!o)
                return NULL;
        if (!msg)
                msg = r < 0 ? strerror(-r) : "error";
        if (json_object_object_add(o, "error", json_object_new_string(msg)) < 0 ||
            json_object_object_add(o, "errno", r < 0 ? json_object_new_int(-r) : NULL) < 0 ||
            json_object_object_add(o, "device", gpuh_error_device(msg, dev) ? json_object_new_string(dev) : NULL) < 0 ||
            !json_object_object_get_ex(o, "error", NULL)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}
