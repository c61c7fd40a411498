/* SPDX-License-Identifier: Apache-2.0 */
/* test_state: the state directory (modes, owners, links) and reservation files named by any
 * domain name libvirt accepts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "domname.h"
#include "reserve.h"
#include "statefile.h"
#include "testutil.h"

static char *path_of(const char *rel)
{
        static char buf[4][PATH_MAX];
        static int k;
        char *p = buf[k++ % 4];

        if (strlen(tu_dir) + 1 + strlen(rel) >= PATH_MAX)
                abort();
        strcpy(p, tu_dir);
        strcat(p, "/");
        strcat(p, rel);
        return p;
}

static bool exists(const char *rel)
{
        struct stat st;
        return lstat(path_of(rel), &st) == 0;
}

static int count_entries(const char *rel)
{
        _cleanup_closedir_ DIR *d = opendir(path_of(rel));
        struct dirent *de;
        int n = 0;

        while (d && (de = readdir(d)))
                n += !streq(de->d_name, ".") && !streq(de->d_name, "..");
        return d ? n : -1;
}

static int open_state(const char *rel, bool write, struct gpuh_state **s, char **err)
{
        free(*err);
        *err = NULL;
        return gpuh_state_open(path_of(rel), write, s, err);
}

static struct gpuh_reservation reservation(const char *domain, struct gpuh_alloc *a)
{
        gpuh_pci_addr_parse("0000:05:00.0", &a->addr);
        a->kind = GPUH_ALLOC_PCI;
        return (struct gpuh_reservation) { .domain = (char *) domain, .state = (char *) "reserved", .created = 1,
                                           .expires = INT64_MAX, .devices = a, .n_devices = 1 };
}

static void test_safe_dirs(void **state)
{
        struct gpuh_state *s = NULL;
        char *err = NULL;
        struct stat st;

        /* made when missing, 0700, with the lock; a subdirectory when first needed */
        assert_int_equal(open_state("ok", true, &s, &err), 0);
        assert_int_equal(stat(path_of("ok"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_true(exists("ok/lock"));
        assert_false(exists("ok/journal"));
        assert_true(gpuh_state_subdir(s, "journal") >= 0);
        assert_int_equal(stat(path_of("ok/journal"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(gpuh_state_subdir(s, "bogus"), -EINVAL);
        s = gpuh_state_free(s);

        /* a state directory others may write: refused for writes, naming it and its mode */
        assert_int_equal(mkdir(path_of("open"), 0700), 0);
        assert_int_equal(chmod(path_of("open"), 0777), 0);
        assert_int_equal(open_state("open", true, &s, &err), -EPERM);
        assert_null(s);
        assert_non_null(strstr(err, path_of("open")));
        assert_non_null(strstr(err, "0777"));
        assert_null(strchr(err, '\n'));
        assert_false(exists("open/journal") || exists("open/lock"));
        /* read (a dry run, --explain): allowed, nothing written */
        assert_int_equal(open_state("open", false, &s, &err), 0);
        assert_false(exists("open/lock"));
        s = gpuh_state_free(s);
        /* group-writable counts too; so does a subdirectory */
        assert_int_equal(chmod(path_of("open"), 0770), 0);
        assert_int_equal(open_state("open", true, &s, &err), -EPERM);
        assert_int_equal(chmod(path_of("open"), 0700), 0);
        assert_int_equal(mkdir(path_of("open/locks"), 0700), 0);
        assert_int_equal(chmod(path_of("open/locks"), 0703), 0);
        assert_int_equal(open_state("open", true, &s, &err), -EPERM);
        assert_non_null(strstr(err, "open/locks"));
        assert_non_null(strstr(err, "0703"));
        /* another owner */
        assert_int_equal(chmod(path_of("open/locks"), 0700), 0);
        if (geteuid() == 0) {
                assert_int_equal(chown(path_of("open/locks"), 65534, 65534), 0);
                assert_int_equal(open_state("open", true, &s, &err), -EPERM);
                assert_non_null(strstr(err, "uid 65534"));
        }
        free(err);
}

static void test_symlinked_subdir(void **state)
{
        struct gpuh_state *s = NULL;
        char *err = NULL;

        /* journal/ replaced by a link to another directory: refused, never followed */
        assert_int_equal(mkdir(path_of("elsewhere"), 0700), 0);
        assert_int_equal(mkdir(path_of("linked"), 0700), 0);
        assert_int_equal(symlink(path_of("elsewhere"), path_of("linked/journal")), 0);
        assert_int_equal(open_state("linked", true, &s, &err), -ELOOP);
        assert_null(s);
        assert_non_null(strstr(err, "linked/journal"));
        assert_non_null(strstr(err, "symbolic link"));
        assert_int_equal(open_state("linked", false, &s, &err), -ELOOP);
        assert_int_equal(unlink(path_of("linked/journal")), 0);
        /* so is reservations/ */
        assert_int_equal(symlink(path_of("elsewhere"), path_of("linked/reservations")), 0);
        assert_int_equal(open_state("linked", true, &s, &err), -ELOOP);
        assert_non_null(strstr(err, "linked/reservations"));
        /* nothing was made where the links point */
        assert_int_equal(count_entries("elsewhere"), 0);
        /* a file replaced by a link is not read through it either */
        {
                int dfd = open(path_of("linked"), O_RDONLY | O_DIRECTORY);
                char *text = NULL;
                size_t len;
                tu_write(tu_dir, "secret", "{}");
                assert_int_equal(symlink(path_of("secret"), path_of("linked/x.json")), 0);
                assert_int_equal(gpuh_statefile_read(dfd, "x.json", 1024, &text, &len), -ELOOP);
                assert_int_equal(gpuh_statefile_replace(dfd, "y.json", "{}", 2), 0);
                assert_int_equal(gpuh_statefile_read(dfd, "y.json", 1024, &text, &len), 0);
                assert_string_equal(text, "{}");
                free(text);
                close(dfd);
        }
        free(err);
}

static void test_missing_read_only(void **state)
{
        struct gpuh_state *s = NULL;
        struct gpuh_reservation *res = NULL, one;
        struct gpuh_alloc a = { 0 };
        size_t n = 1;
        char *err = NULL;

        assert_int_equal(open_state("absent", false, &s, &err), 0);
        assert_false(exists("absent"));
        assert_int_equal(gpuh_state_lock(s, false, 10), 0);
        assert_int_equal(gpuh_reservations_load(s, &res, &n, NULL), 0);
        assert_int_equal(n, 0);
        assert_int_equal(gpuh_reservation_load(s, "x", &one), -ENOENT);
        one = reservation("x", &a);
        assert_int_equal(gpuh_reservation_write(s, &one), -EROFS);
        assert_int_equal(gpuh_state_subdir(s, "journal"), -ENOENT);
        assert_false(exists("absent"));
        gpuh_reservations_free(res, n);
        gpuh_state_free(s);
        free(err);
}

/* Two writers open the state before either has written a reservation (reservations/ missing);
 * the first writes one: the second, loading under the host lock afterwards, must see it (it
 * read "none" from the directory it had found missing at open time, and handed out the same
 * device: transformer/concurrency under the sanitizers). */
static void test_subdir_made_after_open(void **state)
{
        struct gpuh_state *a = NULL, *b = NULL;
        struct gpuh_reservation *res = NULL, one, got;
        struct gpuh_alloc dev = { 0 };
        size_t n = 0;
        char *err = NULL;

        assert_int_equal(open_state("late", true, &a, &err), 0);
        assert_int_equal(open_state("late", true, &b, &err), 0);
        assert_false(exists("late/reservations"));
        one = reservation("first", &dev);
        assert_int_equal(gpuh_state_lock(a, true, 1000), 0);
        assert_int_equal(gpuh_reservation_write(a, &one), 0);
        gpuh_state_unlock(a);
        assert_int_equal(gpuh_state_lock(b, true, 1000), 0);
        assert_int_equal(gpuh_reservations_load(b, &res, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_string_equal(res[0].domain, "first");
        assert_int_equal(gpuh_reservation_load(b, "first", &got), 0);
        assert_string_equal(got.domain, "first");
        gpuh_reservation_clear(&got);
        assert_int_equal(gpuh_reservation_remove(b, "first"), 0);
        assert_false(exists("late/reservations/first.json"));
        gpuh_reservations_free(res, n);
        gpuh_state_free(a);
        gpuh_state_free(b);
        free(err);
}

static void test_names(void **state)
{
        struct gpuh_state *s = NULL;
        struct gpuh_reservation *res = NULL, one, r;
        struct gpuh_alloc a = { 0 };
        struct gpuh_warnings w = { 0 };
        char long_name[241], enc[GPUH_DOMNAME_ENC_SIZE];
        size_t n = 0;
        char *err = NULL;
        bool seen_evil = false, seen_long = false;

        memset(long_name, 'L', 240);
        long_name[240] = '\0';
        assert_int_equal(open_state("names", true, &s, &err), 0);
        static const char *const names[] = { ".evil", "good", "a b", "a%20b", "  x  ", "t\tab", "...", ".x." };
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                r = reservation(names[i], &a);
                assert_int_equal(gpuh_reservation_write(s, &r), 0);
        }
        r = reservation(long_name, &a);
        assert_int_equal(gpuh_reservation_write(s, &r), 0);
        /* no file hides, none is shared */
        assert_true(exists("names/reservations/%2Eevil.json"));
        assert_true(exists("names/reservations/a%2520b.json") && exists("names/reservations/a%20b.json"));
        assert_int_equal(gpuh_reservations_load(s, &res, &n, &w), 0);
        assert_int_equal(w.n, 0);
        assert_int_equal(n, ARRAY_SIZE(names) + 1);
        for (size_t i = 0; i < n; i++) {
                seen_evil = seen_evil || streq(res[i].domain, ".evil");
                seen_long = seen_long || streq(res[i].domain, long_name);
        }
        assert_true(seen_evil && seen_long);
        gpuh_reservations_free(res, n);
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                assert_int_equal(gpuh_reservation_load(s, names[i], &one), 0);
                assert_string_equal(one.domain, names[i]);
                gpuh_reservation_clear(&one);
        }
        assert_int_equal(gpuh_reservation_load(s, long_name, &one), 0);
        assert_string_equal(one.domain, long_name);
        gpuh_reservation_clear(&one);
        assert_int_equal(gpuh_reservation_load(s, "a\nb", &one), -EINVAL);

        /* a temporary file of a write is passed over */
        tu_write(tu_dir, "names/reservations/.good.json.Ab12Cd", "{");
        assert_int_equal(gpuh_reservations_load(s, &res, &n, &w), 0);
        gpuh_reservations_free(res, n);
        /* an entry gpuhooks did not write (an older version's dot file) is reported, not skipped */
        tu_write(tu_dir, "names/reservations/.stray.json",
                 "{\"domain\": \".stray\", \"state\": \"running\", \"devices\": []}");
        assert_int_equal(gpuh_reservations_load(s, &res, &n, &w), -EBADMSG);
        assert_int_equal(w.n, 1);
        assert_non_null(strstr(w.v[0], ".stray.json"));
        gpuh_warnings_clear(&w);
        assert_int_equal(unlink(path_of("names/reservations/.stray.json")), 0);

        /* two long names meeting in one hashed file name (made by hand: SHA-1 does not collide
         * here): the file holds the other's name, so nothing is shared silently */
        {
                char other[241];
                memcpy(other, long_name, sizeof(other));
                other[239] = 'M';
                assert_int_equal(gpuh_domname_encode(other, enc), 0);
                char from[PATH_MAX / 2], to[PATH_MAX / 2];
                char long_enc[GPUH_DOMNAME_ENC_SIZE];
                assert_int_equal(gpuh_domname_encode(long_name, long_enc), 0);
                snprintf(from, sizeof(from), "names/reservations/%s.json", long_enc);
                snprintf(to, sizeof(to), "names/reservations/%s.json", enc);
                assert_int_equal(rename(path_of(from), path_of(to)), 0);
                assert_int_equal(gpuh_reservation_load(s, other, &one), -EBADMSG);
                r = reservation(other, &a);
                assert_int_equal(gpuh_reservation_write(s, &r), -EEXIST);
                assert_int_equal(gpuh_reservation_remove(s, other), 0);
                assert_true(exists(to));        /* left: not its file */
                assert_int_equal(gpuh_reservations_load(s, &res, &n, &w), -EBADMSG);
                assert_int_equal(w.n, 1);
                assert_non_null(strstr(w.v[0], long_name));
                gpuh_warnings_clear(&w);
                assert_int_equal(rename(path_of(to), path_of(from)), 0);
        }
        /* removing one name leaves the others */
        assert_int_equal(gpuh_reservation_remove(s, ".evil"), 0);
        assert_false(exists("names/reservations/%2Eevil.json"));
        assert_int_equal(gpuh_reservation_load(s, "good", &one), 0);
        gpuh_reservation_clear(&one);
        gpuh_state_free(s);
        free(err);
}

/* Temporary files of an atomic write, for a stem that is an encoded name. */
static void test_temp_names(void **state)
{
        assert_true(gpuh_statefile_is_temp(".i-2-154-VM.journal.aB3xY9", ".journal"));
        assert_true(gpuh_statefile_is_temp(".%2Eevil.json.000000", ".json"));
        assert_false(gpuh_statefile_is_temp("i-2-154-VM.journal", ".journal"));
        assert_true(gpuh_statefile_is_temp(".evil.journal.aB3xY9", ".journal"));       /* domain "evil"'s */
        assert_false(gpuh_statefile_is_temp("..evil.journal.aB3xY9", ".journal"));     /* ".evil" is no stem */
        assert_false(gpuh_statefile_is_temp(".x.json.aB3xY9", ".journal"));
        assert_false(gpuh_statefile_is_temp(".x.journal.aB3x", ".journal"));
        assert_false(gpuh_statefile_is_temp(".x.journal.aB3x-9", ".journal"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_safe_dirs),
                cmocka_unit_test(test_symlinked_subdir),
                cmocka_unit_test(test_missing_read_only),
                cmocka_unit_test(test_subdir_made_after_open),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_temp_names),
        };
        return cmocka_run_group_tests_name("state", tests, tu_group_setup, tu_group_teardown);
}
