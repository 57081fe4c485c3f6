# Shared helpers for the build scripts; sourced, not run.

step() { printf '==> %s\n' "$*"; }

# The tarball's version: keepalived-2.2.7.tar.gz -> 2.2.7
tarball_version() { basename "$1" .tar.gz | sed 's/^[a-z]*-//'; }

# version_lt A B: true when A sorts before B as a version.
version_lt() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]; }

has_systemd() { [ -d /run/systemd/system ]; }

gcc_major() { gcc -dumpversion 2>/dev/null | cut -d. -f1; }

# install_packages "debian packages" "rhel packages": installs only what is missing.
install_packages() {
    if command -v apt-get >/dev/null 2>&1; then
        missing=""
        for pkg in $1; do
            dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
        done
        [ -z "$missing" ] && return 0
        step "installing build dependencies:$missing"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    elif command -v dnf >/dev/null 2>&1; then
        missing=""
        for pkg in $2; do rpm -q "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"; done
        [ -z "$missing" ] && return 0
        step "installing build dependencies:$missing"
        # libnfnetlink-devel lives in CRB (Rocky/RHEL 9) or PowerTools (8).
        dnf -y -q install dnf-plugins-core >/dev/null
        dnf config-manager --set-enabled crb 2>/dev/null || dnf config-manager --set-enabled powertools 2>/dev/null || true
        dnf -y -q install $missing >/dev/null
    else
        echo "neither apt-get nor dnf found: install by hand: $1" >&2
        return 1
    fi
}

# install_smtp_sink: aiosmtpd for the client's SMTP sink, from the distribution only (Debian:
# python3-aiosmtpd; Rocky/RHEL: EPEL's), never pip: Debian's Python refuses system-wide pip
# installs (PEP 668) and a VM booted from a baked box may have no network.
install_smtp_sink() {
    python3 -c "import aiosmtpd" 2>/dev/null && return 0
    if command -v dnf >/dev/null 2>&1 && ! rpm -q epel-release >/dev/null 2>&1; then
        install_packages "" "epel-release"
    fi
    install_packages "python3-aiosmtpd" "python3-aiosmtpd"
}

# kernel_modules MODULE...: each one loadable by the running kernel (or built in). The roles
# load them at every boot (a director ip_vs, a TUN real server ipip); an image without one
# would fail only once a lab needed it, so the bake fails instead. Rocky/RHEL ship some in
# kernel-modules, apart from kernel-core.
kernel_modules() {
    missing=""
    for module in "$@"; do modprobe -n -q "$module" || missing="$missing $module"; done
    [ -z "$missing" ] && return 0
    install_packages "" "kernel-modules-$(uname -r)"
    for module in $missing; do
        modprobe -n -q "$module" || { echo "kernel $(uname -r) has no module $module" >&2; return 1; }
    done
}

# already_built STAMP TEXT: true when a previous run left the same stamp (idempotency).
already_built() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# unpack TARBALL: into a fresh scratch directory, removed when the script exits.
unpack() {
    SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/halab-build.XXXXXX")
    trap 'rm -rf "$SCRATCH"' EXIT INT TERM
    tar -xzf "$1" -C "$SCRATCH"
    SRC=$(find "$SCRATCH" -mindepth 1 -maxdepth 1 -type d | head -n1)
}

# configure_make_install LABEL DESTDIR CONFIGURE_ARGS...: in $SRC, with the log tail on failure.
configure_make_install() {
    label=$1 destdir=$2
    shift 2
    step "configuring $label"
    ./configure "$@" >configure.log 2>&1 || { tail -n 30 configure.log >&2; exit 1; }
    step "compiling $label"
    make -j"$(nproc)" >make.log 2>&1 || { tail -n 30 make.log >&2; exit 1; }
    step "installing into $destdir"
    make install DESTDIR="${destdir%/}" >/dev/null
}

# open_firewall: firewalld (when present) lets VRRP (IP protocol 112), LVS-TUN's IP-in-IP
# (protocol 4, by number: /etc/protocols names 94 "ipip") and HTTP in, running or not, and
# forwards within its zone where firewalld can (1.0 and later): a NAT director forwards the
# real servers' replies from one of its NICs to the other.
open_firewall() {
    command -v firewall-offline-cmd >/dev/null 2>&1 || return 0
    step "firewalld: allow VRRP (IP protocol 112), IP-in-IP (4), HTTP, and forwarding in the zone"
    firewall=firewall-offline-cmd
    systemctl is-active -q firewalld 2>/dev/null && firewall="firewall-cmd --permanent"
    $firewall --add-service=http >/dev/null
    $firewall --add-rich-rule='rule protocol value="vrrp" accept' >/dev/null
    $firewall --add-rich-rule='rule protocol value="4" accept' >/dev/null
    $firewall --add-forward >/dev/null 2>&1 || echo "firewalld before 1.0: no intra-zone forwarding (NAT directors need it)"
    if systemctl is-active -q firewalld 2>/dev/null; then firewall-cmd --reload >/dev/null; fi
}
