/* SPDX-License-Identifier: Apache-2.0 */
/* test_alloc_codec: a device of an allocation in its three written forms (the record's XML, a
 * reservation's JSON, --explain's JSON): exact shapes, round trips of every kind, and every
 * malformed value refused with its message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <libxml/parser.h>

#include "alloc_codec.h"
#include "reserve.h"
#include "testutil.h"

#define NS "urn:gpuhooks:domain:1"
#define U1 "0b2d4a5e-1f3c-4d5e-8f90-a1b2c3d4e5f6"
#define U2 "0b2d4a5e-1f3c-4d5e-8f90-a1b2c3d4e5f7"

static struct gpuh_pci_addr pci(const char *s)
{
        struct gpuh_pci_addr a;

        assert_int_equal(gpuh_pci_addr_parse(s, &a), 0);
        return a;
}

/* One device of each shape each kind is written in; only the fields its kind carries. */
static size_t devices(struct gpuh_alloc *v)
{
        size_t n = 0;

        v[n++] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_PCI, .addr = pci("0000:05:00.0"), .request = 0,
                                       .companions = { pci("0000:05:00.1"), pci("abcd:ef:1f.7") }, .n_companions = 2 };
        v[n++] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_PCI, .addr = pci("0000:3b:00.0"),
                                       .request = GPUH_ALLOC_REQUEST_CLOUDSTACK };
        v[n] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_PCI, .addr = pci("0000:3c:00.0"), .request = 15,
                                     .n_companions = GPUH_ALLOC_MAX_COMPANIONS };
        for (size_t i = 0; i < GPUH_ALLOC_MAX_COMPANIONS; i++)
                v[n].companions[i] = (struct gpuh_pci_addr) { .bus = 0x3c, .slot = 1, .func = (uint8_t) i };
        n++;
        v[n++] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_VF, .addr = pci("0000:83:02.0"), .parent = pci("0000:83:00.0"),
                                       .request = 1 };
        v[n++] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_VF, .addr = pci("0000:83:02.1"), .parent = pci("0000:83:00.0"),
                                       .request = GPUH_ALLOC_REQUEST_CLOUDSTACK };
        v[n++] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_VENDOR_VGPU, .addr = pci("0000:af:00.4"),
                                       .parent = pci("0000:af:00.0"), .vgpu_type = 1148, .request = 3 };
        v[n++] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_VENDOR_VGPU, .addr = pci("0000:af:00.5"),
                                       .parent = pci("0000:af:00.0"), .vgpu_type = 0xffffff,
                                       .request = GPUH_ALLOC_REQUEST_CLOUDSTACK };
        v[n++] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_MDEV, .parent = pci("0000:08:00.4"), .uuid = U1,
                                       .mdev_type = "nvidia-746", .mdev_new = true, .request = 2 };
        v[n++] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_MDEV, .parent = pci("0000:00:02.0"), .uuid = U2,
                                       .mdev_type = "i915-GVTg_V5_4", .display = true,
                                       .request = GPUH_ALLOC_REQUEST_CLOUDSTACK };
        /* MIG-backed layout slots: the GPU instance to create */
        v[n++] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_VENDOR_VGPU, .addr = pci("0000:ae:00.5"),
                                       .parent = pci("0000:ae:00.0"), .vgpu_type = 1702, .gi = true,
                                       .gi_profile = 14, .gi_start = 2, .gi_size = 2,
                                       .request = GPUH_ALLOC_REQUEST_CLOUDSTACK };
        v[n++] = (struct gpuh_alloc) { .kind = GPUH_ALLOC_MDEV, .parent = pci("0000:3b:00.5"), .uuid = U1,
                                       .mdev_type = "nvidia-474", .mdev_new = true, .gi = true, .gi_profile = 0,
                                       .gi_start = 0, .gi_size = 8, .request = GPUH_ALLOC_REQUEST_CLOUDSTACK };
        return n;
}

static void assert_alloc_equal(const struct gpuh_alloc *x, const struct gpuh_alloc *y)
{
        assert_int_equal(x->kind, y->kind);
        assert_int_equal(gpuh_pci_addr_cmp(&x->addr, &y->addr), 0);
        assert_int_equal(gpuh_pci_addr_cmp(&x->parent, &y->parent), 0);
        assert_string_equal(x->uuid, y->uuid);
        assert_string_equal(x->mdev_type, y->mdev_type);
        assert_int_equal(x->mdev_new, y->mdev_new);
        assert_int_equal(x->vgpu_type, y->vgpu_type);
        assert_int_equal(x->request, y->request);
        assert_int_equal(x->display, y->display);
        assert_int_equal(x->gi, y->gi);
        assert_int_equal(x->gi_profile, y->gi_profile);
        assert_int_equal(x->gi_start, y->gi_start);
        assert_int_equal(x->gi_size, y->gi_size);
        assert_int_equal(x->n_companions, y->n_companions);
        for (size_t i = 0; i < x->n_companions; i++)
                assert_int_equal(gpuh_pci_addr_cmp(&x->companions[i], &y->companions[i]), 0);
}

/* ---- the record's XML ---- */

/* A record <gpuhooks:allocation> holding the devices (as the transformer writes it), as text. */
static char *record_text(const struct gpuh_alloc *v, size_t n, bool managed)
{
        xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
        xmlNode *root = xmlNewDocNode(doc, NULL, BAD_CAST "allocation", NULL);
        xmlNs *ns = xmlNewNs(root, BAD_CAST NS, BAD_CAST "gpuhooks");
        xmlChar *text = NULL;
        char *ret;
        int len;

        xmlSetNs(root, ns);
        xmlDocSetRootElement(doc, root);
        for (size_t i = 0; i < n; i++) {
                xmlNode *dev = NULL;
                assert_int_equal(gpuh_alloc_to_record(doc, ns, &v[i], managed, &dev), 0);
                assert_non_null(xmlAddChild(root, dev));
        }
        xmlDocDumpMemory(doc, &text, &len);
        assert_non_null(text);
        ret = strdup((const char *) text);
        xmlFree(text);
        xmlFreeDoc(doc);
        return ret;
}

/* The device elements of a record's @text, read back: the count, or -errno of the first. */
static int record_parse(const char *text, struct gpuh_alloc *v, size_t max, char **err)
{
        xmlDoc *doc = xmlReadMemory(text, (int) strlen(text), "record.xml", NULL, XML_PARSE_NONET);
        size_t n = 0;
        int r = 0;

        assert_non_null(doc);
        for (xmlNode *c = xmlDocGetRootElement(doc)->children; c && r >= 0; c = c->next) {
                if (c->type != XML_ELEMENT_NODE)
                        continue;
                assert_true(n < max);
                r = gpuh_alloc_from_record(c, &v[n++], err);
        }
        xmlFreeDoc(doc);
        return r < 0 ? r : (int) n;
}

/* One <gpuhooks:device @attrs>@children</gpuhooks:device>, read. */
static int record_one(const char *attrs, const char *children, struct gpuh_alloc *a, char **err)
{
        char text[2048];

        snprintf(text, sizeof(text), "<gpuhooks:allocation xmlns:gpuhooks='" NS "'><gpuhooks:device %s>%s"
                 "</gpuhooks:device></gpuhooks:allocation>", attrs, children ? children : "");
        free(*err);
        *err = NULL;
        return record_parse(text, a, 1, err);
}

static void test_record_shapes(void **state)
{
        struct gpuh_alloc v[16];
        size_t n = devices(v);
        _cleanup_free_ char *t = record_text(v, n, false), *m = record_text(v, 2, true);
        _cleanup_free_ char *vv = record_text(&v[5], 1, true), *md = record_text(&v[7], 1, true);

        /* docs/transformer.md, "What is written": attribute order per kind */
        assert_non_null(strstr(t, "<gpuhooks:device kind=\"pci\" address=\"0000:05:00.0\" managed=\"no\" request=\"0\">"
                                  "<gpuhooks:companion address=\"0000:05:00.1\"/>"
                                  "<gpuhooks:companion address=\"abcd:ef:1f.7\"/></gpuhooks:device>"));
        assert_non_null(strstr(t, "<gpuhooks:device kind=\"pci\" address=\"0000:3b:00.0\" managed=\"no\" "
                                  "request=\"cloudstack\"/>"));
        assert_non_null(strstr(t, "<gpuhooks:device kind=\"vf\" address=\"0000:83:02.0\" parent=\"0000:83:00.0\" "
                                  "managed=\"no\" request=\"1\"/>"));
        assert_non_null(strstr(t, "<gpuhooks:device kind=\"vendor-vgpu\" address=\"0000:af:00.4\" "
                                  "parent=\"0000:af:00.0\" managed=\"no\" vgpu-type=\"1148\" request=\"3\"/>"));
        assert_non_null(strstr(t, "<gpuhooks:device kind=\"mdev\" uuid=\"" U1 "\" parent=\"0000:08:00.4\" "
                                  "mdev-type=\"nvidia-746\" new=\"yes\" request=\"2\"/>"));
        assert_non_null(strstr(t, "<gpuhooks:device kind=\"mdev\" uuid=\"" U2 "\" parent=\"0000:00:02.0\" "
                                  "mdev-type=\"i915-GVTg_V5_4\" new=\"no\" display=\"on\" request=\"cloudstack\"/>"));
        assert_non_null(strstr(t, "<gpuhooks:device kind=\"vendor-vgpu\" address=\"0000:ae:00.5\" "
                                  "parent=\"0000:ae:00.0\" managed=\"no\" vgpu-type=\"1702\" gi-profile=\"14\" "
                                  "gi-placement=\"2:2\" request=\"cloudstack\"/>"));
        assert_non_null(strstr(t, "<gpuhooks:device kind=\"mdev\" uuid=\"" U1 "\" parent=\"0000:3b:00.5\" "
                                  "mdev-type=\"nvidia-474\" new=\"yes\" gi-profile=\"0\" gi-placement=\"0:8\" "
                                  "request=\"cloudstack\"/>"));
        /* managed by libvirt: PCI kinds say so, a vendor vGPU VF never (it stays on nvidia) */
        assert_non_null(strstr(m, "kind=\"pci\" address=\"0000:05:00.0\" managed=\"yes\""));
        assert_non_null(strstr(vv, "managed=\"no\" vgpu-type=\"1148\""));
        assert_null(strstr(md, "managed"));
}

static void test_record_round_trip(void **state)
{
        struct gpuh_alloc v[16], back[16];
        size_t n = devices(v);
        char *err = NULL;

        for (int managed = 0; managed < 2; managed++) {
                _cleanup_free_ char *t = record_text(v, n, managed);
                assert_int_equal(record_parse(t, back, ARRAY_SIZE(back), &err), (int) n);
                assert_null(err);
                for (size_t i = 0; i < n; i++)
                        assert_alloc_equal(&back[i], &v[i]);
        }
}

static void test_record_malformed(void **state)
{
        static const struct {
                const char *attrs, *children, *why;
        } bad[] = {
                { "", NULL, "bad device kind" },
                { "kind='gpu'", NULL, "bad device kind" },
                { "kind='PCI'", NULL, "bad device kind" },
                { "kind='pci' address='0000:05:00'", NULL, "bad address" },
                { "kind='pci' address=''", NULL, "bad address" },
                { "kind='vf' address='0000:83:02.0' parent='83:00.0.0'", NULL, "bad parent" },
                { "kind='mdev' uuid='" U1 "0'", NULL, "bad uuid" },
                { "kind='mdev' uuid='0b2d4a5e1f3c4d5e8f90a1b2c3d4e5f6'", NULL, "bad uuid" },
                { "kind='mdev' uuid='" U1 "' mdev-type='../nvidia-746'", NULL, "bad mdev-type" },
                { "kind='mdev' uuid='" U1 "' mdev-type=''", NULL, "bad mdev-type" },
                { "kind='vendor-vgpu' vgpu-type='0'", NULL, "bad vgpu-type" },
                { "kind='vendor-vgpu' vgpu-type='16777216'", NULL, "bad vgpu-type" },
                { "kind='vendor-vgpu' vgpu-type='+12'", NULL, "bad vgpu-type" },
                { "kind='vendor-vgpu' vgpu-type='12 '", NULL, "bad vgpu-type" },
                { "kind='vendor-vgpu' vgpu-type='99999999999999999999999'", NULL, "bad vgpu-type" },
                { "kind='pci' address='0000:05:00.0'", "<gpuhooks:companion/>", "bad companion address" },
                { "kind='pci' address='0000:05:00.0'", "<gpuhooks:companion address='0000:05:00.8'/>", "bad companion address" },
                /* the first malformed field in the table's order is the one named */
                { "kind='vf' parent='x' address='y'", NULL, "bad address" },
                /* a GPU instance: both fields, numbers, a placement of at least one slice */
                { "kind='vendor-vgpu' vgpu-type='1702' gi-profile='14'", NULL, "bad GPU-instance placement" },
                { "kind='vendor-vgpu' vgpu-type='1702' gi-placement='2:2'", NULL, "bad GPU-instance profile" },
                { "kind='vendor-vgpu' vgpu-type='1702' gi-profile='x' gi-placement='2:2'", NULL,
                  "bad GPU-instance profile" },
                { "kind='vendor-vgpu' vgpu-type='1702' gi-profile='14' gi-placement='2'", NULL,
                  "bad GPU-instance placement" },
                { "kind='vendor-vgpu' vgpu-type='1702' gi-profile='14' gi-placement='2:0'", NULL,
                  "bad GPU-instance placement" },
                { "kind='vendor-vgpu' vgpu-type='1702' gi-profile='14' gi-placement='2:2 '", NULL,
                  "bad GPU-instance placement" },
        };
        char *err = NULL;
        struct gpuh_alloc a;

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                char want[128];
                snprintf(want, sizeof(want), "gpuhooks:allocation: %s", bad[i].why);
                assert_int_equal(record_one(bad[i].attrs, bad[i].children, &a, &err), -EBADMSG);
                assert_string_equal(err, want);
        }
        free(err);
}

/* What the record reader takes as it always did. */
static void test_record_lenient(void **state)
{
        char *err = NULL;
        struct gpuh_alloc a;
        char many[1024] = "";

        assert_int_equal(record_one("kind='mdev' uuid='0B2D4A5E-1F3C-4D5E-8F90-A1B2C3D4E5F6' new='YES' display='ON'",
                                    NULL, &a, &err), 1);
        assert_string_equal(a.uuid, U1);                /* kept lowercase */
        assert_false(a.mdev_new);                       /* only "yes" */
        assert_false(a.display);                        /* only "on" */
        assert_int_equal(a.request, GPUH_ALLOC_REQUEST_CLOUDSTACK);     /* absent */
        /* companions: only ours, at most GPUH_ALLOC_MAX_COMPANIONS (the rest, even malformed, passed over) */
        for (int i = 0; i < GPUH_ALLOC_MAX_COMPANIONS; i++)
                snprintf(many + strlen(many), sizeof(many) - strlen(many),
                         "<gpuhooks:companion address='0000:05:01.%d'/>", i);
        strcat(many, "<gpuhooks:companion address='junk'/><companion address='junk'/>");
        assert_int_equal(record_one("kind='pci' address='0000:05:00.0' managed='maybe'", many, &a, &err), 1);
        assert_int_equal(a.n_companions, GPUH_ALLOC_MAX_COMPANIONS);
        assert_int_equal(a.companions[7].func, 7);
        assert_int_equal(record_one("kind='pci' address='0000:05:00.0'",
                                    "<x:companion xmlns:x='urn:other' address='junk'/>", &a, &err), 1);
        assert_int_equal(a.n_companions, 0);
        assert_null(err);
}

/* ---- a reservation's JSON ---- */

static char *json_text(const struct gpuh_alloc *a)
{
        json_object *o = NULL;
        char *ret;

        assert_int_equal(gpuh_alloc_to_json(a, &o), 0);
        ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return ret;
}

static int json_one(const char *text, struct gpuh_alloc *a, char **err)
{
        json_object *o = json_tokener_parse(text);
        int r;

        assert_non_null(o);
        free(*err);
        *err = NULL;
        r = gpuh_alloc_from_json(o, a, err);
        json_object_put(o);
        return r;
}

static void test_json_shapes(void **state)
{
        static const char *const want[] = {
                "{\"kind\":\"pci\",\"address\":\"0000:05:00.0\",\"request\":0,\"companions\":[\"0000:05:00.1\",\"abcd:ef:1f.7\"]}",
                "{\"kind\":\"pci\",\"address\":\"0000:3b:00.0\",\"companions\":[]}",
                NULL,
                "{\"kind\":\"vf\",\"address\":\"0000:83:02.0\",\"parent\":\"0000:83:00.0\",\"request\":1,\"companions\":[]}",
                "{\"kind\":\"vf\",\"address\":\"0000:83:02.1\",\"parent\":\"0000:83:00.0\",\"companions\":[]}",
                "{\"kind\":\"vendor-vgpu\",\"address\":\"0000:af:00.4\",\"parent\":\"0000:af:00.0\",\"vgpu_type\":1148,"
                "\"request\":3,\"companions\":[]}",
                "{\"kind\":\"vendor-vgpu\",\"address\":\"0000:af:00.5\",\"parent\":\"0000:af:00.0\",\"vgpu_type\":16777215,"
                "\"companions\":[]}",
                "{\"kind\":\"mdev\",\"parent\":\"0000:08:00.4\",\"uuid\":\"" U1 "\",\"mdev_type\":\"nvidia-746\",\"new\":true,"
                "\"display\":false,\"request\":2,\"companions\":[]}",
                "{\"kind\":\"mdev\",\"parent\":\"0000:00:02.0\",\"uuid\":\"" U2 "\",\"mdev_type\":\"i915-GVTg_V5_4\","
                "\"new\":false,\"display\":true,\"companions\":[]}",
                "{\"kind\":\"vendor-vgpu\",\"address\":\"0000:ae:00.5\",\"parent\":\"0000:ae:00.0\",\"vgpu_type\":1702,"
                "\"gi_profile\":14,\"gi_placement\":\"2:2\",\"companions\":[]}",
                "{\"kind\":\"mdev\",\"parent\":\"0000:3b:00.5\",\"uuid\":\"" U1 "\",\"mdev_type\":\"nvidia-474\","
                "\"new\":true,\"gi_profile\":0,\"gi_placement\":\"0:8\",\"display\":false,\"companions\":[]}",
        };
        struct gpuh_alloc v[16];
        size_t n = devices(v);

        assert_int_equal(n, ARRAY_SIZE(want));
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *t = json_text(&v[i]);
                if (want[i])
                        assert_string_equal(t, want[i]);
        }
}

static void test_json_round_trip(void **state)
{
        struct gpuh_alloc v[16], back;
        size_t n = devices(v);
        char *err = NULL;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *t = json_text(&v[i]);
                assert_int_equal(json_one(t, &back, &err), 0);
                assert_alloc_equal(&back, &v[i]);
        }
        assert_null(err);
}

static void test_json_malformed(void **state)
{
        static const struct {
                const char *text, *why;
        } bad[] = {
                { "[]", "not a JSON object" },
                { "\"pci\"", "not a JSON object" },
                { "{}", "bad device kind" },
                { "{\"kind\": null}", "bad device kind" },
                { "{\"kind\": 0}", "bad device kind" },
                { "{\"kind\": \"gpu\"}", "bad device kind" },
                { "{\"kind\": \"pci\", \"address\": \"0000:05:00\"}", "bad address" },
                { "{\"kind\": \"vf\", \"parent\": \"x\"}", "bad parent" },
                { "{\"kind\": \"mdev\", \"uuid\": \"" U1 "0\"}", "bad uuid" },
                { "{\"kind\": \"mdev\", \"mdev_type\": \"a/b\"}", "bad mdev_type" },
                { "{\"kind\": \"mdev\", \"mdev_type\": \"\"}", "bad mdev_type" },
                { "{\"kind\": \"vendor-vgpu\", \"vgpu_type\": 0}", "bad vgpu_type" },
                { "{\"kind\": \"vendor-vgpu\", \"vgpu_type\": -1148}", "bad vgpu_type" },
                { "{\"kind\": \"vendor-vgpu\", \"vgpu_type\": 16777216}", "bad vgpu_type" },
                { "{\"kind\": \"vendor-vgpu\", \"vgpu_type\": \"1148\"}", "bad vgpu_type" },
                { "{\"kind\": \"vendor-vgpu\", \"vgpu_type\": 1148.0}", "bad vgpu_type" },
                { "{\"kind\": \"vendor-vgpu\", \"vgpu_type\": null}", "bad vgpu_type" },
                { "{\"kind\": \"pci\", \"companions\": [\"0000:05:00.1\", 5]}", "bad companion address" },
                { "{\"kind\": \"pci\", \"companions\": [\"0000:05:20.1\"]}", "bad companion address" },
                { "{\"kind\": \"vendor-vgpu\", \"gi_profile\": \"14\", \"gi_placement\": \"2:2\"}",
                  "bad GPU-instance profile" },
                { "{\"kind\": \"vendor-vgpu\", \"gi_profile\": 14}", "bad GPU-instance placement" },
                { "{\"kind\": \"vendor-vgpu\", \"gi_placement\": \"2:2\"}", "bad GPU-instance profile" },
        };
        struct gpuh_alloc a;
        char *err = NULL;
        json_object *o;

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                char want[128];
                snprintf(want, sizeof(want), "reservation device: %s", bad[i].why);
                assert_int_equal(json_one(bad[i].text, &a, &err), -EBADMSG);
                assert_string_equal(err, want);
        }
        free(err);
        /* no message asked for: the same refusal */
        o = json_tokener_parse("{\"kind\": \"gpu\"}");
        assert_int_equal(gpuh_alloc_from_json(o, &a, NULL), -EBADMSG);
        json_object_put(o);
        assert_int_equal(gpuh_alloc_from_json(NULL, &a, NULL), -EBADMSG);
}

/* What the reservation reader takes as it always did. */
static void test_json_lenient(void **state)
{
        struct gpuh_alloc a;
        char *err = NULL;

        /* string fields of another type are absent; new/display as json-c makes booleans; request an int */
        assert_int_equal(json_one("{\"kind\": \"mdev\", \"address\": 5, \"uuid\": null, \"new\": 1, \"display\": \"\","
                                  "\"request\": \"2\", \"companions\": \"0000:05:00.1\"}", &a, &err), 0);
        assert_int_equal(gpuh_pci_addr_cmp(&a.addr, &(struct gpuh_pci_addr) { 0 }), 0);
        assert_string_equal(a.uuid, "");
        assert_true(a.mdev_new);
        assert_false(a.display);
        assert_int_equal(a.request, GPUH_ALLOC_REQUEST_CLOUDSTACK);
        assert_int_equal(a.n_companions, 0);
        /* at most GPUH_ALLOC_MAX_COMPANIONS companions; the rest passed over */
        assert_int_equal(json_one("{\"kind\": \"pci\", \"companions\": [\"0000:05:00.1\", \"0000:05:00.2\", "
                                  "\"0000:05:00.3\", \"0000:05:00.4\", \"0000:05:00.5\", \"0000:05:00.6\", \"0000:05:00.7\", "
                                  "\"0000:05:01.0\", 9]}", &a, &err), 0);
        assert_int_equal(a.n_companions, GPUH_ALLOC_MAX_COMPANIONS);
        /* a UUID is kept lowercase, as the record's */
        assert_int_equal(json_one("{\"kind\": \"mdev\", \"uuid\": \"0B2D4A5E-1F3C-4D5E-8F90-A1B2C3D4E5F6\"}", &a, &err), 0);
        assert_string_equal(a.uuid, U1);
        assert_null(err);
}

/* ---- --explain ---- */

static void test_explain(void **state)
{
        static const char *const want[] = {
                "{\"kind\":\"pci\",\"address\":\"0000:05:00.0\"}",
                "{\"kind\":\"pci\",\"address\":\"0000:3b:00.0\"}",
                "{\"kind\":\"pci\",\"address\":\"0000:3c:00.0\"}",
                "{\"kind\":\"vf\",\"address\":\"0000:83:02.0\"}",
                "{\"kind\":\"vf\",\"address\":\"0000:83:02.1\"}",
                "{\"kind\":\"vendor-vgpu\",\"address\":\"0000:af:00.4\"}",
                "{\"kind\":\"vendor-vgpu\",\"address\":\"0000:af:00.5\"}",
                "{\"kind\":\"mdev\",\"parent\":\"0000:08:00.4\",\"uuid\":\"" U1 "\",\"mdev_type\":\"nvidia-746\"}",
                "{\"kind\":\"mdev\",\"parent\":\"0000:00:02.0\",\"uuid\":\"" U2 "\",\"mdev_type\":\"i915-GVTg_V5_4\"}",
                "{\"kind\":\"vendor-vgpu\",\"address\":\"0000:ae:00.5\",\"gi_profile\":14,\"gi_placement\":\"2:2\"}",
                "{\"kind\":\"mdev\",\"parent\":\"0000:3b:00.5\",\"uuid\":\"" U1 "\",\"mdev_type\":\"nvidia-474\","
                "\"gi_profile\":0,\"gi_placement\":\"0:8\"}",
        };
        struct gpuh_alloc v[16];
        size_t n = devices(v);

        assert_int_equal(n, ARRAY_SIZE(want));
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_new_object();
                assert_int_equal(gpuh_alloc_explain(&v[i], o), 0);
                assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE), want[i]);
                json_object_put(o);
        }
}

/* ---- through the reservation files (reserve.c) ---- */

static const char *path_of_state(void)
{
        static char p[PATH_MAX];

        snprintf(p, sizeof(p), "%s/state", tu_dir);
        return p;
}

static int load_device(const char *device_json, struct gpuh_reservation *r)
{
        _cleanup_(gpuh_state_freep) struct gpuh_state *s = NULL;
        char text[1024];

        snprintf(text, sizeof(text), "{\"version\": 1, \"domain\": \"i-2-7-VM\", \"state\": \"reserved\", "
                 "\"created\": 1, \"expires\": 2, \"devices\": [%s]}", device_json);
        tu_write(tu_dir, "state/reservations/i-2-7-VM.json", text);
        assert_int_equal(gpuh_state_open(path_of_state(), false, &s, NULL), 0);
        return gpuh_reservation_load(s, "i-2-7-VM", r);
}

/* A reservation's vGPU type is held to the record's rules: one nobody could set is malformed, and
 * a malformed reservation stops the load (fail closed), not a type 0 or a truncated one. */
static void test_reservation_vgpu_type(void **state)
{
        static const char *const bad[] = { "\"1148\"", "0", "-1", "4294968444", "null", "true" };
        struct gpuh_reservation r;

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                char dev[256];
                snprintf(dev, sizeof(dev), "{\"kind\": \"vendor-vgpu\", \"address\": \"0000:af:00.4\", "
                         "\"parent\": \"0000:af:00.0\", \"vgpu_type\": %s, \"companions\": []}", bad[i]);
                assert_int_equal(load_device(dev, &r), -EBADMSG);
        }
        assert_int_equal(load_device("{\"kind\": \"vendor-vgpu\", \"address\": \"0000:af:00.4\", \"parent\": "
                                     "\"0000:af:00.0\", \"vgpu_type\": 1148, \"request\": 0, \"companions\": []}", &r), 0);
        assert_int_equal(r.devices[0].vgpu_type, 1148);
        gpuh_reservation_clear(&r);
}

/* A reservation naming an mdev in upper case holds that mdev (the record reader always kept
 * UUIDs lowercase; the reservation reader compared them as written). */
static void test_reservation_uuid_case(void **state)
{
        struct gpuh_alloc want = { .kind = GPUH_ALLOC_MDEV, .uuid = U1 };
        struct gpuh_reservation r;

        assert_int_equal(load_device("{\"kind\": \"mdev\", \"parent\": \"0000:08:00.4\", \"uuid\": "
                                     "\"0B2D4A5E-1F3C-4D5E-8F90-A1B2C3D4E5F6\", \"mdev_type\": \"nvidia-746\"}", &r), 0);
        assert_string_equal(r.devices[0].uuid, U1);
        assert_true(gpuh_reservation_holds(&r, &want));
        gpuh_reservation_clear(&r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_record_shapes),
                cmocka_unit_test(test_record_round_trip),
                cmocka_unit_test(test_record_malformed),
                cmocka_unit_test(test_record_lenient),
                cmocka_unit_test(test_json_shapes),
                cmocka_unit_test(test_json_round_trip),
                cmocka_unit_test(test_json_malformed),
                cmocka_unit_test(test_json_lenient),
                cmocka_unit_test(test_explain),
                cmocka_unit_test(test_reservation_vgpu_type),
                cmocka_unit_test(test_reservation_uuid_case),
        };

        return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
