/* SPDX-License-Identifier: Apache-2.0 */
/* rule.c: does a transformer.rules entry apply to a domain? (fnmatch(3) globs) */
#include <fnmatch.h>
#include <string.h>

#include "macro.h"
#include "rule.h"

static bool glob_ok(const char *glob, const char *value)
{
        return !glob || (value && fnmatch(glob, value, 0) == 0);
}

bool gpuh_rule_matches(const struct gpuh_rule_match *m, const char *name, const struct gpuh_cs_instance *cs)
{
        bool tag_ok = !m->host_tag;

        if (!glob_ok(m->name, name) || !glob_ok(m->service_offering, cs->service_offering) ||
            !glob_ok(m->account, cs->account) || !glob_ok(m->domain, cs->domain) ||
            !glob_ok(m->project, cs->project) || !glob_ok(m->zone, cs->zone))
                return false;
        for (char **t = cs->host_tags; m->host_tag && t && *t && !tag_ok; t++)
                tag_ok = fnmatch(m->host_tag, *t, 0) == 0;
        if (!tag_ok)
                return false;
        for (size_t i = 0; i < m->n_tags; i++) {
                bool found = false;
                for (size_t k = 0; k < cs->n_tags && !found; k++)
                        found = streq(cs->tag_keys[k], m->tag_keys[i]) && fnmatch(m->tag_globs[i], cs->tag_values[k], 0) == 0;
                if (!found)
                        return false;
        }
        return true;
}
