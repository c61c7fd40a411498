/* SPDX-License-Identifier: Apache-2.0 */
/* domname.c: libvirt's rules for a domain name, and the file-name encoding of one. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "domname.h"
#include "macro.h"

/* The namespace of the name-based UUIDs that stand for long names (a fixed random UUID). */
static const uuid_t domname_ns = { 0x6f, 0x0c, 0x3e, 0x5a, 0x2b, 0x41, 0x4d, 0x8e,
                                   0x9a, 0x77, 0x18, 0xd2, 0x45, 0xc0, 0x31, 0xe9 };

static const char hexdig[] = "0123456789ABCDEF";

/*
 * The length of the UTF-8 sequence at @s when it is a whole, shortest-form sequence of an
 * XML 1.0 Char (#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]); 0
 * otherwise.
 */
static size_t xml_char_len(const unsigned char *s)
{
        uint32_t c;
        size_t n;

        if (s[0] < 0x80)
                return s[0] >= 0x20 || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' ? 1 : 0;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                n = 2, c = s[0] & 0x1f;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                n = 3, c = s[0] & 0x0f;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                n = 4, c = s[0] & 0x07;
        else
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;       /* also the terminating NUL */
                c = (c << 6) | (s[i] & 0x3f);
        }
        if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)))
                return 0;               /* overlong, or past Unicode */
        if ((c >= 0xd800 && c <= 0xdfff) || c == 0xfffe || c == 0xffff)
                return 0;               /* surrogates, and the two non-characters XML excludes */
        return n;
}

bool gpuh_domname_ok(const char *name)
{
        const unsigned char *p = (const unsigned char *) name;
        size_t len;

        if (!name || !*name || (len = strlen(name)) > GPUH_DOMNAME_MAX)
                return false;
        if (streq(name, ".") || streq(name, ".."))
                return false;   /* libvirt takes them; gpuhooks never has (see domname.h) */
        while (*p) {
                size_t n = xml_char_len(p);

                if (n == 0 || *p == '\n' || *p == '/')
                        return false;
                p += n;
        }
        return true;
}

/* Bytes that stand for themselves; '.' only after the first byte (no hidden files). */
static bool plain(unsigned char c, bool first)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '-' || (c == '.' && !first);
}

int gpuh_domname_encode(const char *name, char ret[static GPUH_DOMNAME_ENC_SIZE])
{
        char full[GPUH_DOMNAME_MAX * 3 + 1];
        size_t n = 0, cut = 0;
        uuid_t u;

        ret[0] = '\0';
        if (!gpuh_domname_ok(name))
                return -EINVAL;
        for (const unsigned char *p = (const unsigned char *) name; *p; p++) {
                if (plain(*p, p == (const unsigned char *) name))
                        full[n++] = (char) *p;
                else {
                        full[n++] = '%';
                        full[n++] = hexdig[*p >> 4];
                        full[n++] = hexdig[*p & 0xf];
                }
                if (n <= GPUH_DOMNAME_HASH_PREFIX)
                        cut = n;        /* the longest prefix ending between two escapes */
        }
        full[n] = '\0';
        if (n <= GPUH_DOMNAME_ENC_MAX) {
                memcpy(ret, full, n + 1);
                return 0;
        }
        uuid_generate_sha1(u, domname_ns, name, strlen(name));
        memcpy(ret, full, cut);
        ret[cut] = ret[cut + 1] = '%';
        for (size_t i = 0; i < sizeof(uuid_t); i++) {
                static const char lower[] = "0123456789abcdef";
                ret[cut + 2 + 2 * i] = lower[u[i] >> 4];
                ret[cut + 3 + 2 * i] = lower[u[i] & 0xf];
        }
        ret[cut + 2 + 2 * sizeof(uuid_t)] = '\0';
        return 0;
}

static int unhex(char c)
{
        const char *p = c ? strchr(hexdig, c) : NULL;

        return p ? (int) (p - hexdig) : -1;     /* uppercase only: the one encoding */
}

/* Decodes the escapes of @enc up to @end into @buf (at least end - enc + 1 bytes). */
static bool unescape(const char *enc, const char *end, char *buf)
{
        size_t n = 0;

        for (const char *p = enc; p < end; p++) {
                if (*p != '%') {
                        if (!plain((unsigned char) *p, p == enc))
                                return false;
                        buf[n++] = *p;
                        continue;
                }
                if (end - p < 3 || unhex(p[1]) < 0 || unhex(p[2]) < 0)
                        return false;
                buf[n++] = (char) (unhex(p[1]) << 4 | unhex(p[2]));
                p += 2;
        }
        buf[n] = '\0';
        return true;
}

/* The hashed form: a prefix of escapes, "%%", 32 lowercase hex digits. */
static bool hashed(const char *enc)
{
        const char *mark = strstr(enc, "%%");
        char buf[GPUH_DOMNAME_ENC_SIZE];
        size_t plen;

        if (!mark || strlen(enc) > GPUH_DOMNAME_ENC_MAX)
                return false;
        plen = (size_t) (mark - enc);
        /* the cut is the longest one not past GPUH_DOMNAME_HASH_PREFIX: escapes are 3 bytes */
        if (plen > GPUH_DOMNAME_HASH_PREFIX || plen + 2 < GPUH_DOMNAME_HASH_PREFIX || strlen(mark + 2) != 32)
                return false;
        for (const char *p = mark + 2; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return unescape(enc, mark, buf);
}

/* Checks @enc, and decodes a plain encoding into @buf. */
static int decode_into(const char *enc, char buf[static GPUH_DOMNAME_ENC_SIZE])
{
        char again[GPUH_DOMNAME_ENC_SIZE];
        size_t len = enc ? strlen(enc) : 0;

        if (len == 0 || len > GPUH_DOMNAME_ENC_MAX)
                return -EINVAL;
        if (hashed(enc))
                return -ENAMETOOLONG;
        if (!unescape(enc, enc + len, buf) || gpuh_domname_encode(buf, again) < 0 || !streq(again, enc))
                return -EINVAL;         /* not a name, or not the one encoding of it */
        return 0;
}

int gpuh_domname_decode(const char *enc, char **ret)
{
        char buf[GPUH_DOMNAME_ENC_SIZE];
        int r = decode_into(enc, buf);

        *ret = NULL;
        if (r < 0)
                return r;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

bool gpuh_domname_is_stem(const char *enc)
{
        char buf[GPUH_DOMNAME_ENC_SIZE];
        int r = decode_into(enc, buf);

        return r == 0 || r == -ENAMETOOLONG;
}
