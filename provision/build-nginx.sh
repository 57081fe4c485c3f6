#!/bin/sh
# Compile nginx from a verified upstream tarball with the write-up's configure flags and
# install it under /usr/local/nginx. Shared, unchanged, by Packer, Vagrant and the local lab.
#
# usage: build-nginx.sh TARBALL [DESTDIR]
#   DESTDIR empty or /: install into this system and prepare it to run nginx (the nginx
#   user, the temp directories, a systemd unit where systemd runs).
#   DESTDIR elsewhere: a staged install only (how `invoke build` caches host builds).
#   HALAB_PLAN=1: print the configure command and exit; nothing is installed or built.
# Idempotent: a second run with the same tarball, flags and DESTDIR changes nothing.
set -eu
. "$(dirname "$0")/lib.sh"

TARBALL=$1
DESTDIR=${2:-/}
VERSION=$(tarball_version "$TARBALL")
PREFIX=/usr/local/nginx
FLAGS="--prefix=$PREFIX --pid-path=/var/run/nginx/nginx.pid --lock-path=/var/lock/nginx.lock \
--error-log-path=/var/log/nginx/error.log --http-log-path=/var/log/nginx/access.log \
--with-http_gzip_static_module --http-client-body-temp-path=/var/temp/nginx/client \
--http-proxy-temp-path=/var/temp/nginx/proxy --http-fastcgi-temp-path=/var/temp/nginx/fastcgi \
--http-uwsgi-temp-path=/var/temp/nginx/uwsgi --http-scgi-temp-path=/var/temp/nginx/scgi \
--without-http_rewrite_module"
TEMP_DIRS="/var/temp/nginx/client /var/temp/nginx/proxy /var/temp/nginx/fastcgi /var/temp/nginx/uwsgi /var/temp/nginx/scgi"

if [ "${HALAB_PLAN:-}" = 1 ]; then
    echo "nginx $VERSION: ./configure $FLAGS"
    exit 0
fi

prepare_system() {
    id nginx >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin nginx
    mkdir -p $TEMP_DIRS /var/run/nginx /var/log/nginx
    ln -sf "$PREFIX/sbin/nginx" /usr/local/sbin/nginx
    if has_systemd; then
        cat > /etc/systemd/system/nginx.service <<UNIT
[Unit]
Description=nginx (compiled from source by halab)
After=network-online.target

[Service]
Type=forking
PIDFile=/var/run/nginx/nginx.pid
RuntimeDirectory=nginx
ExecStartPre=$PREFIX/sbin/nginx -t -q
ExecStart=$PREFIX/sbin/nginx
ExecReload=$PREFIX/sbin/nginx -s reload
ExecStop=$PREFIX/sbin/nginx -s quit

[Install]
WantedBy=multi-user.target
UNIT
        systemctl daemon-reload
    fi
}

STAMP="$DESTDIR$PREFIX/.built-by-halab"
ID="nginx $VERSION $(sha256sum "$TARBALL" | cut -c1-64) $FLAGS"
if already_built "$STAMP" "$ID"; then
    step "nginx $VERSION already built into $DESTDIR$PREFIX; nothing to do"
else
    install_packages "build-essential zlib1g-dev libpcre3-dev" "gcc make zlib-devel pcre-devel"
    step "unpacking $(basename "$TARBALL")"
    unpack "$TARBALL"
    cd "$SRC"
    # As the write-up does: no debug symbols (auto/cc/gcc adds -g).
    sed -i 's/^CFLAGS="\$CFLAGS -g"/# &/' auto/cc/gcc
    configure_make_install "nginx $VERSION" "$DESTDIR" $FLAGS
    echo "$ID" > "$STAMP"
fi
if [ "$DESTDIR" = / ]; then
    prepare_system
fi
