/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gpuhooksctl: the operator's view of gpuhooks on one host, and the few actions an operator
 * needs: every GPU device's state and remaining capacity, the reservations and journals in the
 * state directory, releasing one stuck domain's devices, reconcile, a prepare's dry run, the
 * fitness check.
 *
 *   gpuhooksctl [OPTION]... status | reservations | journals | release VM | reconcile |
 *                           plan VM.xml | check
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "capacity.h"
#include "check.h"
#include "cli.h"
#include "config.h"
#include "domxml.h"
#include "fileio.h"
#include "host.h"
#include "inventory_json.h"
#include "inventory_table.h"
#include "journal.h"
#include "layout.h"
#include "log.h"
#include "reserve.h"
#include "statechange.h"
#include "status.h"
#include "table.h"
#include "vgpu_names.h"
#include "vm_usage.h"

#define PROG "gpuhooksctl"

enum { OPT_FORMAT = GPUH_OPT_TOOL, OPT_GPU, OPT_FREE, OPT_MIN_AGE, OPT_DEV_DIR, OPT_PROC_ROOT, OPT_PCI_IDS, OPT_ROOT };

/* The one list of options: getopt, --help and the man page are all made from it. */
static const struct gpuh_option options[] = {
        { { "format", required_argument, NULL, OPT_FORMAT }, "FMT", "table (default) or json, for every verb", false },
        { { "gpu", required_argument, NULL, OPT_GPU }, "ADDR",
          "status: only the GPU at ADDR (BB:SS.F or DDDD:BB:SS.F, or one of its VFs')", false },
        { { "free", no_argument, NULL, OPT_FREE }, NULL, "status: only free devices and profiles with room", false },
        { { "min-age", required_argument, NULL, OPT_MIN_AGE }, "SECONDS",
          "reconcile: leave younger journals alone (default: config state_change.reconcile_min_age_s)", false },
        GPUH_OPTION_CONFIG,
        GPUH_OPTION_SYSFS_ROOT,
        GPUH_OPTION_STATE_DIR,
        { { "dev-dir", required_argument, NULL, OPT_DEV_DIR }, "DIR",
          "device nodes, to find the processes holding a device (default /dev; env GPUHOOKS_DEV_DIR)", false },
        { { "proc-root", required_argument, NULL, OPT_PROC_ROOT }, "DIR",
          "procfs, to find the processes holding a device (default /proc; env GPUHOOKS_PROC_ROOT)", false },
        GPUH_OPTION_CONNECT("libvirt URI asked which domain uses which device"),
        GPUH_OPTION_NO_LIBVIRT,
        GPUH_OPTION_DOMAIN_XML_DIR,
        { { "pci-ids", required_argument, NULL, OPT_PCI_IDS }, "FILE",
          "name devices from this pci.ids only (env GPUHOOKS_PCI_IDS)", false },
        { { "root", required_argument, NULL, OPT_ROOT }, "DIR",
          "check: look for the installed hooks and agent.properties under DIR (default /)", false },
        GPUH_OPTION_VERBOSE,
        GPUH_OPTION_HELP,
};

static const char *const synopsis[] = {
        "[OPTION]... status [--gpu ADDR] [--free]",
        "[OPTION]... reservations | journals",
        "[OPTION]... release VMNAME",
        "[OPTION]... reconcile [--min-age SECONDS]",
        "[OPTION]... plan DOMAIN.xml",
        "[OPTION]... check",
        NULL,
};

static const struct gpuh_tool tool = {
        .name = PROG,
        .summary = "show and manage the GPU devices gpuhooks hands to domains on this host",
        .synopsis = synopsis,
        .description =
                "The operator's command for gpuhooks. Options and the verb may come in any order.\n"
                "\n"
                "status lists every GPU, VF and mdev (vGPU) with its state: free, reserved by a domain until\n"
                "a time (or running), in use by a domain, journaled (a domain's journal names it and the\n"
                "domain does not run: a release that did not happen), carved (an mdev or a vendor vGPU type that exists and\n"
                "no domain uses), shared (a GPU split into VFs or vGPUs, a VF carrying a vGPU), blocked (not\n"
                "offered for passthrough), driverless, quarantined; then per GPU and profile the instances in\n"
                "use and how many more fit now (framebuffer, maximum instances, free VFs, the vGPU mode;\n"
                "live reservations count as taken).\n"
                "\n"
                "reservations and journals list what the state directory holds, with ages and owners.\n"
                "\n"
                "release VMNAME puts back one domain's devices exactly as libvirt's release would (its journal\n"
                "replayed in reverse, its reservation freed), and refuses, changing nothing, while a process\n"
                "(its QEMU) holds the vfio group of any device its journal or reservation names.\n"
                "\n"
                "reconcile releases every domain that no longer runs (as libvirt-vm-state-change reconcile);\n"
                "plan DOMAIN.xml prints what prepare would do for that domain XML, changing nothing (the\n"
                "dry run); check says whether the host is fit (as gpudiscovery --check).\n"
                "\n"
                "--format json prints one JSON document for every verb (docs/gpuhooksctl.md).",
        .options = options,
        .n_options = ARRAY_SIZE(options),
        .exit_status = "0; 1 when the verb failed (release refused or failed, a plan refused, check: the host is\n"
                       "not ready), with one line on stderr; 2 for bad arguments.",
        .environment = "GPUHOOKS_CONFIG\tthe configuration file\n"
                       "GPUHOOKS_SYSFS_ROOT\tsysfs instead of /sys\n"
                       "GPUHOOKS_STATE_DIR\tthe state directory\n"
                       "GPUHOOKS_DEV_DIR\tdevice nodes instead of /dev\n"
                       "GPUHOOKS_PROC_ROOT\tprocfs instead of /proc\n"
                       "GPUHOOKS_DOMAIN_XML_DIRS\tlibvirt's domain XML directories, colon-separated\n"
                       "GPUHOOKS_PCI_IDS\tthe pci.ids file to name devices from\n"
                       "LIBVIRT_DEFAULT_URI\tlibvirt's connection URI",
        .files = GPUH_CONFIG_DEFAULT_PATH "\tthe configuration\n"
                 GPUH_STATE_DIR_DEFAULT "/reservations/DOMAIN.json\twhat each domain holds\n"
                 GPUH_STATE_DIR_DEFAULT "/journal/DOMAIN.journal\tthe changes made for a domain\n"
                 GPUH_STATE_DIR_DEFAULT "/quarantine/ADDRESS.json\tfunctions kept from every domain",
        .see_also = "gpudiscovery(1), libvirt-vm-state-change(1), libvirt-vm-xml-transformer(1)",
};

struct args {
        bool json;
        bool free_only;
        bool has_gpu;
        struct gpuh_pci_addr gpu;
        int min_age;
        const char *dev_dir, *proc_root, *pci_ids, *root;
};

static int own_option(int opt, const char *arg, void *data)
{
        struct args *a = data;
        char *end;
        long v;

        switch (opt) {
        case OPT_FORMAT:
                if (!streq(arg, "table") && !streq(arg, "json"))
                        return gpuh_cli_usage_error(PROG, "unknown format '%s' (table or json)", arg);
                a->json = streq(arg, "json");
                return -1;
        case OPT_GPU:
                if (gpuh_pci_addr_parse(arg, &a->gpu) < 0)
                        return gpuh_cli_usage_error(PROG, "'%s' is not a PCI address", arg);
                a->has_gpu = true;
                return -1;
        case OPT_FREE:
                a->free_only = true;
                return -1;
        case OPT_MIN_AGE:
                errno = 0;
                v = strtol(arg, &end, 10);
                if (errno || *end || end == arg || v < 0 || v > 86400)
                        return gpuh_cli_usage_error(PROG, "--min-age needs seconds from 0 to 86400");
                a->min_age = (int) v;
                return -1;
        case OPT_DEV_DIR:
                a->dev_dir = arg;
                return -1;
        case OPT_PROC_ROOT:
                a->proc_root = arg;
                return -1;
        case OPT_PCI_IDS:
                a->pci_ids = arg;
                return -1;
        case OPT_ROOT:
                a->root = arg;
                return -1;
        default:
                return gpuh_cli_usage_error(PROG, "unknown option");
        }
}

/* Everything a verb may need, resolved once. */
struct ctx {
        struct args a;
        struct gpuh_cli_common c;
        struct gpuh_config *cfg;
        char *cfg_err;
        char **env_dirs;
        struct gpuh_sc_opts sc;
};

static const char *or_default(const char *given, const char *def)
{
        return given && *given ? given : def;
}

static int fail(const char *fmt, ...) _printf_(1, 2);
/* One line on stderr, or with --format json one JSON error object on stdout (docs/errors.md). */
static int fail(const char *fmt, ...)
{
        _cleanup_free_ char *line = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&line, fmt, ap);
        va_end(ap);
        if (n < 0)
                line = NULL;
        return gpuh_cli_fail(PROG, line ? 0 : -ENOMEM, line, NULL);
}

static int print_json(json_object *doc)
{
        int r = doc ? gpuh_json_print(doc, 1) : -ENOMEM;

        json_object_put(doc);
        if (r == -ENOMEM)
                return log_oom();
        return r < 0 ? fail("cannot write the output: %s", strerror(-r)) : EXIT_SUCCESS;
}

static void fmt_time(int64_t t, char *buf, size_t size)
{
        time_t tt = (time_t) t;
        struct tm tm;

        if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "-");
}

static void fmt_age(int64_t secs, char *buf, size_t size)
{
        if (secs < 0)
                secs = 0;
        if (secs < 120)
                snprintf(buf, size, "%" PRId64 "s", secs);
        else if (secs < 7200)
                snprintf(buf, size, "%" PRId64 "m", secs / 60);
        else if (secs < 172800)
                snprintf(buf, size, "%" PRId64 "h", secs / 3600);
        else
                snprintf(buf, size, "%" PRId64 "d", secs / 86400);
}

/* ---- the state directory -------------------------------------------------------------------- */

struct state_view {
        struct gpuh_state *st;
        struct gpuh_reservation *res;
        size_t n_res;
        struct gpuh_journal **journals;
        size_t n_journals;
        struct gpuh_warnings warnings;
};

static void state_view_clear(struct state_view *v)
{
        gpuh_reservations_free(v->res, v->n_res);
        for (size_t i = 0; i < v->n_journals; i++)
                gpuh_journal_free(v->journals[i]);
        free(v->journals);
        gpuh_warnings_clear(&v->warnings);
        gpuh_state_free(v->st);
        *v = (struct state_view) { 0 };
}

/* Reads the reservations and journals (read-only: nothing is created). A missing state
 * directory reads as empty. Returns 0, or the exit status of a failure. */
static int state_view_load(const struct ctx *x, struct state_view *v)
{
        _cleanup_free_ char *err = NULL;
        _cleanup_strv_free_ char **names = NULL;
        int r, jfd;

        r = gpuh_state_open(x->sc.state_dir, false, &v->st, &err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return fail("%s", err ? err : strerror(-r));
        r = gpuh_state_lock(v->st, false, x->cfg->lock_timeout_ms);
        if (r < 0)
                return fail("cannot lock '%s': %s", x->sc.state_dir, strerror(-r));
        r = gpuh_reservations_load(v->st, &v->res, &v->n_res, &v->warnings);
        if (r < 0)
                return fail("%s", v->warnings.n ? v->warnings.v[v->warnings.n - 1] : strerror(-r));
        jfd = gpuh_state_subdir(v->st, "journal");
        if (jfd == -ENOENT)
                jfd = -1;
        else if (jfd < 0)
                return fail("cannot open '%s/journal': %s", x->sc.state_dir, strerror(-jfd));
        r = gpuh_journal_list(jfd, &names, &v->warnings);
        if (r < 0)
                return fail("cannot list '%s/journal': %s", x->sc.state_dir, strerror(-r));
        v->journals = calloc((size_t) r + 1, sizeof(*v->journals));
        if (!v->journals)
                return log_oom();
        for (char **p = names; p && *p; p++) {
                struct gpuh_journal *j = NULL;
                int k = gpuh_journal_load(jfd, *p, &j);
                if (k == -ENOMEM)
                        return log_oom();
                if (k < 0) {
                        gpuh_warn(&v->warnings, "%s: its journal cannot be read: %s", *p,
                                  k == -EBADMSG ? "malformed" : strerror(-k));
                        continue;
                }
                v->journals[v->n_journals++] = j;
        }
        gpuh_state_unlock(v->st);
        return 0;
}

/* ---- status ------------------------------------------------------------------------------- */

static bool row_shown(const struct args *a, const struct gpuh_inventory *inv, const char *gpu, bool is_free)
{
        if (a->free_only && !is_free)
                return false;
        if (a->has_gpu) {
                struct gpuh_pci_addr g;
                if (gpuh_pci_addr_parse(gpu, &g) < 0)
                        return false;
                for (size_t i = 0; i < inv->n_gpus; i++)
                        if (gpuh_pci_addr_cmp(&inv->gpus[i].dev->addr, &g) == 0)
                                return gpuh_gpu_matches(&inv->gpus[i], &a->gpu);
                return false;
        }
        return true;
}

static json_object *jstr(const char *s)
{
        return s && *s ? json_object_new_string(s) : NULL;
}

static int status_print(const struct ctx *x, struct gpuh_inventory *inv, const struct gpuh_dev_status *rows, size_t n,
                        const struct gpuh_promised *p, int64_t now, const struct gpuh_warnings *w)
{
        _cleanup_(gpuh_table_freep) struct gpuh_table *t = NULL, *ct = NULL;
        json_object *doc = NULL, *devs = NULL, *caps = NULL, *warns = NULL;
        static const char *const dh[] = { "DEVICE", "KIND", "GPU", "PROFILE", "STATE", "DOMAIN", "UNTIL", "DETAIL" };
        static const char *const ch[] = { "GPU", "KIND", "TYPE", "PROFILE", "CREATED", "IN USE", "MORE" };
        int r = 0;

        if (x->a.json) {
                doc = json_object_new_object();
                devs = json_object_new_array();
                caps = json_object_new_array();
                warns = json_object_new_array();
                if (!doc || !devs || !caps || !warns) {
                        json_object_put(doc);
                        json_object_put(devs);
                        json_object_put(caps);
                        json_object_put(warns);
                        return log_oom();
                }
                json_object_object_add(doc, "now", json_object_new_int64(now));
                json_object_object_add(doc, "devices", devs);
                json_object_object_add(doc, "capacity", caps);
                json_object_object_add(doc, "warnings", warns);
        } else if (gpuh_table_new(ARRAY_SIZE(dh), dh, &t) < 0 || gpuh_table_new(ARRAY_SIZE(ch), ch, &ct) < 0)
                return log_oom();

        for (size_t i = 0; i < n; i++) {
                const struct gpuh_dev_status *d = &rows[i];
                char until[32];

                if (!row_shown(&x->a, inv, d->gpu, d->state == GPUH_DEV_FREE))
                        continue;
                fmt_time(d->until, until, sizeof(until));
                if (doc) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "device", jstr(d->id));
                        json_object_object_add(o, "kind", jstr(gpuh_dev_kind_to_string(d->kind)));
                        json_object_object_add(o, "gpu", jstr(d->gpu));
                        json_object_object_add(o, "profile", jstr(d->profile));
                        json_object_object_add(o, "state", jstr(gpuh_dev_state_to_string(d->state)));
                        json_object_object_add(o, "domain", jstr(d->domain));
                        json_object_object_add(o, "until", d->until > 0 ? json_object_new_int64(d->until) : NULL);
                        json_object_object_add(o, "detail", jstr(d->detail));
                        json_object_array_add(devs, o);
                } else {
                        const char *cells[] = { d->id, gpuh_dev_kind_to_string(d->kind), d->gpu, d->profile,
                                                gpuh_dev_state_to_string(d->state), d->domain[0] ? d->domain : "-",
                                                until, d->detail };
                        if (gpuh_table_add(t, cells) < 0)
                                return log_oom();
                }
        }
        for (size_t i = 0; i < inv->n_gpus; i++) {
                _cleanup_free_ struct gpuh_profile_cap *c = NULL;
                size_t nc = 0;

                if (!row_shown(&x->a, inv, inv->gpus[i].dev->name, true))
                        continue;
                if (gpuh_gpu_capacity(inv, &inv->gpus[i], p, &c, &nc) < 0)
                        return log_oom();
                for (size_t k = 0; k < nc; k++) {
                        char cr[24], iu[24], mo[24];

                        if (x->a.free_only ? c[k].more == 0 : c[k].created == 0 && c[k].more == 0)
                                continue;
                        if (doc) {
                                json_object *o = json_object_new_object();
                                json_object_object_add(o, "gpu", jstr(inv->gpus[i].dev->name));
                                json_object_object_add(o, "kind", jstr(gpuh_cap_kind_to_string(c[k].kind)));
                                json_object_object_add(o, "type_id", jstr(c[k].type_id));
                                json_object_object_add(o, "profile", jstr(c[k].name));
                                json_object_object_add(o, "created", json_object_new_int64(c[k].created));
                                json_object_object_add(o, "in_use", json_object_new_int64(c[k].in_use));
                                json_object_object_add(o, "more", c[k].more >= 0 ? json_object_new_int64(c[k].more) : NULL);
                                json_object_array_add(caps, o);
                                continue;
                        }
                        snprintf(cr, sizeof(cr), "%" PRId64, c[k].created);
                        snprintf(iu, sizeof(iu), "%" PRId64, c[k].in_use);
                        if (c[k].more < 0)
                                snprintf(mo, sizeof(mo), "?");
                        else
                                snprintf(mo, sizeof(mo), "%" PRId64, c[k].more);
                        const char *cells[] = { inv->gpus[i].dev->name, gpuh_cap_kind_to_string(c[k].kind),
                                                c[k].type_id[0] ? c[k].type_id : "-", c[k].name, cr, iu, mo };
                        if (gpuh_table_add(ct, cells) < 0)
                                return log_oom();
                }
        }
        for (size_t i = 0; i < w->n; i++)
                if (doc)
                        json_object_array_add(warns, json_object_new_string(w->v[i]));
        if (doc)
                return print_json(doc);
        r = gpuh_table_print(t, stdout);
        if (r == 0 && gpuh_table_rows(ct) > 0) {
                putchar('\n');
                r = gpuh_table_print(ct, stdout);
        }
        for (size_t i = 0; i < w->n; i++)
                printf("warning: %s\n", w->v[i]);
        if (r == 0 && fflush(stdout) == EOF)
                r = -EIO;
        return r < 0 ? fail("cannot write the output: %s", strerror(-r)) : EXIT_SUCCESS;
}

/* The host: inventory, usage, quarantine. Returns 0 or an exit status. */
static int scan_host(struct ctx *x, struct gpuh_host **ret)
{
        _cleanup_free_ char *err = NULL;
        struct gpuh_host *host = NULL;
        int r;

        r = gpuh_host_scan(&(struct gpuh_host_opts) {
                        .sysfs_root = x->c.sysfs_root, .pci_ids = x->a.pci_ids ? x->a.pci_ids : x->c.pci_ids,
                        .cache_dir = x->c.cache_dir ? x->c.cache_dir : "", .connect = x->c.connect,
                        .no_libvirt = x->c.no_libvirt, .xml_dirs = x->c.xml_dirs, .xml_dirs_env = x->c.xml_dirs_env,
                        .cfg = x->cfg,
                }, &host, &err);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return fail("%s", err ? err : strerror(-r));
        /* a VF whose vGPU type no list names any more (a full GPU) is named from the names
         * earlier runs saw, as gpudiscovery names it (docs/inventory.md) */
        if (gpuh_vgpu_names_update(host->inv, x->sc.state_dir) == -ENOMEM) {
                gpuh_host_free(host);
                return log_oom();
        }
        r = gpuh_quarantine_load(x->sc.state_dir, &host->inv->quarantined, &host->inv->n_quarantined);
        if (r == -ENOMEM) {
                gpuh_host_free(host);
                return log_oom();
        }
        if (r < 0)
                gpuh_warn(&host->inv->warnings, "cannot read the quarantine in '%s/quarantine': %s", x->sc.state_dir,
                          strerror(-r));
        *ret = host;
        return 0;
}

static int verb_status(struct ctx *x)
{
        _cleanup_(gpuh_layouts_freep) struct gpuh_layouts *layouts = NULL;    /* after host: it borrows them */
        _cleanup_(gpuh_host_freep) struct gpuh_host *host = NULL;
        _cleanup_free_ struct gpuh_dev_status *rows = NULL;
        _cleanup_free_ struct gpuh_reservation *live = NULL;
        struct state_view v = { 0 };
        struct gpuh_promised p;
        size_t n = 0;
        int r;

        r = scan_host(x, &host);
        if (r != 0)
                return r;
        /* vGPU layouts: their slots, as gpudiscovery advertises them */
        if (gpuh_layouts_resolve(host->inv, x->cfg, &layouts) < 0)
                return log_oom();
        host->inv->layouts = layouts;
        if (x->a.has_gpu) {
                bool found = false;
                for (size_t i = 0; i < host->inv->n_gpus && !found; i++)
                        found = gpuh_gpu_matches(&host->inv->gpus[i], &x->a.gpu);
                if (!found) {
                        char s[GPUH_PCI_ADDR_MAX];
                        return fail("no GPU at %s", gpuh_pci_addr_format(&x->a.gpu, s));
                }
        }
        r = state_view_load(x, &v);
        if (r == 0) {
                struct gpuh_status_input in = {
                        .inv = host->inv, .res = v.res, .n_res = v.n_res, .journals = v.journals,
                        .n_journals = v.n_journals, .now = (int64_t) time(NULL),
                };
                if (gpuh_status_collect(&in, &rows, &n) < 0 || gpuh_status_promised(&in, &live, &p) < 0)
                        r = log_oom();
                else if (gpuh_warnings_move(&v.warnings, &host->inv->warnings) < 0)
                        r = log_oom();
                else
                        r = status_print(x, host->inv, rows, n, &p, in.now, &host->inv->warnings);
        }
        state_view_clear(&v);
        return r;
}

/* ---- which domains run ------------------------------------------------------------------------ */

/* Which domains run: libvirt unless --no-libvirt, else (or when it cannot answer) the XML files
 * libvirt keeps. NULL when neither could be read (or without memory): states are unknown then. */
static struct gpuh_vm_usage *load_usage(const struct ctx *x)
{
        struct gpuh_vm_usage *u = NULL;
        char *const *dirs = x->sc.xml_dirs ? x->sc.xml_dirs : x->cfg->domain_xml_dirs;
        struct gpuh_warnings w = { 0 };

        if (gpuh_vm_usage_new(&u) < 0)
                return NULL;
        if (!x->c.no_libvirt) {
                _cleanup_free_ char *err = NULL;
                if (gpuh_vm_usage_load_libvirt(u, x->c.connect ? x->c.connect : x->cfg->libvirt_uri,
                                               x->cfg->libvirt_timeout_ms, &err) >= 0)
                        return u;
                gpuh_log(LOG_INFO, "libvirt cannot say which domains run (%s): reading its domain XML files",
                         err ? err : "no answer");
        }
        if (dirs)
                gpuh_vm_usage_load_dirs(u, dirs, &w);
        gpuh_warnings_clear(&w);
        if (gpuh_vm_usage_source(u) == GPUH_VM_SOURCE_NONE)
                return gpuh_vm_usage_free(u);
        return u;
}

/* "running", "shutoff", ... as the usage knows the domain; "undefined" when it does not know
 * it; NULL when nothing could be read. */
static const char *domain_state(struct gpuh_vm_usage *u, const char *domain)
{
        const struct gpuh_vm *vm;

        if (!u)
                return NULL;
        vm = gpuh_vm_usage_find(u, domain);
        return vm ? gpuh_vm_state_to_string(vm->state) : "undefined";
}

/* ---- reservations, journals ---------------------------------------------------------------- */

static void alloc_name(const struct gpuh_alloc *d, char *buf, size_t size)
{
        char a[GPUH_PCI_ADDR_MAX];

        if (d->kind == GPUH_ALLOC_MDEV)
                snprintf(buf, size, "mdev %s (%s on %s)%s", d->uuid, d->mdev_type, gpuh_pci_addr_format(&d->parent, a),
                         d->mdev_new ? " new" : "");
        else if (d->kind == GPUH_ALLOC_VENDOR_VGPU)
                snprintf(buf, size, "vendor-vgpu %s type %u", gpuh_pci_addr_format(&d->addr, a), d->vgpu_type);
        else
                snprintf(buf, size, "%s %s", gpuh_alloc_kind_to_string(d->kind), gpuh_pci_addr_format(&d->addr, a));
}

/* The state directory read, and the table (or the JSON array) a listing verb fills; 0 or an
 * exit status (the view cleared). */
static int listing_start(struct ctx *x, struct state_view *v, const char *const *h, size_t n_h, struct gpuh_table **t,
                         json_object **arr)
{
        int r = state_view_load(x, v);

        if (r == 0 && (x->a.json ? !(*arr = json_object_new_array()) : gpuh_table_new(n_h, h, t) < 0))
                r = log_oom();
        if (r != 0)
                state_view_clear(v);
        return r;
}

static int verb_reservations(struct ctx *x)
{
        _cleanup_(gpuh_table_freep) struct gpuh_table *t = NULL;
        static const char *const h[] = { "DOMAIN", "STATE", "AGE", "CREATED", "EXPIRES", "LIVE", "DOMAIN STATE",
                                         "DEVICES" };
        _cleanup_(gpuh_vm_usage_freep) struct gpuh_vm_usage *u = NULL;
        struct state_view v = { 0 };
        int64_t now = (int64_t) time(NULL);
        json_object *arr = NULL;
        int r;

        r = listing_start(x, &v, h, ARRAY_SIZE(h), &t, &arr);
        if (r != 0)
                return r;
        if (v.n_res > 0)
                u = load_usage(x);
        for (size_t i = 0; i < v.n_res; i++) {
                const struct gpuh_reservation *res = &v.res[i];
                bool running = res->state && streq(res->state, "running"), live = gpuh_reservation_live(res, now);
                char age[32], created[32], expires[32], devs[1024] = "", one[160];
                size_t len = 0;

                fmt_age(now - res->created, age, sizeof(age));
                fmt_time(res->created, created, sizeof(created));
                fmt_time(running ? 0 : res->expires, expires, sizeof(expires));
                if (arr) {
                        json_object *o = json_object_new_object(), *d = json_object_new_array();
                        json_object_object_add(o, "domain", jstr(res->domain));
                        json_object_object_add(o, "uuid", jstr(res->uuid));
                        json_object_object_add(o, "state", jstr(res->state));
                        json_object_object_add(o, "created", json_object_new_int64(res->created));
                        json_object_object_add(o, "age_s", json_object_new_int64(now - res->created));
                        json_object_object_add(o, "expires", running ? NULL : json_object_new_int64(res->expires));
                        json_object_object_add(o, "live", json_object_new_boolean(live));
                        json_object_object_add(o, "domain_state", jstr(domain_state(u, res->domain)));
                        for (size_t k = 0; k < res->n_devices; k++) {
                                alloc_name(&res->devices[k], one, sizeof(one));
                                json_object_array_add(d, json_object_new_string(one));
                        }
                        json_object_object_add(o, "devices", d);
                        json_object_array_add(arr, o);
                        continue;
                }
                for (size_t k = 0; k < res->n_devices && len < sizeof(devs); k++) {
                        alloc_name(&res->devices[k], one, sizeof(one));
                        len += (size_t) snprintf(devs + len, sizeof(devs) - len, "%s%s", k ? ", " : "", one);
                }
                const char *ds = domain_state(u, res->domain);
                const char *cells[] = { res->domain, res->state ? res->state : "-", age, created, expires,
                                        live ? "yes" : "no (expired)", ds ? ds : "?", devs };
                if (gpuh_table_add(t, cells) < 0) {
                        state_view_clear(&v);
                        return log_oom();
                }
        }
        state_view_clear(&v);
        if (arr)
                return print_json(arr);
        if (gpuh_table_rows(t) == 0)
                return printf("(no reservations)\n") < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        r = gpuh_table_print(t, stdout);
        return r < 0 ? fail("cannot write the output: %s", strerror(-r)) : EXIT_SUCCESS;
}

static int verb_journals(struct ctx *x)
{
        _cleanup_(gpuh_table_freep) struct gpuh_table *t = NULL;
        static const char *const h[] = { "DOMAIN", "AGE", "CREATED", "DOMAIN STATE", "ENTRIES", "CHANGES" };
        _cleanup_(gpuh_vm_usage_freep) struct gpuh_vm_usage *u = NULL;
        struct state_view v = { 0 };
        int64_t now = (int64_t) time(NULL);
        json_object *arr = NULL;
        int r;

        r = listing_start(x, &v, h, ARRAY_SIZE(h), &t, &arr);
        if (r != 0)
                return r;
        if (v.n_journals > 0)
                u = load_usage(x);
        for (size_t i = 0; i < v.n_journals; i++) {
                const struct gpuh_journal *j = v.journals[i];
                char age[32], created[32], n[16], changes[1024] = "", key[96];
                size_t len = 0;

                fmt_age(now - j->created, age, sizeof(age));
                fmt_time(j->created, created, sizeof(created));
                snprintf(n, sizeof(n), "%zu%s", j->n, j->torn ? " (torn)" : "");
                if (arr) {
                        json_object *o = json_object_new_object(), *e = json_object_new_array();
                        json_object_object_add(o, "domain", jstr(j->domain));
                        json_object_object_add(o, "uuid", jstr(j->uuid));
                        json_object_object_add(o, "created", json_object_new_int64(j->created));
                        json_object_object_add(o, "age_s", json_object_new_int64(now - j->created));
                        json_object_object_add(o, "torn", json_object_new_boolean(j->torn));
                        json_object_object_add(o, "domain_state", jstr(domain_state(u, j->domain)));
                        for (size_t k = 0; k < j->n; k++) {
                                json_object *x1 = gpuh_jentry_json(&j->e[k]);
                                if (x1)
                                        json_object_array_add(e, x1);
                        }
                        json_object_object_add(o, "entries", e);
                        json_object_array_add(arr, o);
                        continue;
                }
                for (size_t k = 0; k < j->n && len < sizeof(changes); k++)
                        len += (size_t) snprintf(changes + len, sizeof(changes) - len, "%s%s %s", k ? ", " : "",
                                                 gpuh_jop_to_string(j->e[k].op), gpuh_jentry_key(&j->e[k], key, sizeof(key)));
                const char *ds = domain_state(u, j->domain);
                const char *cells[] = { j->domain, age, created, ds ? ds : "?", n, changes };
                if (gpuh_table_add(t, cells) < 0) {
                        state_view_clear(&v);
                        return log_oom();
                }
        }
        for (size_t i = 0; i < v.warnings.n; i++)
                fprintf(stderr, PROG ": warning: %s\n", v.warnings.v[i]);
        state_view_clear(&v);
        if (arr)
                return print_json(arr);
        if (gpuh_table_rows(t) == 0)
                return printf("(no journals)\n") < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        r = gpuh_table_print(t, stdout);
        return r < 0 ? fail("cannot write the output: %s", strerror(-r)) : EXIT_SUCCESS;
}

/* ---- release, reconcile, plan ------------------------------------------------------------------- */

/* A state-change call's result: {"domain", "operation", "ok", "error"} or one line. */
static int report(const struct ctx *x, const char *domain, const char *op, int r, const char *err, json_object *plan)
{
        const char *msg = r < 0 ? (err ? err : strerror(-r)) : NULL;

        if (r == -ENOMEM)
                return log_oom();
        if (x->a.json) {
                json_object *o = json_object_new_object();
                if (!o)
                        return log_oom();
                json_object_object_add(o, "domain", jstr(domain));
                json_object_object_add(o, "operation", jstr(op));
                json_object_object_add(o, "ok", json_object_new_boolean(r == 0));
                json_object_object_add(o, "error", jstr(msg));
                if (plan)
                        json_object_object_add(o, "plan", json_object_get(plan));
                if (print_json(o) != EXIT_SUCCESS)
                        return EXIT_FAILURE;
        } else if (r == 0 && plan) {
                const char *s = json_object_to_json_string_ext(plan, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
                printf("%s\n", s ? s : "");
        } else if (r == 0)
                printf("%s: %s done\n", domain ? domain : "host", op);
        if (r < 0) {
                fprintf(stderr, PROG ": %s\n", msg);
                return EXIT_FAILURE;
        }
        return fflush(stdout) == EOF ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int verb_release(struct ctx *x, const char *vm)
{
        _cleanup_free_ char *err = NULL;
        int r;

        x->sc.refuse_held = true;
        r = gpuh_sc_release(&x->sc, vm, NULL, &err);
        return report(x, vm, "release", r, err, NULL);
}

/* The domains with a journal or a reservation. */
static int state_names(struct ctx *x, char ***ret)
{
        struct state_view v = { 0 };
        int r = state_view_load(x, &v);

        for (size_t i = 0; i < v.n_journals && r == 0; i++) {
                char *d = strdup(v.journals[i]->domain);
                if (!d || strv_consume(ret, d) < 0)
                        r = log_oom();
        }
        for (size_t i = 0; i < v.n_res && r == 0; i++) {
                bool dup = false;
                for (char **p = *ret; p && *p && !dup; p++)
                        dup = streq(*p, v.res[i].domain);
                char *d = dup ? NULL : strdup(v.res[i].domain);
                if (!dup && (!d || strv_consume(ret, d) < 0))
                        r = log_oom();
        }
        state_view_clear(&v);
        return r;
}

static int verb_reconcile(struct ctx *x)
{
        _cleanup_strv_free_ char **before = NULL, **after = NULL;
        _cleanup_free_ char *err = NULL;
        json_object *released;
        int r;

        x->sc.min_age_s = x->a.min_age;
        if ((r = state_names(x, &before)) != 0)
                return r;
        r = gpuh_sc_reconcile(&x->sc, NULL, &err);
        if (state_names(x, &after) != 0)
                return EXIT_FAILURE;
        released = json_object_new_array();
        if (!released)
                return log_oom();
        for (char **p = before; p && *p; p++) {
                bool left = false;
                for (char **q = after; q && *q && !left; q++)
                        left = streq(*p, *q);
                if (!left)
                        json_object_array_add(released, json_object_new_string(*p));
        }
        if (x->a.json) {
                json_object *o = json_object_new_object(), *kept = json_object_new_array();
                if (!o || !kept) {
                        json_object_put(o);
                        json_object_put(kept);
                        json_object_put(released);
                        return log_oom();
                }
                for (char **q = after; q && *q; q++)
                        json_object_array_add(kept, json_object_new_string(*q));
                json_object_object_add(o, "operation", json_object_new_string("reconcile"));
                json_object_object_add(o, "ok", json_object_new_boolean(r == 0));
                json_object_object_add(o, "error", jstr(r < 0 ? (err ? err : strerror(-r)) : NULL));
                json_object_object_add(o, "released", released);
                json_object_object_add(o, "kept", kept);
                if (print_json(o) != EXIT_SUCCESS)
                        return EXIT_FAILURE;
        } else {
                for (size_t i = 0; i < json_object_array_length(released); i++)
                        printf("released %s\n", json_object_get_string(json_object_array_get_idx(released, i)));
                for (char **q = after; q && *q; q++)
                        printf("kept %s\n", *q);
                json_object_put(released);
        }
        if (r < 0)
                return fail("%s", err ? err : strerror(-r));
        return EXIT_SUCCESS;
}

static int verb_plan(struct ctx *x, const char *path)
{
        _cleanup_free_ char *xml = NULL, *err = NULL;
        json_object *plan = NULL;
        size_t len = 0;
        int r, k;

        r = gpuh_read_file_at(AT_FDCWD, path, GPUH_DOMXML_MAX_BYTES, &xml, &len);
        if (r < 0)
                return fail("cannot read '%s': %s", path, strerror(-r));
        x->sc.dry_run = true;
        r = gpuh_sc_prepare(&x->sc, xml, len, &plan, &err);
        /* the domain the plan is for, as the XML names it */
        k = report(x, json_object_get_string(json_object_object_get(plan, "domain")), "plan", r, err, plan);
        json_object_put(plan);
        return k;
}

/* ---- check ----------------------------------------------------------------------------------- */

static int verb_check(struct ctx *x)
{
        _cleanup_(gpuh_host_freep) struct gpuh_host *host = NULL;
        struct gpuh_findings f;
        bool ready;
        int r;

        r = scan_host(x, &host);
        if (r != 0)
                return r;
        r = gpuh_check_host(&(struct gpuh_check_opts) { .sysfs_fd = host->sysfs->root_fd, .root = x->a.root,
                                                        .cfg = x->cfg, .config_error = x->cfg_err },
                            host->inv, &f);
        if (r < 0)
                return log_oom();
        ready = gpuh_check_ready(&f);
        if (x->a.json)
                r = print_json(gpuh_findings_to_json(&f));
        else {
                _cleanup_(gpuh_table_freep) struct gpuh_table *t = NULL;
                static const char *const h[] = { "STATUS", "CHECK", "DEVICE", "MESSAGE" };

                r = gpuh_table_new(ARRAY_SIZE(h), h, &t);
                for (size_t i = 0; i < f.n && r == 0; i++) {
                        const char *cells[] = { gpuh_check_status_to_string(f.v[i].status), f.v[i].check,
                                                f.v[i].device ? f.v[i].device : "-", f.v[i].message };
                        r = gpuh_table_add(t, cells);
                }
                if (r == 0)
                        r = gpuh_table_print(t, stdout);
                if (r == 0)
                        printf(ready ? "ready: this host can run GPU domains with gpuhooks\n"
                                     : "not ready: a check failed\n");
                r = r < 0 ? fail("cannot write the output: %s", strerror(-r)) : EXIT_SUCCESS;
        }
        gpuh_findings_clear(&f);
        return r != EXIT_SUCCESS ? r : ready ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* ---- main -------------------------------------------------------------------------------------- */

static const struct verb {
        const char *name;
        int n_args;
        const char *usage;
} verbs[] = {
        { "status", 0, "status" },
        { "reservations", 0, "reservations" },
        { "journals", 0, "journals" },
        { "release", 1, "release VMNAME" },
        { "reconcile", 0, "reconcile" },
        { "plan", 1, "plan DOMAIN.xml" },
        { "check", 0, "check" },
};

int main(int argc, char **argv)
{
        struct ctx x = { .a = { .min_age = -1 } };
        _cleanup_free_ char **xml_dirs = NULL;
        _cleanup_(gpuh_config_freep) struct gpuh_config *cfg = NULL;
        _cleanup_free_ char *cfg_err = NULL;
        _cleanup_strv_free_ char **env_dirs = NULL;
        const struct verb *verb = NULL;
        const char *cfg_path;
        char *const *dirs;
        int r, first;

        /* options and the verb in any order (getopt permutes), as getopt users expect */
        r = gpuh_cli_parse(&tool, argc, argv, false, &x.c, own_option, &x.a, &first);
        xml_dirs = x.c.xml_dirs;
        if (r >= 0)
                return r;
        if (first >= argc)
                return gpuh_cli_usage_error(PROG, "a verb is needed: status, reservations, journals, release, "
                                                  "reconcile, plan or check");
        for (size_t i = 0; i < ARRAY_SIZE(verbs) && !verb; i++)
                if (streq(argv[first], verbs[i].name))
                        verb = &verbs[i];
        if (!verb)
                return gpuh_cli_usage_error(PROG, "unknown verb '%s'", argv[first]);
        if (argc - first - 1 != verb->n_args)
                return gpuh_cli_usage_error(PROG, "usage: " PROG " [OPTION]... %s", verb->usage);
        if ((x.a.has_gpu || x.a.free_only) && !streq(verb->name, "status"))
                return gpuh_cli_usage_error(PROG, "--gpu and --free go with status");
        if (x.a.min_age >= 0 && !streq(verb->name, "reconcile"))
                return gpuh_cli_usage_error(PROG, "--min-age goes with reconcile");
        if (x.a.root && !streq(verb->name, "check"))
                return gpuh_cli_usage_error(PROG, "--root goes with check");
        gpuh_log_setup(PROG, x.c.verbose ? GPUH_LOG_STDERR : GPUH_LOG_SYSLOG, x.c.verbose ? LOG_DEBUG : LOG_INFO);

        cfg_path = gpuh_cli_config_path(&x.c);
        r = gpuh_config_load_or_default(cfg_path, cfg_path != NULL, &cfg, &cfg_err);
        if (r < 0)
                return log_oom();
        if (cfg_err && !x.a.json)
                fprintf(stderr, PROG ": warning: %s (the defaults are used)\n", cfg_err);
        x.cfg = cfg;
        x.cfg_err = cfg_err;
        dirs = gpuh_vm_usage_dirs(x.c.xml_dirs, x.c.xml_dirs_env, NULL, &env_dirs);
        if (x.c.xml_dirs_env && !env_dirs)
                return log_oom();
        x.sc = (struct gpuh_sc_opts) {
                .cfg = cfg,
                .sysfs_root = or_default(x.c.sysfs_root, "/sys"),
                .state_dir = or_default(x.c.state_dir, GPUH_STATE_DIR_DEFAULT),
                .dev_dir = or_default(x.a.dev_dir ? x.a.dev_dir : x.c.dev_dir, "/dev"),
                .proc_root = or_default(x.a.proc_root ? x.a.proc_root : x.c.proc_root, "/proc"),
                .connect = x.c.connect, .no_libvirt = x.c.no_libvirt, .xml_dirs = dirs, .min_age_s = -1,
                .config_error = cfg_err,
        };

        if (streq(verb->name, "status"))
                return verb_status(&x);
        if (streq(verb->name, "reservations"))
                return verb_reservations(&x);
        if (streq(verb->name, "journals"))
                return verb_journals(&x);
        if (streq(verb->name, "release"))
                return verb_release(&x, argv[first + 1]);
        if (streq(verb->name, "reconcile"))
                return verb_reconcile(&x);
        if (streq(verb->name, "plan"))
                return verb_plan(&x, argv[first + 1]);
        return verb_check(&x);
}
