#!/usr/bin/env bash
# Make the sandbox base root filesystem with debootstrap (minbase; no mirror argument,
# so debootstrap's configured default is used) and pack it as a tar for `docker import`.
# Usage: build-rootfs.sh SUITE WORKDIR OUT_TAR
set -euo pipefail
suite=$1 work=$2 out=$3
rootfs=$work/rootfs
rm -rf "$rootfs"
debootstrap --variant=minbase --include=python3,python3-pytest "$suite" "$rootfs"
# Slim it: nothing here is needed at run time.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
mkdir -p "$rootfs"/work "$rootfs"/kernel
echo "I: Packing root filesystem"
tar --numeric-owner -C "$rootfs" -cf "$out" .
rm -rf "$rootfs"
