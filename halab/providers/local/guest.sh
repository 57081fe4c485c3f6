#!/bin/sh
# Inside a local-lab guest (a user-mode Linux kernel whose root is the host's / over
# hostfs, read-only). Two uses:
#   as init (PID 1):  the kernel runs it with HALAB_NODE_DIR=<host dir> from its command
#                     line; it builds the node's private filesystem, network and services.
#   over ssh:         guest.sh start|stop keepalived|nginx|smtpd  (the fault verbs use these).
# The node's settings come from $HALAB_NODE_DIR/$HALAB_NODE_ENV (both on the kernel's command
# line), written by the provider; they also name the files this script writes there.
export PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
NODE_MNT=/run/halab
# The settings, copied at boot so the ssh verbs find them.
SETTINGS=/run/halab-node.env

start_service() {
    case "$1" in
    keepalived)
        # -l: log to the console stream we redirect; -D: detailed; -n: stay in the foreground.
        # A lab with connection sync renders more options, as systemd's unit would read them.
        KEEPALIVED_OPTIONS=-D
        [ -f "$RENDERED/etc/sysconfig/keepalived" ] && . "$RENDERED/etc/sysconfig/keepalived"
        setsid keepalived -n -l $KEEPALIVED_OPTIONS -f "$RENDERED/etc/keepalived/keepalived.conf" \
            -p /run/keepalived.pid >>/var/log/keepalived.log 2>&1 < /dev/null &
        ;;
    nginx)
        mkdir -p /var/temp/nginx/client /var/temp/nginx/proxy /var/temp/nginx/fastcgi \
            /var/temp/nginx/uwsgi /var/temp/nginx/scgi /var/run/nginx /var/log/nginx
        /usr/local/nginx/sbin/nginx
        ;;
    smtpd)
        # The lab's mail sink: keepalived's notifications arrive here, one file each (Maildir).
        # (the Maildir itself must not exist yet: the server then creates new/ cur/ tmp/)
        mkdir -p "$(dirname "$MAILDIR")"
        setsid "$PYTHON" -m aiosmtpd -n -l "$ADDRESS:25" -c aiosmtpd.handlers.Mailbox "$MAILDIR" \
            >>/var/log/smtpd.log 2>&1 < /dev/null &
        ;;
    *) echo "unknown service $1" >&2; return 2 ;;
    esac
}

stop_service() {
    # Returns once the daemon is gone (at most 10 s): a start right after a stop must
    # not find the old one still shutting down, or it exits as "already running".
    case "$1" in
    keepalived) pkill -x keepalived ;;
    nginx) /usr/local/nginx/sbin/nginx -s quit 2>/dev/null || pkill -x nginx ;;
    smtpd) pkill -f "aiosmtpd -n -l $ADDRESS:25" ;;
    *) echo "unknown service $1" >&2; return 2 ;;
    esac
    tries=0
    while running "$1" && [ "$tries" -lt 100 ]; do sleep 0.1; tries=$((tries + 1)); done
    if running "$1"; then echo "$1 still running 10 s after the stop" >&2; return 1; fi
}

running() {
    case "$1" in
    smtpd) pgrep -f "aiosmtpd -n -l $ADDRESS:25" >/dev/null ;;
    *) pgrep -x "$1" >/dev/null ;;
    esac
}

# A step of the node's role: run it, and if it fails record its name for the provider
# (which reports it with this log's tail) and stop there. A node is up only when every
# step of its role passed and was verified.
step() {
    name=$1
    shift
    echo "==> $name"
    if "$@"; then return 0; fi
    echo "step '$name' failed"
    echo "$name" >"$NODE_MNT/$FAILED"
    return 1
}

# Bounded wait for a condition: up to $1 tenths of a second.
within() {
    tries=$1
    shift
    while ! "$@"; do
        [ "$tries" -gt 0 ] || return 1
        sleep 0.1
        tries=$((tries - 1))
    done
}

host_tools() {
    missing=""
    for tool in $(awk '!/^#/ && NF {print $1}' "$HOST_TOOLS"); do
        command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
    done
    [ -z "$missing" ] || { echo "missing on the host:$missing (./bootstrap installs them)"; return 1; }
}

load_modules() {
    for module in "$@"; do modprobe -d /run/modules "$module" || return 1; done
}

ipvs_loaded() { grep -q '^ip_vs ' /proc/modules; }

keepalived_running() {
    pid=$(pgrep -x keepalived | head -n 1) && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "-f $RENDERED/etc/keepalived/keepalived.conf"
}

vips_on() {
    for vip in $VIPS; do ip -4 -o addr show dev "$1" | grep -q " $vip/32 " || { echo "$vip not on $1"; return 1; }; done
}

# The kernel's own answer to "which way does a reply from this server to a client go?"
# (a lookup, nothing is sent; the first VIP stands for any address off the NAT subnet).
routes_via_gateway() {
    vip=${VIPS%% *}
    ip -4 route get "$vip" from "$ADDRESS" | grep -q "via $NAT_GATEWAY " || {
        echo "a reply from $ADDRESS to $vip does not go via $NAT_GATEWAY: $(ip -4 route get "$vip" from "$ADDRESS" 2>&1)"
        return 1
    }
}

arp_suppressed() {
    if [ "$ARP_SUPPRESSION" = arptables ]; then
        rules=$(arptables -L INPUT -n 2>&1) || { echo "$rules"; return 1; }
        for vip in $VIPS; do echo "$rules" | grep -q "$vip" || { echo "no arptables rule for $vip"; return 1; }; done
    else
        [ "$(cat /proc/sys/net/ipv4/conf/all/arp_ignore)" = 1 ] && [ "$(cat /proc/sys/net/ipv4/conf/all/arp_announce)" = 2 ]
    fi
}

nginx_answers() { curl -s -o /dev/null -m 2 "http://$ADDRESS/"; }

# /proc/net/tcp lists listening sockets in state 0A; port 25 is 0019.
smtpd_listening() { awk '$4 == "0A" && $2 ~ /:0019$/ {found=1} END {exit !found}' /proc/net/tcp; }

# keepalived runs the rendered file within 5 s, or says why it does not.
keepalived_stays() {
    within 50 keepalived_running 2>/dev/null || keepalived_says "$1"
}

# Every VRRP instance of the rendered file has entered BACKUP or MASTER since keepalived
# started ($1: the log's line count then), none last in FAULT. keepalived with a broken
# instance (an interface that does not exist, a NIC down) runs on and serves nothing.
vrrp_instances_up() {
    for instance in $(awk '$1 == "vrrp_instance" {print $2}' "$RENDERED/etc/keepalived/keepalived.conf"); do
        last=$(tail -n "+$(($1 + 1))" /var/log/keepalived.log |
            grep -o "($instance)[: ]*[Ee]ntering [A-Z]* [Ss][Tt][Aa][Tt][Ee]" | tail -n 1)
        case "$last" in *MASTER* | *BACKUP*) ;; *) return 1 ;; esac
    done
}

# ...and when they do not within 15 s (by the clock: a loaded host stretches each try; a
# healthy instance logs BACKUP at once), keepalived's own words on why.
vrrp_running() {
    deadline=$(($(date +%s) + 15))
    until vrrp_instances_up "$1"; do
        [ "$(date +%s)" -lt "$deadline" ] || break
        sleep 0.2
    done
    vrrp_instances_up "$1" && return 0
    echo "keepalived's VRRP instances did not all reach BACKUP or MASTER"
    keepalived_says "$1"
}

# keepalived's own complaints since it started ($1: the log's line count then).
keepalived_says() {
    echo "keepalived's log says:"
    tail -n "+$(($1 + 1))" /var/log/keepalived.log | grep -i -E "warning|error|fault|exist|unknown|invalid|exit" | tail -n 5
    return 1
}

# /etc/keepalived is the node's own rendered (or imported) directory, so a file that names its
# scripts and includes by absolute path (/etc/keepalived/check.sh) finds them: /etc stays the
# host's, read-only, under a layer in this node's memory.
own_etc_keepalived() {
    load_modules overlay &&
        mkdir -p /run/etc-layer/upper /run/etc-layer/work &&
        mount -t overlay halab-etc -o lowerdir=/etc,upperdir=/run/etc-layer/upper,workdir=/run/etc-layer/work /etc &&
        mkdir -p /etc/keepalived && mount --bind "$RENDERED/etc/keepalived" /etc/keepalived
}

director_role() {
    logged=$(cat /var/log/keepalived.log 2>/dev/null | wc -l)
    step "/etc/keepalived the node's own" own_etc_keepalived &&
        step modules load_modules ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_dh ip_vs_sed ip_vs_nq &&
        step "ipvs loaded" ipvs_loaded &&
        step sysctls sysctl -q -p "$RENDERED/etc/sysctl.d/90-lvs-director.conf" &&
        step "keepalived started" start_service keepalived &&
        step "keepalived running with the rendered file" keepalived_stays "$logged" &&
        step "VRRP instances out of FAULT" vrrp_running "$logged"
}

# Per forwarding method, what lvs-realserver sets up and how to see that it did: DR, the VIP
# on lo with ARP suppressed; TUN, the VIP on tunl0 (ipip loaded here: the guest's modules
# live outside the default path) with ARP suppressed; NAT, replies routed via the gateway.
forwarding() {
    case "$METHOD" in
    DR)
        step modules load_modules arp_tables arptable_filter arpt_mangle &&
            step "lvs-realserver start" lvs-realserver start &&
            step "VIP on lo" vips_on lo &&
            step "ARP suppression" arp_suppressed
        ;;
    TUN)
        step modules load_modules arp_tables arptable_filter arpt_mangle ipip &&
            step "lvs-realserver start" lvs-realserver start &&
            step "VIP on tunl0" vips_on tunl0 &&
            step "ARP suppression" arp_suppressed
        ;;
    NAT)
        step "lvs-realserver start" lvs-realserver start &&
            step "replies routed via the gateway" routes_via_gateway
        ;;
    esac
}

realserver_role() {
    forwarding &&
        step "nginx started" start_service nginx &&
        step "nginx answering" within 50 nginx_answers
}

client_role() {
    step "smtpd started" start_service smtpd && step "smtpd listening" within 100 smtpd_listening
}

role() {
    step "host tools" host_tools || return 1
    case "$ROLE" in
    director) director_role ;;
    realserver) realserver_role ;;
    client) client_role ;;
    esac
}

boot() {
    set -eu
    mount -t proc proc /proc
    mount -t sysfs sys /sys
    mount -t devtmpfs dev /dev 2>/dev/null || true
    mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
    for dir in /run /tmp /var /root /usr/local; do mount -t tmpfs -o mode=0755 tmpfs "$dir"; done
    chmod 1777 /tmp
    mkdir -p "$NODE_MNT" && mount -t hostfs -o "$HALAB_NODE_DIR" none "$NODE_MNT"
    cp "$NODE_MNT/$HALAB_NODE_ENV" "$SETTINGS"
    . "$SETTINGS"
    exec >>"$NODE_MNT/$BOOT_LOG" 2>&1
    # The project and its state may live under a directory the tmpfs mounts above just
    # hid (a checkout in /tmp, say): show them again, read-only, from the host.
    for path in $HOST_PATHS; do
        [ -e "$path" ] || { mkdir -p "$path" && mount -r -t hostfs -o "$path" none "$path"; }
    done
    mkdir -p "$NODE_MNT/$LOG_DIR" /var/log && mount --bind "$NODE_MNT/$LOG_DIR" /var/log
    hostname "$NODE"

    # The write-up's paths, backed by the host builds and this node's rendered files.
    mkdir -p /usr/local/sbin /usr/local/keepalived /usr/local/nginx/sbin /usr/local/nginx/conf /usr/local/nginx/html
    mount --bind "$KEEPALIVED_BUILD/usr/local/keepalived" /usr/local/keepalived
    mount --bind "$NGINX_BUILD/usr/local/nginx/sbin" /usr/local/nginx/sbin
    ln -s /usr/local/keepalived/sbin/keepalived /usr/local/sbin/keepalived
    ln -s /usr/local/nginx/sbin/nginx /usr/local/sbin/nginx
    [ -d "$RENDERED/usr/local/nginx" ] && mount --bind "$RENDERED/usr/local/nginx/conf" /usr/local/nginx/conf
    [ -d "$RENDERED/usr/local/nginx" ] && mount --bind "$RENDERED/usr/local/nginx/html" /usr/local/nginx/html
    [ -e "$RENDERED/usr/local/sbin/lvs-realserver" ] && ln -s "$RENDERED/usr/local/sbin/lvs-realserver" /usr/local/sbin/
    [ -e "$RENDERED/usr/local/sbin/halab-notify" ] && ln -s "$RENDERED/usr/local/sbin/halab-notify" /usr/local/sbin/
    # arptables is the legacy variant here, whatever the host's alternative says: this
    # kernel has no nf_tables ARP family (CONFIG_NF_TABLES_ARP), so arptables-nft, Debian's
    # choice once iptables is installed, cannot work in a guest.
    ln -s "$(command -v arptables-legacy)" /usr/local/sbin/arptables

    # The kernel's modules (IPVS, arptables) are on the host, under the UML package.
    mkdir -p /run/modules/lib/modules
    ln -s "/usr/lib/uml/modules/$(uname -r)" "/run/modules/lib/modules/$(uname -r)"

    ip link set lo up
    ip link set vec0 name "$LAB_INTERFACE"
    ip link set "$LAB_INTERFACE" address "$MAC"
    ip link set "$LAB_INTERFACE" up
    ip addr add "$ADDRESS/$PREFIXLEN" dev "$LAB_INTERFACE"
    # A NAT director's second NIC, on the real servers' network.
    if [ -n "${NAT_ADDRESS:-}" ]; then
        ip link set vec1 name "$NAT_INTERFACE"
        ip link set "$NAT_INTERFACE" address "$NAT_MAC"
        ip link set "$NAT_INTERFACE" up
        ip addr add "$NAT_ADDRESS/$NAT_PREFIXLEN" dev "$NAT_INTERFACE"
    fi
    # The provider attaches our tap to the lab switch once it exists; wait for that.
    tries=0
    while [ ! -e "$NODE_MNT/$LINKED" ] && [ "$tries" -lt 300 ]; do sleep 0.1; tries=$((tries + 1)); done

    mkdir -p /root/.ssh /run/sshd && chmod 700 /root/.ssh
    cp "$SSH_DIR/authorized_keys" /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys
    /usr/sbin/sshd -f "$SSH_DIR/sshd_config"

    if role; then touch "$NODE_MNT/$READY"; fi
    set +e
    # PID 1 must never exit (the kernel would panic); it also reaps orphans.
    while :; do sleep 3600 & wait; done
}

case "${1:-}" in
start) . "$SETTINGS"; start_service "$2" ;;
stop) . "$SETTINGS"; stop_service "$2" ;;
"") [ "$$" = 1 ] && boot || { echo "usage: $0 start|stop keepalived|nginx|smtpd" >&2; exit 2; } ;;
*) echo "usage: $0 start|stop keepalived|nginx|smtpd" >&2; exit 2 ;;
esac
