/* SPDX-License-Identifier: Apache-2.0 */
/* rule.h: matching the configuration's transformer.rules against a domain. */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "domxml.h"

/**
 * gpuh_rule_matches:
 * @m: a rule's match
 * @name: the domain name
 * @cs: CloudStack's instance metadata of the domain (fields NULL when absent)
 *
 * Every given field must match its fnmatch(3) glob; a field the domain lacks never matches.
 *
 * Returns: whether the rule applies.
 */
bool gpuh_rule_matches(const struct gpuh_rule_match *m, const char *name, const struct gpuh_cs_instance *cs);
