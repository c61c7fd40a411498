/* SPDX-License-Identifier: Apache-2.0 */
/* test_transform: requests, rules, the domain document, cpuset -> NUMA node. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "agent_addr.h"
#include "cpuset.h"
#include "domxml.h"
#include "request.h"
#include "sysfs.h"
#include "transform.h"
#include "testutil.h"

static void test_request_set(void **state)
{
        struct gpuh_request r;
        const char *why;

        gpuh_request_init(&r);
        assert_int_equal(gpuh_request_set(&r, "count", "3", &why), 0);
        assert_int_equal(r.count, 3);
        assert_int_equal(gpuh_request_set(&r, "mode", "vendor-vgpu", &why), 0);
        assert_int_equal(r.mode, GPUH_REQ_VENDOR_VGPU);
        assert_string_equal(gpuh_request_check(&r), "mode mdev and vendor-vgpu need a profile");
        assert_int_equal(gpuh_request_set(&r, "profile", "NVIDIA L40S-8Q", &why), 0);
        assert_null(gpuh_request_check(&r));
        assert_int_equal(gpuh_request_set(&r, "vendor", "10de", &why), 0);
        assert_int_equal(r.vendor, 0x10de);
        assert_int_equal(gpuh_request_set(&r, "display", "on", &why), 0);
        assert_true(r.display);
        assert_int_equal(gpuh_request_set(&r, "numa", "require", &why), 0);
        assert_int_equal(r.numa, GPUH_NUMA_REQUIRE);
        static const char *const bad[][2] = {
                { "count", "0" }, { "count", "17" }, { "count", "1x" }, { "count", "-1" }, { "mode", "gpu" },
                { "vendor", "10DE" }, { "vendor", "10de0" }, { "device", "zz00" }, { "numa", "maybe" },
                { "display", "yes" }, { "colour", "red" }, { "profile", "" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (gpuh_request_set(&r, bad[i][0], bad[i][1], &why) != -EINVAL)
                        fail_msg("accepted %s=%s", bad[i][0], bad[i][1]);
        free(r.model);
        free(r.profile);
        gpuh_request_init(&r);
        assert_int_equal(gpuh_request_set(&r, "profile", "x", &why), 0);
        assert_non_null(gpuh_request_check(&r));        /* passthrough takes no profile */
        free(r.profile);
}

static void test_rule_matches(void **state)
{
        char *tags[] = { "ssd", "gpu", NULL };
        char *keys[] = { "gpu", "env" }, *vals[] = { "a2", "prod" };
        struct gpuh_cs_instance cs = { .present = true, .service_offering = "GPU-A2-4Q", .account = "admin",
                                       .host_tags = tags, .tag_keys = keys, .tag_values = vals, .n_tags = 2 };
        struct gpuh_cs_instance none = { 0 };
        char *mk[] = { "gpu" }, *mg[] = { "a*" }, *mg2[] = { "b*" };

        assert_true(gpuh_rule_matches(&(struct gpuh_rule_match) { .name = "i-2-*-VM" }, "i-2-154-VM", &none));
        assert_false(gpuh_rule_matches(&(struct gpuh_rule_match) { .name = "r-*" }, "i-2-154-VM", &none));
        assert_true(gpuh_rule_matches(&(struct gpuh_rule_match) { .service_offering = "GPU-A2-*" }, "x", &cs));
        /* a field the domain lacks (no 4.23 block) never matches */
        assert_false(gpuh_rule_matches(&(struct gpuh_rule_match) { .service_offering = "*" }, "x", &none));
        assert_true(gpuh_rule_matches(&(struct gpuh_rule_match) { .host_tag = "gp?" }, "x", &cs));
        assert_false(gpuh_rule_matches(&(struct gpuh_rule_match) { .host_tag = "nvme" }, "x", &cs));
        assert_true(gpuh_rule_matches(&(struct gpuh_rule_match) { .tag_keys = mk, .tag_globs = mg, .n_tags = 1 }, "x", &cs));
        assert_false(gpuh_rule_matches(&(struct gpuh_rule_match) { .tag_keys = mk, .tag_globs = mg2, .n_tags = 1 }, "x", &cs));
        assert_false(gpuh_rule_matches(&(struct gpuh_rule_match) { .name = "x", .account = "bob" }, "x", &cs));
}

#define DOM_HEAD "<domain type='kvm'><name>i-2-7-VM</name><uuid>071628d0-84f1-421e-a9cf-d18bca2283bc</uuid>"

/* The domain's <uuid>: dashed in either case, or libvirt's 32 digits; kept lowercase and dashed
 * (the v5 mdev UUIDs are derived from it). */
static void test_domain_uuid(void **state)
{
        static const char *const good[] = {
                "071628d0-84f1-421e-a9cf-d18bca2283bc", "071628D0-84F1-421E-A9CF-D18BCA2283BC",
                "071628d084f1421ea9cfd18bca2283bc", "071628D084F1421EA9CFD18BCA2283BC",
        };
        static const char *const bad[] = {
                "071628d0-84f1421e-a9cf-d18bca2283bc", "071628d0-84f1-421e-a9cf-d18bca2283b",
                "071628d084f1421ea9cfd18bca2283b", "071628d084f1421ea9cfd18bca2283bcd", "071628d084f1421ea9cfd18bca2283bg",
                "071628d0-84f1-421e-a9cf-d18bca2283bc-", "-071628d084f1421ea9cfd18bca2283bc", "",
        };
        char xml[256];

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                struct gpuh_domxml *d = NULL;
                char *err = NULL;

                snprintf(xml, sizeof(xml), "<domain><name>a</name><uuid>%s</uuid></domain>", good[i]);
                if (gpuh_domxml_parse(xml, strlen(xml), &d, &err) < 0)
                        fail_msg("'%s': %s", good[i], err);
                assert_string_equal(d->uuid, "071628d0-84f1-421e-a9cf-d18bca2283bc");
                gpuh_domxml_free(d);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct gpuh_domxml *d = NULL;
                char *err = NULL;

                snprintf(xml, sizeof(xml), "<domain><name>a</name><uuid>%s</uuid></domain>", bad[i]);
                if (gpuh_domxml_parse(xml, strlen(xml), &d, &err) != -EBADMSG)
                        fail_msg("'%s' accepted", bad[i]);
                assert_non_null(strstr(err, "<uuid>"));
                free(err);
        }
}

static void test_parse_rejects(void **state)
{
        static const char *const bad[] = {
                "",
                "<domain>",
                "<network><name>x</name></network>",
                "<?xml version='1.0'?><!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><domain><name>&x;</name><devices/></domain>",
                "<!DOCTYPE domain SYSTEM 'http://example.invalid/x.dtd'><domain><name>a</name></domain>",
                "<domain><name>../x</name></domain>",
                "<domain><name>a/b</name></domain>",
                "<domain><name>..</name></domain>",
                "<domain><name>a&#10;b</name></domain>",     /* libvirt refuses a newline in a name */
                "<domain><name></name></domain>",
                "<domain><name>a</name><uuid>not-a-uuid</uuid></domain>",
                "<domain><name>a</name></domain><domain/>",
                DOM_HEAD "<metadata><g:gpu xmlns:g='urn:gpuhooks:domain:1'><g:request mode='mdev'/></g:gpu></metadata></domain>",
                DOM_HEAD "<metadata><g:gpu xmlns:g='urn:gpuhooks:domain:1'><g:wish/></g:gpu></metadata></domain>",
                DOM_HEAD "<metadata><g:gpu xmlns:g='urn:gpuhooks:domain:1'><g:request count='99'/></g:gpu></metadata></domain>",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct gpuh_domxml *d = NULL;
                char *err = NULL;
                int r = gpuh_domxml_parse(bad[i], strlen(bad[i]), &d, &err);
                if (r != -EBADMSG)
                        fail_msg("case %zu gave %d", i, r);
                assert_null(d);
                assert_non_null(err);
                assert_null(strchr(err, '\n'));
                free(err);
        }
        {
                /* invalid UTF-8 */
                const char bytes[] = "<domain><name>a\xff\xfe</name></domain>";
                struct gpuh_domxml *d = NULL;
                char *err = NULL;
                assert_int_equal(gpuh_domxml_parse(bytes, sizeof(bytes) - 1, &d, &err), -EBADMSG);
                free(err);
        }
}

/* The name as libvirt reads it (domname.h; checked against libvirt 9.0's test driver, which
 * defines each of these): untrimmed, tab and CR kept, a leading dot. */
static void test_parse_name(void **state)
{
        static const struct { const char *xml, *name; } ok[] = {
                { "<domain><name>  x  </name><devices/></domain>", "  x  " },
                { "<domain><name>a\tb</name><devices/></domain>", "a\tb" },
                { "<domain><name>a&#13;b</name><devices/></domain>", "a\rb" },
                { "<domain><name>...</name><devices/></domain>", "..." },
                { "<domain><name>.evil</name><devices/></domain>", ".evil" },
        };
        char long_name[300], xml[400];

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                struct gpuh_domxml *d = NULL;
                char *err = NULL;
                if (gpuh_domxml_parse(ok[i].xml, strlen(ok[i].xml), &d, &err) != 0)
                        fail_msg("case %zu refused: %s", i, err);
                assert_string_equal(d->name, ok[i].name);
                gpuh_domxml_free(d);
        }
        /* 251 bytes: the longest the QEMU driver can keep as NAME.xml; 252 is too long */
        for (size_t len = 251; len <= 252; len++) {
                struct gpuh_domxml *d = NULL;
                char *err = NULL;
                memset(long_name, 'n', len);
                long_name[len] = '\0';
                snprintf(xml, sizeof(xml), "<domain><name>%s</name><devices/></domain>", long_name);
                assert_int_equal(gpuh_domxml_parse(xml, strlen(xml), &d, &err), len == 251 ? 0 : -EBADMSG);
                if (d)
                        assert_int_equal(strlen(d->name), 251);
                gpuh_domxml_free(d);
                free(err);
        }
}

static void test_parse_and_apply(void **state)
{
        const char *xml = DOM_HEAD "<vcpu cpuset='0-3'>2</vcpu>"
                "<devices><memballoon model='virtio'/></devices><!-- agent comment -->"
                "<metadata><cloudstack:instance xmlns:cloudstack='http://cloudstack.apache.org/instance'>"
                "<cloudstack:zone uuid='z'>zone-a</cloudstack:zone>"
                "<cloudstack:service_offering><cloudstack:name>GPU-A2-4Q</cloudstack:name>"
                "<cloudstack:host_tags><cloudstack:tag>gpu</cloudstack:tag></cloudstack:host_tags></cloudstack:service_offering>"
                "<cloudstack:owner><cloudstack:account uuid='a'>admin</cloudstack:account></cloudstack:owner>"
                "<cloudstack:resource_tags><cloudstack:resource_tag key='gpu'>a2</cloudstack:resource_tag></cloudstack:resource_tags>"
                "</cloudstack:instance></metadata>"
                "<devices><hostdev mode='subsystem' type='pci' managed='yes' display='off'><driver name='vfio'/>"
                "<source><address domain='0x0000' bus='0x05' slot='0x00' function='0x0'/></source></hostdev>"
                "<hostdev mode='subsystem' type='mdev'><source><address uuid='F715F63C-0D00-4007-9C5A-B07B0C6C05DE'/></source></hostdev>"
                "</devices></domain>";
        struct gpuh_domxml *d = NULL;
        char *err = NULL, *out = NULL;
        size_t len;
        struct gpuh_alloc allocs[3] = {
                { .kind = GPUH_ALLOC_PCI, .request = GPUH_ALLOC_REQUEST_CLOUDSTACK, .n_companions = 1 },
                { .kind = GPUH_ALLOC_MDEV, .request = GPUH_ALLOC_REQUEST_CLOUDSTACK,
                  .uuid = "f715f63c-0d00-4007-9c5a-b07b0c6c05de", .mdev_type = "nvidia-754" },
                { .kind = GPUH_ALLOC_MDEV, .request = 0, .uuid = "11111111-2222-3333-4444-555555555555",
                  .mdev_type = "nvidia-746", .mdev_new = true, .display = true },
        };

        assert_int_equal(gpuh_domxml_parse(xml, strlen(xml), &d, &err), 0);
        assert_string_equal(d->name, "i-2-7-VM");
        assert_string_equal(d->uuid, "071628d0-84f1-421e-a9cf-d18bca2283bc");
        assert_string_equal(d->cpuset, "0-3");
        assert_true(d->cs.present);
        assert_string_equal(d->cs.service_offering, "GPU-A2-4Q");
        assert_string_equal(d->cs.account, "admin");
        assert_string_equal(d->cs.zone, "zone-a");
        assert_string_equal(d->cs.host_tags[0], "gpu");
        assert_string_equal(d->cs.tag_values[0], "a2");
        assert_int_equal(d->n_hostdevs, 2);
        assert_false(d->hostdevs[0].is_mdev);
        assert_int_equal(d->hostdevs[0].addr.bus, 5);
        assert_string_equal(d->hostdevs[1].uuid, "f715f63c-0d00-4007-9c5a-b07b0c6c05de");

        gpuh_pci_addr_parse("0000:05:00.0", &allocs[0].addr);
        gpuh_pci_addr_parse("0000:05:00.1", &allocs[0].companions[0]);
        gpuh_pci_addr_parse("0000:08:00.5", &allocs[2].parent);
        gpuh_pci_addr_parse("0000:08:00.4", &allocs[1].parent);
        assert_int_equal(gpuh_domxml_apply(d, allocs, 3, false), 0);
        assert_int_equal(gpuh_domxml_serialize(d, &out, &len), 0);
        assert_int_equal(strlen(out), len);
        /* no declaration added; the comment and both <devices> kept */
        assert_true(strncmp(out, "<domain", 7) == 0);
        assert_non_null(strstr(out, "<!-- agent comment -->"));
        assert_non_null(strstr(out, "<memballoon model=\"virtio\"/></devices>"));
        /* CloudStack's PCI hostdev: managed rewritten to no */
        assert_non_null(strstr(out, "type=\"pci\" managed=\"no\" display=\"off\""));
        assert_null(strstr(out, "managed=\"yes\""));
        /* its mdev hostdev completed with model */
        assert_non_null(strstr(out, "type=\"mdev\" model=\"vfio-pci\"><source><address uuid=\"F715F63C"));
        /* the companion as its own hostdev, without display */
        assert_non_null(strstr(out, "<hostdev mode=\"subsystem\" type=\"pci\" managed=\"no\"><driver name=\"vfio\"/>"
                                    "<source><address domain=\"0x0000\" bus=\"0x05\" slot=\"0x00\" function=\"0x1\"/>"));
        /* the new mdev with display and ramfb */
        assert_non_null(strstr(out, "model=\"vfio-pci\" display=\"on\" ramfb=\"on\"><source><address uuid=\"11111111-2222-3333-4444-555555555555\"/>"));
        /* the record, in our namespace, in the first <metadata> beside CloudStack's block */
        assert_non_null(strstr(out, "<gpuhooks:gpu xmlns:gpuhooks=\"urn:gpuhooks:domain:1\"><gpuhooks:allocation version=\"1\">"));
        assert_non_null(strstr(out, "kind=\"mdev\" uuid=\"11111111-2222-3333-4444-555555555555\" parent=\"0000:08:00.5\" mdev-type=\"nvidia-746\" new=\"yes\" display=\"on\" request=\"0\""));
        assert_non_null(strstr(out, "<gpuhooks:companion address=\"0000:05:00.1\"/>"));
        assert_true(strstr(out, "</cloudstack:instance>") < strstr(out, "<gpuhooks:gpu"));
        gpuh_domxml_free(d);

        /* the output parses back with its record */
        d = NULL;
        assert_int_equal(gpuh_domxml_parse(out, len, &d, &err), 0);
        assert_true(d->has_record);
        assert_int_equal(d->n_record, 3);
        assert_int_equal(d->record[0].n_companions, 1);
        assert_int_equal(d->record[2].request, 0);
        assert_true(d->record[2].mdev_new);
        assert_int_equal(d->record[0].request, GPUH_ALLOC_REQUEST_CLOUDSTACK);
        gpuh_domxml_free(d);
        free(out);
}

/* CloudStack agents before 4.22.1 write 000b:01:00.0 as bus 0x000b, slot 0x01, function 0x0
 * (LibvirtGpuDef before apache/cloudstack PR #12981): recognised by its shape, resolved only
 * when one device fits and the address as written names none (common/agent_addr.h). */
static void test_agent_split(void **state)
{
        const char *xml = DOM_HEAD "<devices>"
                "<hostdev mode='subsystem' type='pci' managed='yes' display='off'><driver name='vfio'/>"
                "<source><address domain='0x0000' bus='0x000b' slot='0x01' function='0x0'/></source></hostdev>"
                "<hostdev mode='subsystem' type='pci' managed='yes' display='off'><driver name='vfio'/>"
                "<source><address domain='0x0000' bus='0x0b' slot='0x01' function='0x0'/></source></hostdev>"
                "</devices></domain>";
        static const char *const shapes[][5] = {
                /* domain, bus, slot, function, split? */
                { "0x0000", "0x000b", "0x01", "0x0", "yes" },
                { NULL, "0x0002", "0x1f", "0x0", "yes" },
                { "0x0000", "0x0000", "0x05", "0x0", "yes" },           /* 0000:05:00.0 in three parts */
                { "0x0000", "0x0b", "0x01", "0x0", "no" },              /* a bus is two digits */
                { "0x0000", "0x000b", "0x1", "0x0", "no" },             /* the agent's slot is a bus: two */
                { "0x0000", "0x000b", "0x01", "0x1", "no" },            /* it always keeps function 0x0 */
                { "0x0001", "0x000b", "0x01", "0x0", "no" },            /* and domain 0x0000 */
                { "0x0000", "11", "0x01", "0x0", "no" },
                { "0x0000", "0x000g", "0x01", "0x0", "no" },
        };
        struct gpuh_agent_split sp;
        struct gpuh_pci_addr lit, real, c[3];
        struct gpuh_domxml *d = NULL;
        char *err = NULL, *out = NULL, why[384];
        size_t len;

        for (size_t i = 0; i < ARRAY_SIZE(shapes); i++)
                if (gpuh_agent_split_detect(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], &sp) !=
                    streq(shapes[i][4], "yes"))
                        fail_msg("shape %zu (bus %s slot %s) misjudged", i, shapes[i][1], shapes[i][2]);
        assert_true(gpuh_agent_split_detect("0x0000", "0x10000", "0x00", "0x0", &sp));
        assert_int_equal(sp.domain, 0x10000);
        assert_int_equal(sp.bus, 0);

        assert_int_equal(gpuh_domxml_parse(xml, strlen(xml), &d, &err), 0);
        assert_int_equal(d->n_hostdevs, 2);
        assert_true(d->hostdevs[0].agent_split);
        assert_int_equal(d->hostdevs[0].split.domain, 0xb);
        assert_int_equal(d->hostdevs[0].split.bus, 1);
        assert_int_equal(d->hostdevs[0].addr.bus, 0xb);         /* as written: 0000:0b:01.0 */
        assert_false(d->hostdevs[1].agent_split);

        gpuh_pci_addr_parse("0000:0b:01.0", &lit);
        gpuh_pci_addr_parse("000b:01:00.0", &c[0]);
        gpuh_pci_addr_parse("000b:01:00.4", &c[1]);
        /* nothing CloudStack allocates on 000b:01: the address stands */
        assert_int_equal(gpuh_agent_split_resolve(&d->hostdevs[0].split, &lit, false, c, 0, &real, why, sizeof(why)), 0);
        /* one GPU there, nothing at 0000:0b:01.0: the agent meant it */
        assert_int_equal(gpuh_agent_split_resolve(&d->hostdevs[0].split, &lit, false, c, 1, &real, why, sizeof(why)), 1);
        assert_int_equal(gpuh_pci_addr_cmp(&real, &c[0]), 0);
        /* a GPU and its VF: which one? */
        assert_int_equal(gpuh_agent_split_resolve(&d->hostdevs[0].split, &lit, false, c, 2, &real, why, sizeof(why)),
                         -ENOTUNIQ);
        assert_non_null(strstr(why, "000b:01:00.0, 000b:01:00.4"));
        /* 0000:0b:01.0 exists too */
        assert_int_equal(gpuh_agent_split_resolve(&d->hostdevs[0].split, &lit, true, c, 1, &real, why, sizeof(why)),
                         -ENOTUNIQ);
        assert_non_null(strstr(why, "0000:0b:01.0 exists"));

        /* rewritten in place, as libvirt formats an address */
        assert_int_equal(gpuh_domxml_set_hostdev_addr(d, 0, &c[0]), 0);
        assert_false(d->hostdevs[0].agent_split);
        assert_int_equal(gpuh_pci_addr_cmp(&d->hostdevs[0].addr, &c[0]), 0);
        assert_int_equal(gpuh_domxml_serialize(d, &out, &len), 0);
        assert_non_null(strstr(out, "<address domain=\"0x000b\" bus=\"0x01\" slot=\"0x00\" function=\"0x0\"/>"));
        assert_null(strstr(out, "0x000b\" slot"));
        assert_int_equal(gpuh_domxml_set_hostdev_addr(d, 2, &c[0]), -EINVAL);
        free(out);
        gpuh_domxml_free(d);
}

static void test_metadata_created(void **state)
{
        const char *xml = "<?xml version='1.0'?>\n<domain>\n  <name>n</name>\n  <uuid>071628d0-84f1-421e-a9cf-d18bca2283bc</uuid>\n"
                          "  <devices>\n    <disk/>\n  </devices>\n</domain>\n";
        struct gpuh_alloc a = { .kind = GPUH_ALLOC_PCI, .request = 0 };
        struct gpuh_domxml *d = NULL;
        char *err = NULL, *out = NULL;
        size_t len;

        gpuh_pci_addr_parse("0001:d6:00.0", &a.addr);
        assert_int_equal(gpuh_domxml_parse(xml, strlen(xml), &d, &err), 0);
        assert_int_equal(gpuh_domxml_apply(d, &a, 1, true), 0);
        assert_int_equal(gpuh_domxml_serialize(d, &out, &len), 0);
        assert_true(strncmp(out, "<?xml", 5) == 0);
        /* <metadata> right after <uuid>, indented like its siblings */
        assert_non_null(strstr(out, "</uuid>\n  <metadata>"));
        /* the real PCI domain, managed='yes' when libvirt binds */
        assert_non_null(strstr(out, "    <disk/>\n    <hostdev mode=\"subsystem\" type=\"pci\" managed=\"yes\"><driver name=\"vfio\"/>"
                                    "<source><address domain=\"0x0001\" bus=\"0xd6\" slot=\"0x00\" function=\"0x0\"/>"));
        gpuh_domxml_free(d);
        free(out);
}

static void test_cpuset_node(void **state)
{
        struct gpuh_sysfs *s = NULL;
        int node;

        tu_write(tu_dir, "devices/system/node/node0/cpulist", "0-5,12-17\n");
        tu_write(tu_dir, "devices/system/node/node1/cpulist", "6-11,18-23\n");
        assert_int_equal(gpuh_sysfs_open(tu_dir, &s), 0);
        assert_int_equal(gpuh_cpuset_node(s->root_fd, "6-8,20", &node), 0);
        assert_int_equal(node, 1);
        assert_int_equal(gpuh_cpuset_node(s->root_fd, "0-3,^2,13", &node), 0);
        assert_int_equal(node, 0);
        assert_int_equal(gpuh_cpuset_node(s->root_fd, "5-6", &node), 0);
        assert_int_equal(node, -1);     /* spans two nodes */
        assert_int_equal(gpuh_cpuset_node(s->root_fd, NULL, &node), 0);
        assert_int_equal(node, -1);
        assert_int_equal(gpuh_cpuset_node(s->root_fd, "3-1", &node), -EINVAL);
        assert_int_equal(gpuh_cpuset_node(s->root_fd, "a", &node), -EINVAL);
        gpuh_sysfs_free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_set),
                cmocka_unit_test(test_rule_matches),
                cmocka_unit_test(test_domain_uuid),
                cmocka_unit_test(test_parse_rejects),
                cmocka_unit_test(test_parse_name),
                cmocka_unit_test(test_parse_and_apply),
                cmocka_unit_test(test_agent_split),
                cmocka_unit_test(test_metadata_created),
                cmocka_unit_test(test_cpuset_node),
        };
        return cmocka_run_group_tests_name("transform", tests, tu_group_setup, tu_group_teardown);
}
