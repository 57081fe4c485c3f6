#!/bin/sh
# Compile keepalived from a verified upstream tarball as the write-up does
# (--prefix=/usr/local/keepalived, systemd init where systemd runs) and install it.
# Shared, unchanged, by Packer, Vagrant and the local lab.
#
# usage: build-keepalived.sh TARBALL [DESTDIR]
#   DESTDIR empty or /: install into this system, with the write-up's links, the systemd
#   unit and the ipvsadm save file (without it `systemctl start ipvsadm` fails).
#   DESTDIR elsewhere: a staged install only (how `invoke build` caches host builds).
#   HALAB_PLAN=1: print the configure command and CFLAGS and exit.
# Idempotent: a second run with the same tarball, flags and DESTDIR changes nothing.
set -eu
. "$(dirname "$0")/lib.sh"

TARBALL=$1
DESTDIR=${2:-/}
VERSION=$(tarball_version "$TARBALL")
PREFIX=/usr/local/keepalived
FLAGS="--prefix=$PREFIX"
if has_systemd; then FLAGS="$FLAGS --with-init=systemd"; fi
CFLAGS=${CFLAGS:--O2}
# keepalived before 2.0.14 defines globals in headers; GCC 10 made -fno-common the default,
# so it no longer links ("multiple definition of garp_delay"). -fcommon restores the old rule.
if version_lt "$VERSION" 2.0.14 && [ "${GCC_MAJOR:-$(gcc_major)}" -ge 10 ]; then
    CFLAGS="$CFLAGS -fcommon"
fi

if [ "${HALAB_PLAN:-}" = 1 ]; then
    echo "keepalived $VERSION: CFLAGS=\"$CFLAGS\" ./configure $FLAGS"
    exit 0
fi

prepare_system() {
    mkdir -p /etc/sysconfig
    ln -sfn "$PREFIX/etc/sysconfig/keepalived" /etc/sysconfig/keepalived
    [ -e /etc/keepalived ] || ln -s "$PREFIX/etc/keepalived" /etc/keepalived
    ln -sf "$PREFIX/sbin/keepalived" /usr/sbin/keepalived
    if has_systemd; then
        unit=$(find "$PREFIX" /usr/lib/systemd /lib/systemd -name keepalived.service 2>/dev/null | head -n1)
        [ -n "$unit" ] && [ "$unit" != /etc/systemd/system/keepalived.service ] && cp "$unit" /etc/systemd/system/keepalived.service
        if command -v ipvsadm >/dev/null 2>&1 && [ ! -s /etc/sysconfig/ipvsadm ]; then
            ipvsadm --save > /etc/sysconfig/ipvsadm
        fi
        systemctl daemon-reload
    fi
}

STAMP="$DESTDIR$PREFIX/.built-by-halab"
ID="keepalived $VERSION $(sha256sum "$TARBALL" | cut -c1-64) CFLAGS=$CFLAGS $FLAGS"
if already_built "$STAMP" "$ID"; then
    step "keepalived $VERSION already built into $DESTDIR$PREFIX; nothing to do"
else
    install_packages \
        "build-essential pkg-config libssl-dev libnl-3-dev libnl-genl-3-dev libnl-route-3-dev libnfnetlink-dev" \
        "gcc make openssl-devel libnl3-devel libnfnetlink-devel ipset-devel iptables-devel"
    step "unpacking $(basename "$TARBALL")"
    unpack "$TARBALL"
    cd "$SRC"
    export CFLAGS
    configure_make_install "keepalived $VERSION (CFLAGS=$CFLAGS)" "$DESTDIR" $FLAGS
    echo "$ID" > "$STAMP"
fi
if [ "$DESTDIR" = / ]; then
    prepare_system
fi
