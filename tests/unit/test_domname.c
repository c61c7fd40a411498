/* SPDX-License-Identifier: Apache-2.0 */
/* test_domname: libvirt's rules for a domain name, and the file-name encoding of one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "domname.h"
#include "testutil.h"

static void test_ok(void **state)
{
        char name[GPUH_DOMNAME_MAX + 2];

        /* what libvirt's QEMU driver accepts */
        assert_true(gpuh_domname_ok("i-2-154-VM"));
        assert_true(gpuh_domname_ok("  x  "));          /* not trimmed */
        assert_true(gpuh_domname_ok("a\tb"));
        assert_true(gpuh_domname_ok("a\rb"));           /* &#13; */
        assert_true(gpuh_domname_ok(".evil"));
        assert_true(gpuh_domname_ok("..."));
        assert_true(gpuh_domname_ok("a%20b"));
        assert_true(gpuh_domname_ok("d\x7f"));          /* DEL is an XML character */
        assert_true(gpuh_domname_ok("gr\xc3\xbc\xc3\x9f" "e-\xe2\x82\xac-\xf0\x9f\x96\xa5"));   /* grüße-€-🖥 */
        memset(name, 'n', GPUH_DOMNAME_MAX);
        name[GPUH_DOMNAME_MAX] = '\0';
        assert_true(gpuh_domname_ok(name));
        /* what it does not */
        name[GPUH_DOMNAME_MAX] = 'n';
        name[GPUH_DOMNAME_MAX + 1] = '\0';
        assert_false(gpuh_domname_ok(name));            /* NAME.xml would not fit NAME_MAX */
        assert_false(gpuh_domname_ok(NULL));
        assert_false(gpuh_domname_ok(""));
        assert_false(gpuh_domname_ok("a\nb"));
        assert_false(gpuh_domname_ok("a/b"));
        assert_false(gpuh_domname_ok("../x"));
        assert_false(gpuh_domname_ok("."));             /* libvirt's, but never gpuhooks' */
        assert_false(gpuh_domname_ok(".."));
        assert_false(gpuh_domname_ok("a\x01" "b"));     /* no XML 1.0 character */
        assert_false(gpuh_domname_ok("a\x1b[0m"));
        assert_false(gpuh_domname_ok("a\xff"));         /* not UTF-8 */
        assert_false(gpuh_domname_ok("a\xc0\xaf"));     /* overlong '/' */
        assert_false(gpuh_domname_ok("a\xed\xa0\x80")); /* a surrogate */
        assert_false(gpuh_domname_ok("a\xef\xbf\xbe")); /* U+FFFE */
        assert_false(gpuh_domname_ok("a\xe2\x82"));     /* cut short */
}

static void round_trip(const char *name)
{
        char enc[GPUH_DOMNAME_ENC_SIZE];
        char *back = NULL;

        assert_int_equal(gpuh_domname_encode(name, enc), 0);
        assert_true(strlen(enc) >= 1 && strlen(enc) <= GPUH_DOMNAME_ENC_MAX);
        assert_true(enc[0] != '.');
        assert_int_equal(strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-%"), strlen(enc));
        assert_true(gpuh_domname_is_stem(enc));
        if (gpuh_domname_decode(enc, &back) == -ENAMETOOLONG)
                return;                 /* hashed: see test_long */
        assert_non_null(back);
        assert_string_equal(back, name);
        free(back);
}

static void test_encode(void **state)
{
        static const char *const names[] = {
                "i-2-154-VM", "  x  ", "x", "a b", "a%20b", "a%b", ".x", "x.", "...", ".a.", "a\tb", "a\rb",
                "gr\xc3\xbc\xc3\x9f" "e", "%", "%%", "%2E", "-", "_._",
        };
        char enc[GPUH_DOMNAME_ENC_SIZE], other[GPUH_DOMNAME_ENC_SIZE];

        for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                round_trip(names[i]);
        /* the plain names of CloudStack stay as they were */
        assert_int_equal(gpuh_domname_encode("i-2-154-VM", enc), 0);
        assert_string_equal(enc, "i-2-154-VM");
        /* a leading dot is escaped (no hidden files), others are not */
        assert_int_equal(gpuh_domname_encode(".evil", enc), 0);
        assert_string_equal(enc, "%2Eevil");
        assert_int_equal(gpuh_domname_encode("x.y", enc), 0);
        assert_string_equal(enc, "x.y");
        assert_int_equal(gpuh_domname_encode("...", enc), 0);
        assert_string_equal(enc, "%2E..");
        /* '%' itself is escaped, so "a b" and "a%20b" never meet */
        assert_int_equal(gpuh_domname_encode("a b", enc), 0);
        assert_int_equal(gpuh_domname_encode("a%20b", other), 0);
        assert_string_equal(enc, "a%20b");
        assert_string_equal(other, "a%2520b");
        /* ".x" and "x" */
        assert_int_equal(gpuh_domname_encode(".x", enc), 0);
        assert_int_equal(gpuh_domname_encode("x", other), 0);
        assert_string_not_equal(enc, other);
        /* tab, UTF-8 bytes by byte */
        assert_int_equal(gpuh_domname_encode("a\tb", enc), 0);
        assert_string_equal(enc, "a%09b");
        assert_int_equal(gpuh_domname_encode("\xc3\xbc", enc), 0);
        assert_string_equal(enc, "%C3%BC");
        /* names libvirt refuses have no encoding */
        assert_int_equal(gpuh_domname_encode("a\nb", enc), -EINVAL);
        assert_string_equal(enc, "");
        assert_int_equal(gpuh_domname_encode("a/b", enc), -EINVAL);
}

static void test_decode_one_encoding(void **state)
{
        static const char *const bad[] = {
                "", ".evil", ".", "%2E", "%2E.", "a b", "a/b", "%41", "a%2f", "a%2", "a%", "%zz", "%00", "%0A", "x%2F",
                "a%%", "a%%0123",
        };
        char *name = (char *) 1;

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                if (gpuh_domname_decode(bad[i], &name) != -EINVAL)
                        fail_msg("'%s' decoded", bad[i]);
                assert_null(name);
                assert_false(gpuh_domname_is_stem(bad[i]));
        }
        assert_int_equal(gpuh_domname_decode("%2Eevil", &name), 0);
        assert_string_equal(name, ".evil");
        free(name);
}

static void test_long(void **state)
{
        char a[GPUH_DOMNAME_MAX + 1], b[GPUH_DOMNAME_MAX + 1], ea[GPUH_DOMNAME_ENC_SIZE], eb[GPUH_DOMNAME_ENC_SIZE];
        char *name = NULL;

        /* 200 plain bytes: encoded as they are */
        memset(a, 'v', GPUH_DOMNAME_ENC_MAX);
        a[GPUH_DOMNAME_ENC_MAX] = '\0';
        round_trip(a);
        assert_int_equal(gpuh_domname_encode(a, ea), 0);
        assert_string_equal(ea, a);
        /* 240 bytes: a bounded prefix and a hash of the whole name */
        memset(a, 'v', 240);
        a[240] = '\0';
        memcpy(b, a, sizeof(a));
        b[239] = 'w';                   /* the same prefix, another name */
        assert_int_equal(gpuh_domname_encode(a, ea), 0);
        assert_int_equal(gpuh_domname_encode(b, eb), 0);
        assert_int_equal(strlen(ea), GPUH_DOMNAME_ENC_MAX);
        assert_memory_equal(ea, a, GPUH_DOMNAME_HASH_PREFIX);
        assert_string_not_equal(ea, eb);
        assert_int_equal(gpuh_domname_decode(ea, &name), -ENAMETOOLONG);
        assert_null(name);
        assert_true(gpuh_domname_is_stem(ea));
        round_trip(a);
        /* the same name, the same file name, every time */
        assert_int_equal(gpuh_domname_encode(a, eb), 0);
        assert_string_equal(ea, eb);
        /* a long name of escapes: the prefix is cut between two of them */
        for (size_t i = 0; i < 83; i++)
                memcpy(a + 3 * i, "a\tb", 3);
        a[249] = '\0';
        assert_int_equal(gpuh_domname_encode(a, ea), 0);
        assert_true(strlen(ea) <= GPUH_DOMNAME_ENC_MAX);
        assert_non_null(strstr(ea, "%%"));
        assert_true(gpuh_domname_is_stem(ea));
        round_trip(a);
        /* a hashed form with a prefix too short, or bad digits, is none */
        assert_false(gpuh_domname_is_stem("abc%%0123456789abcdef0123456789abcdef"));
        memcpy(eb, ea, sizeof(ea));
        eb[strlen(eb) - 1] = 'X';
        assert_false(gpuh_domname_is_stem(eb));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ok),
                cmocka_unit_test(test_encode),
                cmocka_unit_test(test_decode_one_encoding),
                cmocka_unit_test(test_long),
        };
        return cmocka_run_group_tests_name("domname", tests, NULL, NULL);
}
