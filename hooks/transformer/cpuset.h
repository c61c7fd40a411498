/* SPDX-License-Identifier: Apache-2.0 */
/* cpuset.h: the NUMA node of a domain's pinned vCPUs (docs/transformer.md, "Selection"). */
#pragma once

/**
 * gpuh_cpuset_node:
 * @root_fd: sysfs root fd
 * @cpuset: libvirt cpuset text ("0-5,12", "^3" exclusions), comma-joined sets
 * @ret: the one NUMA node all those CPUs belong to, or -1
 *
 * Nodes come from devices/system/node/nodeN/cpulist.
 *
 * Returns: 0; -EINVAL for unparsable text; -ENOMEM.
 */
int gpuh_cpuset_node(int root_fd, const char *cpuset, int *ret);
