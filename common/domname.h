/* SPDX-License-Identifier: Apache-2.0 */
/* domname.h: a libvirt domain name, as libvirt accepts it, and its encoding as a file name. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * What libvirt (QEMU driver) accepts as a domain name, gpuhooks accepts (docs/state-change.md,
 * "Names"):
 *   - the text of the first <name> child of <domain>, exactly as it is: not trimmed
 *     (src/conf/domain_conf.c, virDomainDefParseIDs(): virXPathString("string(./name[1])"));
 *   - not empty (virXPathString() returns NULL for "": VIR_ERR_NO_NAME);
 *   - no newline (the drivers' define: virXMLCheckIllegalChars("name", def->name, "\n"),
 *     e.g. qemuDomainDefineXMLFlags() in src/qemu/qemu_driver.c);
 *   - no '/' (src/conf/domain_postparse.c, virDomainDefPostParseCheckFeatures(): refused unless
 *     the driver sets VIR_DOMAIN_DEF_FEATURE_NAME_SLASH, which only the VMware/ESX driver does);
 *   - characters XML 1.0 can carry, in UTF-8 (libxml2): so tab, carriage return (as &#13;),
 *     DEL and any other character from U+0020 up, but no other C0 control;
 *   - at most 251 bytes: the QEMU driver keeps NAME.xml in its configuration and status
 *     directories (virDomainConfigFile()), and a file name has at most NAME_MAX (255) bytes.
 * (Checked against libvirt 9.0: its test driver defines "  x  ", "a<TAB>b", "a&#13;b" and
 * ".evil" as they are, and refuses "a/b" and "a&#10;b".) One exception: the names "." and
 * ".." are refused, as gpuhooks always did (libvirt takes them). Nothing in gpuhooks needs it
 * any more, but they stay in its hostile-input contract (fixtures/domains/hostile/).
 *
 * State files are named by an encoding that cannot collide or hide: every byte outside
 * [A-Za-z0-9._-], and a leading '.', becomes %XX (uppercase hex; '%' itself is %25). An encoding
 * longer than GPUH_DOMNAME_ENC_MAX is cut, at an escape boundary, to its first
 * GPUH_DOMNAME_HASH_PREFIX bytes, followed by "%%" and 32 hex digits of a SHA-1 name-based
 * UUID (RFC 4122 version 5, libuuid) of the whole name. "%%" never occurs in a plain encoding,
 * so the two forms cannot meet; the files store the full name, which is checked on load, so two
 * names never share a file silently.
 */

#define GPUH_DOMNAME_MAX 251            /* bytes of a domain name */
#define GPUH_DOMNAME_ENC_MAX 200        /* bytes of an encoded name: ".NAME.journal.XXXXXX" fits 255 */
#define GPUH_DOMNAME_ENC_SIZE (GPUH_DOMNAME_ENC_MAX + 1)
#define GPUH_DOMNAME_HASH_PREFIX (GPUH_DOMNAME_ENC_MAX - 2 - 32)

/**
 * gpuh_domname_ok:
 * @name: a domain name (from the XML's <name> or libvirt's VMNAME argument), may be NULL
 *
 * Returns: true when libvirt's QEMU driver accepts @name (the rules above): 1 to
 *          GPUH_DOMNAME_MAX bytes of valid UTF-8, only XML 1.0 characters, no '\n', no '/';
 *          and it is not "." or "..".
 */
bool gpuh_domname_ok(const char *name);

/**
 * gpuh_domname_encode:
 * @name: a domain name
 * @ret: receives the encoded name, 1 to GPUH_DOMNAME_ENC_MAX bytes of [A-Za-z0-9._%-], never
 *       starting with '.' (the stem of NAME.json, NAME.journal, vm-NAME)
 *
 * Returns: 0; -EINVAL when !gpuh_domname_ok(@name) (@ret is then "").
 */
int gpuh_domname_encode(const char *name, char ret[static GPUH_DOMNAME_ENC_SIZE]);

/**
 * gpuh_domname_decode:
 * @enc: a file name stem
 * @ret: the domain name it encodes (free())
 *
 * Only the one encoding gpuh_domname_encode() gives decodes: "%41" for "A", lowercase hex or
 * an unescaped leading '.' do not.
 *
 * Returns: 0; -ENAMETOOLONG when @enc is the hashed form of a long name (well-formed, but the
 *          name is not in it: read it from the file, then compare its encoding with @enc);
 *          -EINVAL when @enc is no encoding gpuhooks writes; -ENOMEM.
 */
int gpuh_domname_decode(const char *enc, char **ret);

/**
 * gpuh_domname_is_stem:
 * Returns: true when @enc is an encoded name gpuh_domname_encode() can give: a plain encoding
 *          that decodes, or a well-formed hashed one.
 */
bool gpuh_domname_is_stem(const char *enc);
