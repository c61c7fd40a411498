/* SPDX-License-Identifier: Apache-2.0 */
/* cpuset.c: the NUMA node a domain's vCPUs are pinned to, from libvirt's cpuset text. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cpuset.h"
#include "macro.h"
#include "sysfs.h"

/* Parse a libvirt cpuset ("0-5,12,^3") into a bitmap of @max CPUs. */
static int parse_cpuset(const char *s, unsigned char *bits, size_t max)
{
        _cleanup_free_ char *copy = strdup(s);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                bool neg = *t == '^';
                char *end;
                unsigned long a, b;

                while (isspace((unsigned char) *t))
                        t++;
                if (neg)
                        t++;
                if (!isdigit((unsigned char) *t))
                        return -EINVAL;
                a = strtoul(t, &end, 10);
                b = a;
                if (*end == '-') {
                        if (!isdigit((unsigned char) end[1]))
                                return -EINVAL;
                        b = strtoul(end + 1, &end, 10);
                }
                while (isspace((unsigned char) *end))
                        end++;
                if (*end || b < a || b >= max)
                        return -EINVAL;
                memset(bits + a, !neg, b - a + 1);      /* not a loop: 150,000 "0-8191" pins stay cheap */
        }
        return 0;
}

#define MAX_CPUS 8192

int gpuh_cpuset_node(int root_fd, const char *cpuset, int *ret)
{
        _cleanup_free_ unsigned char *want = calloc(MAX_CPUS, 1), *node = calloc(MAX_CPUS, 1);
        _cleanup_strv_free_ char **nodes = NULL;
        int found = -1, r;

        *ret = -1;
        if (!want || !node)
                return -ENOMEM;
        if (!cpuset)
                return 0;
        r = parse_cpuset(cpuset, want, MAX_CPUS);
        if (r < 0)
                return r;
        if (gpuh_sysfs_list(root_fd, "devices/system/node", &nodes) < 0)
                return 0;
        for (char **p = nodes; *p; p++) {
                char rel[128], buf[4096];
                int id;
                bool all = true, any = false;

                if (strncmp(*p, "node", 4) != 0 || !isdigit((unsigned char) (*p)[4]))
                        continue;
                id = atoi(*p + 4);
                snprintf(rel, sizeof(rel), "devices/system/node/%s/cpulist", *p);
                if (gpuh_sysfs_read(root_fd, rel, buf, sizeof(buf)) < 0)
                        continue;
                memset(node, 0, MAX_CPUS);
                if (buf[0] && parse_cpuset(buf, node, MAX_CPUS) < 0)
                        continue;
                for (size_t i = 0; i < MAX_CPUS; i++)
                        if (want[i]) {
                                if (node[i])
                                        any = true;
                                else
                                        all = false;
                        }
                if (any && all) {
                        found = id;
                        break;
                }
        }
        *ret = found;
        return 0;
}
