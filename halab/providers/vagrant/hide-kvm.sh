#!/bin/sh
# hide-kvm.sh LAYER QEMU_CONF COMMAND...: run COMMAND (the private libvirtd) in the mount
# namespace the caller made (`unshare --mount`), seeing the host's /dev without kvm.
#
# Why: where /dev/kvm opens but KVM cannot run a guest (a CPU without vmx), libvirt's QEMU
# capability cache never settles. It probes QEMU and finds no KVM; at the next lookup it
# judges the cache stale because /dev/kvm is accessible ("KVM was not enabled when
# probing, but it should be usable now") and probes again, every few seconds, while every
# libvirt call waits behind the probe. Without /dev/kvm the probe and the check agree.
#
# How: /dev becomes an overlay of LAYER (a whiteout named kvm) on the host's /dev, with
# /dev's own mounts (pts, shm, ...) bound back. libvirt would rebuild a /dev per VM by
# moving those mounts, which fails on an overlay, so QEMU_CONF (the host's qemu.conf plus
# `namespaces = []`) is bound over qemu.conf: QEMU then runs in this namespace as is.
# Every mount lives and dies with the namespace; the host's /dev is never touched.
set -eu
layer=$1 qemu_conf=$2
shift 2
old=$(mktemp -d /run/halab-dev.XXXXXX)
mount --rbind /dev "$old"
mount -t overlay halab-dev -o "lowerdir=$layer:$old" /dev
for entry in "$old"/*; do
    if [ -d "$entry" ] && mountpoint -q "$entry"; then
        mount --rbind "$entry" "/dev/${entry##*/}"
    fi
done
umount -l "$old"
rmdir "$old"
mount --bind "$qemu_conf" /etc/libvirt/qemu.conf
exec "$@"
