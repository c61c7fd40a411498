/* SPDX-License-Identifier: Apache-2.0 */
/* test_vm_usage: domain XML parsing, merging, XML directories, libvirt (test driver), deadlines. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "vm_usage.h"
#include "testutil.h"


static int add(struct gpuh_vm_usage *u, const char *xml, int state)
{
        return gpuh_vm_usage_add_xml(u, xml, strlen(xml), state);
}

static void addr(const char *s, struct gpuh_pci_addr *a)
{
        assert_int_equal(gpuh_pci_addr_parse(s, a), 0);
}

#define VM_PCI "<domain type='kvm'><name>i-2-10-VM</name><devices>" \
        "<hostdev mode='subsystem' type='pci' managed='yes'><driver name='vfio'/>" \
        "<source><address domain='0x0000' bus='0x08' slot='0x00' function='0x4'/></source></hostdev>" \
        "<hostdev mode='subsystem' type='mdev' model='vfio-pci' display='off'>" \
        "<source><address uuid='F715F63C-0D00-4007-9C5A-B07B0C6C05DE'/></source></hostdev>" \
        "<interface type='hostdev' managed='yes'><source><address type='pci' domain='0x0002' bus='0x01' slot='0x00' function='0x1'/></source></interface>" \
        "<hostdev mode='capabilities' type='storage'><source><block>/dev/sdb</block></source></hostdev>" \
        "</devices></domain>"

static void test_domain(void **state)
{
        struct gpuh_vm_usage *u = NULL;
        const struct gpuh_vm *vms[8];
        struct gpuh_pci_addr a;

        assert_int_equal(gpuh_vm_usage_new(&u), 0);
        assert_int_equal(add(u, VM_PCI, -1), 0);
        assert_int_equal(gpuh_vm_usage_n_vms(u), 1);
        addr("0000:08:00.4", &a);
        assert_int_equal(gpuh_vm_usage_pci(u, &a, vms, 8), 1);
        assert_string_equal(vms[0]->name, "i-2-10-VM");
        assert_int_equal(vms[0]->state, GPUH_VM_DEFINED);
        addr("0002:01:00.1", &a);
        assert_int_equal(gpuh_vm_usage_pci(u, &a, vms, 8), 1);
        addr("0000:08:00.0", &a);
        assert_int_equal(gpuh_vm_usage_pci(u, &a, vms, 8), 0);
        /* UUIDs match in any case */
        assert_int_equal(gpuh_vm_usage_mdev(u, "f715f63c-0d00-4007-9c5a-b07b0c6c05de", vms, 8), 1);
        assert_int_equal(gpuh_vm_usage_mdev(u, "f715f63c-0d00-4007-9c5a-b07b0c6c05df", vms, 8), 0);
        assert_int_equal(gpuh_vm_usage_mdev(u, "not-a-uuid", vms, 8), 0);
        gpuh_vm_usage_free(u);
}

static void test_agent_form_two_devices(void **state)
{
        /* CloudStack's agent XML (LibvirtVMDef.toString(), 4.19) holds two <devices> elements */
        const char *xml = "<domain type='kvm'><name>i-2-154-VM</name>"
                "<devices><memballoon model='virtio'/></devices><cpu></cpu>"
                "<devices><hostdev mode='subsystem' type='pci' managed='yes' display='off'><driver name='vfio'/>"
                "<source><address domain='0x0000' bus='0x3d' slot='0x00' function='0x0'/></source></hostdev></devices>"
                "</domain>";
        struct gpuh_vm_usage *u = NULL;
        const struct gpuh_vm *vms[8];
        struct gpuh_pci_addr a;

        assert_int_equal(gpuh_vm_usage_new(&u), 0);
        assert_int_equal(add(u, xml, GPUH_VM_RUNNING), 0);
        addr("3d:00.0", &a);
        assert_int_equal(gpuh_vm_usage_pci(u, &a, vms, 8), 1);
        assert_int_equal(vms[0]->state, GPUH_VM_RUNNING);
        gpuh_vm_usage_free(u);
}

static void test_status_merge_and_order(void **state)
{
        const char *status = "<domstatus state='running' reason='booted' pid='77'><taint flag='high-privileges'/>"
                "<domain type='kvm' id='3'><name>z-running</name><devices>"
                "<hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x08' slot='0x00' function='0x0'/></source></hostdev>"
                "</devices></domain></domstatus>";
        const char *config_z = "<domain type='kvm'><name>z-running</name><devices>"
                "<hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x08' slot='0x00' function='0x0'/></source></hostdev>"
                "</devices></domain>";
        const char *config_a = "<domain type='kvm'><name>a-stopped</name><devices>"
                "<hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x08' slot='0x00' function='0x0'/></source></hostdev>"
                "</devices></domain>";
        struct gpuh_vm_usage *u = NULL;
        const struct gpuh_vm *vms[8];
        struct gpuh_pci_addr a;

        assert_int_equal(gpuh_vm_usage_new(&u), 0);
        assert_int_equal(add(u, config_a, -1), 0);
        assert_int_equal(add(u, config_z, -1), 0);
        assert_int_equal(add(u, status, -1), 0);
        assert_int_equal(gpuh_vm_usage_n_vms(u), 2);
        addr("08:00.0", &a);
        /* the running domain first, each domain once though seen in two files */
        assert_int_equal(gpuh_vm_usage_pci(u, &a, vms, 8), 2);
        assert_string_equal(vms[0]->name, "z-running");
        assert_int_equal(vms[0]->state, GPUH_VM_RUNNING);
        assert_string_equal(vms[1]->name, "a-stopped");
        assert_string_equal(gpuh_vm_state_to_string(vms[1]->state), "defined");
        /* a buffer smaller than the answer still gets the best-ranked domain */
        vms[0] = NULL;
        assert_int_equal(gpuh_vm_usage_pci(u, &a, vms, 1), 2);
        assert_string_equal(vms[0]->name, "z-running");
        gpuh_vm_usage_free(u);
}

static void test_malformed(void **state)
{
        static const char *const bad[] = {
                "", "<domain>", "<domain><devices/></domain>", "<domain><name></name></domain>",
                "<network><name>x</name></network>", "<domstatus state='running'/>",
                "<x:domain xmlns:x='urn:x'><x:name>n</x:name></x:domain>",
        };
        struct gpuh_vm_usage *u = NULL;

        assert_int_equal(gpuh_vm_usage_new(&u), 0);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (add(u, bad[i], -1) != -EBADMSG)
                        fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(gpuh_vm_usage_n_vms(u), 0);
        gpuh_vm_usage_free(u);
}

static void test_no_external_entities(void **state)
{
        const char *xxe = "<?xml version='1.0'?><!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
                          "<domain><name>&x;</name></domain>";
        const char *lol = "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'>"
                "<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'><!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>"
                "<!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'><!ENTITY e '&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;'>"
                "<!ENTITY f '&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;'><!ENTITY g '&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;'>]>"
                "<domain><name>&g;</name></domain>";
        struct gpuh_vm_usage *u = NULL;

        assert_int_equal(gpuh_vm_usage_new(&u), 0);
        (void) add(u, xxe, -1);
        (void) add(u, lol, -1);
        /* whatever the outcome, no file content and no 10 MB expansion becomes a name */
        for (size_t i = 0; i < gpuh_vm_usage_n_vms(u); i++) {
                const char *name = gpuh_vm_usage_get(u, i)->name;
                assert_null(strstr(name, "root:"));
                assert_true(strlen(name) < 4096);
        }
        assert_null(gpuh_vm_usage_get(u, gpuh_vm_usage_n_vms(u)));
        gpuh_vm_usage_free(u);
}

static void test_dirs(void **state)
{
        char run[PATH_MAX], etc[PATH_MAX], missing[PATH_MAX];
        char *dirs[] = { run, etc, missing, NULL };
        struct gpuh_vm_usage *u = NULL;
        struct gpuh_warnings w = { 0 };
        const struct gpuh_vm *vms[8];
        struct gpuh_pci_addr a;

        snprintf(run, sizeof(run), "%s/run", tu_dir);
        snprintf(etc, sizeof(etc), "%s/etc", tu_dir);
        snprintf(missing, sizeof(missing), "%s/missing", tu_dir);
        tu_write(tu_dir, "run/i-2-10-VM.xml", "<domstatus state='paused'>" VM_PCI "</domstatus>");
        tu_write(tu_dir, "run/i-2-10-VM.pid", "77");
        tu_write(tu_dir, "etc/i-2-10-VM.xml", VM_PCI);
        tu_write(tu_dir, "etc/broken.xml", "<domain><name>x</name>");
        tu_mkdir(tu_dir, "etc/autostart.xml");     /* a directory named like a file */
        assert_int_equal(gpuh_vm_usage_new(&u), 0);
        assert_int_equal(gpuh_vm_usage_source(u), GPUH_VM_SOURCE_NONE);
        assert_int_equal(gpuh_vm_usage_load_dirs(u, dirs, &w), 2);
        assert_int_equal(gpuh_vm_usage_source(u), GPUH_VM_SOURCE_DOMAIN_XML);
        assert_int_equal(gpuh_vm_usage_n_vms(u), 1);
        addr("08:00.4", &a);
        assert_int_equal(gpuh_vm_usage_pci(u, &a, vms, 8), 1);
        assert_int_equal(vms[0]->state, GPUH_VM_PAUSED);
        assert_int_equal(w.n, 1);
        assert_non_null(strstr(w.v[0], "broken.xml"));
        gpuh_warnings_clear(&w);
        gpuh_vm_usage_free(u);
}

static void test_libvirt_test_driver(void **state)
{
        char uri[PATH_MAX + 16];
        struct gpuh_vm_usage *u = NULL;
        const struct gpuh_vm *vms[8];
        struct gpuh_pci_addr a;
        char *err = NULL;

        tu_write(tu_dir, "node.xml",
                "<node><cpu><mhz>3000</mhz><model>x86_64</model><active>4</active><nodes>1</nodes>"
                "<sockets>1</sockets><cores>2</cores><threads>2</threads></cpu><memory>8388608</memory>"
                "<domain type='kvm'><name>i-2-10-VM</name><uuid>11111111-1111-1111-1111-111111111111</uuid>"
                "<memory unit='GiB'>1</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices>"
                "<hostdev mode='subsystem' type='pci' managed='yes'><driver name='vfio'/>"
                "<source><address domain='0x0000' bus='0x08' slot='0x00' function='0x4'/></source></hostdev></devices></domain>"
                "<domain type='kvm' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>i-2-11-VM</name>"
                "<test:runstate>5</test:runstate><uuid>22222222-2222-2222-2222-222222222222</uuid>"
                "<memory unit='GiB'>1</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices>"
                "<hostdev mode='subsystem' type='pci' managed='yes'><driver name='vfio'/>"
                "<source><address domain='0x0000' bus='0x08' slot='0x00' function='0x4'/></source></hostdev></devices></domain>"
                "</node>");
        snprintf(uri, sizeof(uri), "test://%s/node.xml", tu_dir);
        assert_int_equal(gpuh_vm_usage_new(&u), 0);
        assert_int_equal(gpuh_vm_usage_load_libvirt(u, uri, 10000, &err), 2);
        assert_null(err);
        assert_int_equal(gpuh_vm_usage_source(u), GPUH_VM_SOURCE_LIBVIRT);
        addr("08:00.4", &a);
        assert_int_equal(gpuh_vm_usage_pci(u, &a, vms, 8), 2);
        assert_string_equal(vms[0]->name, "i-2-10-VM");
        assert_int_equal(vms[0]->state, GPUH_VM_RUNNING);
        assert_string_equal(vms[1]->name, "i-2-11-VM");
        assert_int_equal(vms[1]->state, GPUH_VM_SHUTOFF);
        gpuh_vm_usage_free(u);
}

static void test_libvirt_unreachable(void **state)
{
        struct gpuh_vm_usage *u = NULL;
        char *err = NULL;
        int r;

        assert_int_equal(gpuh_vm_usage_new(&u), 0);
        r = gpuh_vm_usage_load_libvirt(u, "qemu+unix:///system?socket=/nonexistent/gpuh.sock", 10000, &err);
        assert_int_equal(r, -ECONNREFUSED);
        assert_non_null(err);
        assert_int_equal(gpuh_vm_usage_source(u), GPUH_VM_SOURCE_NONE);
        free(err);
        gpuh_vm_usage_free(u);
}

static void test_libvirt_hung_daemon(void **state)
{
        /* A socket that accepts connections (backlog) but never answers: a hung libvirtd. */
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct gpuh_vm_usage *u = NULL;
        struct timespec t0, t1;
        char uri[PATH_MAX + 64], *err = NULL;
        int fd, r;
        double ms;

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/hung.sock", tu_dir);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 8), 0);
        snprintf(uri, sizeof(uri), "qemu+unix:///system?socket=%s", sa.sun_path);
        assert_int_equal(gpuh_vm_usage_new(&u), 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = gpuh_vm_usage_load_libvirt(u, uri, 300, &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms = (double) (t1.tv_sec - t0.tv_sec) * 1e3 + (double) (t1.tv_nsec - t0.tv_nsec) / 1e6;
        assert_int_equal(r, -ETIMEDOUT);
        assert_non_null(strstr(err, "300 ms"));
        /* the deadline holds (generous bound: this is not a timing test) */
        assert_true(ms < 5000);
        free(err);
        close(fd);
        gpuh_vm_usage_free(u);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_domain),
                cmocka_unit_test(test_agent_form_two_devices),
                cmocka_unit_test(test_status_merge_and_order),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_no_external_entities),
                cmocka_unit_test(test_dirs),
                cmocka_unit_test(test_libvirt_test_driver),
                cmocka_unit_test(test_libvirt_unreachable),
                cmocka_unit_test(test_libvirt_hung_daemon),
        };
        return cmocka_run_group_tests_name("vm_usage", tests, tu_group_setup, tu_group_teardown);
}
