#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Install what building and testing gpuhooks needs on Debian 12 (or a derivative). Run as root.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  ca-certificates gcc libc6-dev make cmake pkg-config \
  libxml2-dev libjson-c-dev libpci-dev pci.ids libvirt-dev libvirt0 uuid-dev libcmocka-dev \
  python3 python3-jsonschema libvirt-clients libxml2-utils fuse3 python3-fusepy \
  dpkg-dev groff-base gcovr lintian >/dev/null
