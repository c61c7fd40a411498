# SPDX-License-Identifier: Apache-2.0
"""The file-name encoding of a domain name (common/domname.h), written again from its
description, so that the e2e tests check the files the hooks make without trusting them."""
import uuid

ENC_MAX = 200
HASH_PREFIX = ENC_MAX - 2 - 32
# common/domname.c: the namespace of the name-based UUIDs standing for long names
NAMESPACE = uuid.UUID(bytes=bytes([0x6f, 0x0c, 0x3e, 0x5a, 0x2b, 0x41, 0x4d, 0x8e,
                                   0x9a, 0x77, 0x18, 0xd2, 0x45, 0xc0, 0x31, 0xe9]))
PLAIN = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def encode(name):
    """Every byte outside [A-Za-z0-9._-], and a leading '.', as %XX; a long result cut at an
    escape boundary to HASH_PREFIX bytes, then '%%' and the hex of a version-5 UUID of the name."""
    raw = name.encode("utf-8")
    tokens = [chr(b) if b in PLAIN and not (i == 0 and b == ord(".")) else "%%%02X" % b for i, b in enumerate(raw)]
    full = "".join(tokens)
    if len(full) <= ENC_MAX:
        return full
    prefix = ""
    for t in tokens:
        if len(prefix) + len(t) > HASH_PREFIX:
            break
        prefix += t
    return prefix + "%%" + uuid.uuid5(NAMESPACE, name).hex
