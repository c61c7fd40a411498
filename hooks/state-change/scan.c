/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scan.c: who holds the devices a run works on. /proc is scanned once per run for every node
 * the run may need (holders.h, gpuh_holders_find()), and later questions are answered from
 * that scan: before an unbind (a process holding the function's DRM, nvidia or vfio node
 * refuses the start) and before an undo (a QEMU still holding /dev/vfio/GROUP keeps the entry).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "log.h"
#include "sc.h"
#include "vfio.h"

void sc_scan_clear(struct sc_scan *scan)
{
        strv_free(scan->nodes);
        scan->nodes = NULL;
        free(scan->holders);
        scan->holders = NULL;
        scan->n_holders = 0;
        scan->done = false;
}

/* Scan /proc once for all of @nodes (taken over); later questions are answered from it.
 * Returns 0; -ENOMEM; -errno when /proc cannot be read. */
int sc_scan_holders(struct sc *s, char **nodes)
{
        int r;

        sc_scan_clear(&s->scan);
        s->scan.nodes = nodes;
        s->scan.done = true;
        r = gpuh_holders_find(s->proc_root, nodes, &s->scan.holders, &s->scan.n_holders);
        return r < 0 ? r : 0;
}

static bool scan_covers(const struct sc_scan *scan, char *const *nodes)
{
        if (!scan->done)
                return false;
        for (char *const *p = nodes; p && *p; p++) {
                bool in = false;
                for (char **q = scan->nodes; q && *q && !in; q++)
                        in = streq(*p, *q);
                if (!in)
                        return false;
        }
        return true;
}

/* The holders of any of @nodes: from the run's scan when it covered them all, else by a scan
 * of their own (a VF that did not exist when the run scanned). Returns their number (>= 0,
 * @ret to free()); -ENOMEM; -errno as gpuh_holders_find(). */
int sc_holders_of(struct sc *s, char *const *nodes, struct gpuh_holder **ret, size_t *ret_n)
{
        size_t n = 0;

        *ret = NULL;
        *ret_n = 0;
        if (!scan_covers(&s->scan, nodes))
                return gpuh_holders_find(s->proc_root, nodes, ret, ret_n);
        for (size_t i = 0; i < s->scan.n_holders; i++)
                for (char *const *p = nodes; p && *p; p++)
                        if (streq(s->scan.holders[i].node, *p)) {
                                struct gpuh_holder *nh = reallocarray(*ret, n + 1, sizeof(*nh));
                                if (!nh) {
                                        free(*ret);
                                        *ret = NULL;
                                        return -ENOMEM;
                                }
                                *ret = nh;
                                nh[n++] = s->scan.holders[i];
                                break;
                        }
        *ret_n = n;
        return (int) n;
}

static char *vfio_node(struct sc *s, int group)
{
        char *p;

        if (group < 0 || asprintf(&p, "%s/vfio/%d", s->dev_dir, group) < 0)
                return NULL;
        return p;
}

/* Add DEV/vfio/GROUP to @nodes when the group has a node (a device of it is on a VFIO driver).
 * Returns 0; -ENOMEM. */
int sc_add_vfio_node(struct sc *s, int group, char ***nodes)
{
        char *p;

        if (group < 0)
                return 0;
        p = vfio_node(s, group);
        if (!p)
                return -ENOMEM;
        if (access(p, F_OK) < 0) {
                free(p);
                return 0;
        }
        return strv_consume(nodes, p);
}

/* Processes holding DEV/vfio/GROUP (a QEMU using it): their number, @ret_desc naming them. */
int sc_vfio_holders(struct sc *s, int group, char **ret_desc)
{
        _cleanup_free_ char *path = vfio_node(s, group);
        char *nodes[2] = { path, NULL };
        _cleanup_free_ struct gpuh_holder *h = NULL;
        size_t n = 0;
        int r;

        *ret_desc = NULL;
        if (!path || access(path, F_OK) < 0)
                return 0;
        r = sc_holders_of(s, nodes, &h, &n);
        if (r <= 0)
                return r;
        *ret_desc = gpuh_holders_describe(h, n);
        return (int) n;
}

/* The nodes of functions about to move: their own (DRM, nvidia) unless on vfio-pci already,
 * and their group's vfio node. Returns 0; -ENOMEM. */
int sc_function_nodes(struct sc *s, const struct sc_fn *f, size_t n, char ***nodes)
{
        for (size_t i = 0; i < n; i++) {
                bool moves = !streq(f[i].driver, GPUH_VFIO_DRIVER);
                int r = gpuh_pci_nodes(sc_devfd(s, &f[i].a), s->dev_dir, s->proc_root, &f[i].a,
                                       moves ? f[i].driver : "", f[i].group, nodes);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The plan's step: {"step": "check", "what": "holders", "device", "nodes", "holders"}. */
static json_object *holders_step(const struct gpuh_pci_addr *dev, char *const *nodes, const struct gpuh_holder *h,
                                 size_t nh)
{
        json_object *st = json_object_new_object(), *arr = json_object_new_array(), *ha = json_object_new_array();
        char a[GPUH_PCI_ADDR_MAX];

        if (st && arr && ha) {
                for (char *const *p = nodes; p && *p; p++)
                        json_object_array_add(arr, json_object_new_string(*p));
                for (size_t i = 0; i < nh; i++) {
                        json_object *x = json_object_new_object();
                        json_object_object_add(x, "pid", json_object_new_int(h[i].pid));
                        json_object_object_add(x, "comm", json_object_new_string(h[i].comm));
                        json_object_object_add(x, "node", json_object_new_string(h[i].node));
                        json_object_array_add(ha, x);
                }
                json_object_object_add(st, "step", json_object_new_string("check"));
                json_object_object_add(st, "what", json_object_new_string("holders"));
                json_object_object_add(st, "device", json_object_new_string(gpuh_pci_addr_format(dev, a)));
                json_object_object_add(st, "nodes", TAKE_PTR(arr));
                json_object_object_add(st, "holders", TAKE_PTR(ha));
        }
        json_object_put(arr);
        json_object_put(ha);
        return st;
}

/**
 * sc_check_holders:
 * @s: the run
 * @f, @n: the functions about to move to vfio-pci (@f[0] names them)
 * @known: their nodes as planned (sc_function_nodes()), or NULL to look them up now
 * @reterr: on failure, one line naming the device and the processes
 *
 * Refuses when a process holds a node of a function about to be unbound, or its group's vfio
 * node. The check is a step of the plan (a dry run lists it; gpuh_change_step()).
 *
 * Returns: 0; -EBUSY (held); -ENOMEM; -errno when /proc cannot be read.
 */
int sc_check_holders(struct sc *s, const struct sc_fn *f, size_t n, char *const *known, char **reterr)
{
        _cleanup_strv_free_ char **own = NULL;
        char *const *nodes = known;
        _cleanup_free_ struct gpuh_holder *h = NULL;
        _cleanup_free_ char *desc = NULL;
        char a[GPUH_PCI_ADDR_MAX];
        size_t nh = 0;
        int r;

        if (!nodes) {
                r = sc_function_nodes(s, f, n, &own);
                if (r < 0)
                        return r;
                nodes = own;
        }
        r = sc_holders_of(s, nodes, &h, &nh);
        if (s->ch.dry_run)
                gpuh_change_step(&s->ch, holders_step(&f[0].a, nodes, h, nh));
        if (r < 0)
                return gpuh_error(reterr, r, "%s: cannot look for processes using the devices in '%s': %s", s->vm,
                                  s->proc_root, strerror(-r));
        if (nh == 0)
                return 0;
        desc = gpuh_holders_describe(h, nh);
        return gpuh_error(reterr, -EBUSY, "%s: %s is in use, refusing to take it: %s", s->vm,
                          gpuh_pci_addr_format(&f[0].a, a), desc ? desc : "");
}
