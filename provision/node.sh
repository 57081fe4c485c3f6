#!/bin/sh
# Give a node its role from the files `invoke lab.render` wrote for it (run as root in a
# Vagrant VM, from the synced folder). Idempotent: a second run changes nothing.
# usage: node.sh director|realserver|client RENDERED_NODE_DIR [MAILDIR]
# keepalived and nginx are already installed (the baked box, or build-*.sh just before).
# On a baked box every package it asks for is already there: it needs no network.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
ROLE=$1
FILES=$2
MAILDIR=${3:-}  # the client's: where its SMTP server keeps keepalived's mail

unit() {  # unit NAME TEXT: install a systemd unit and enable+start it
    printf '%s\n' "$2" > "/etc/systemd/system/$1.service"
    systemctl daemon-reload
    systemctl enable --now "$1" >/dev/null
}

# The acceptance suite logs in as root with the key Vagrant gave this VM (sshd's default
# PermitRootLogin prohibit-password allows keys only).
install -d -m 0700 /root/.ssh
install -m 0600 /home/vagrant/.ssh/authorized_keys /root/.ssh/authorized_keys

[ "$ROLE" = client ] || open_firewall

case "$ROLE" in
director)
    step "director: IPVS modules, sysctls, keepalived.conf, keepalived enabled"
    install_packages "ipvsadm" "ipvsadm"
    modprobe ip_vs
    echo ip_vs > /etc/modules-load.d/ip_vs.conf
    install -m 0644 "$FILES/etc/sysctl.d/90-lvs-director.conf" /etc/sysctl.d/90-lvs-director.conf
    sysctl -q -p /etc/sysctl.d/90-lvs-director.conf
    # Every file the lab places there: the rendered keepalived.conf, or an imported one with
    # its includes and scripts (`lab.import --file`), root's alone (auth_pass may be anywhere).
    # A second run starts from the lab's files alone: one removed since (an included
    # conf.d/*.conf, say) must not stay behind to be picked up.
    mkdir -p /etc/keepalived/
    find /etc/keepalived -mindepth 1 -delete
    cp -R "$FILES/etc/keepalived/." /etc/keepalived/
    chmod -R go-rwx /etc/keepalived
    install -m 0755 "$FILES/usr/local/sbin/halab-notify" /usr/local/sbin/halab-notify  # its notify script
    # Options for keepalived's unit (EnvironmentFile in the build's sysconfdir), rendered only
    # for a lab with vrrp.lvs_sync_daemon; otherwise the build's own file stays.
    if [ -f "$FILES/etc/sysconfig/keepalived" ]; then
        install -m 0644 "$FILES/etc/sysconfig/keepalived" /usr/local/keepalived/etc/sysconfig/keepalived
    fi
    systemctl enable keepalived >/dev/null && systemctl restart keepalived
    ;;
realserver)
    # lvs-realserver is rendered for the lab's method: DR, the VIP on lo; TUN, ipip loaded
    # and the VIP on tunl0 with rp_filter off; NAT, the default route via the gateway.
    step "real server: the forwarding method's setup (a unit before nginx), nginx files, nginx enabled"
    install_packages "arptables" "arptables" || install_packages "" "iptables-arptables"
    install -m 0755 "$FILES/usr/local/sbin/lvs-realserver" /usr/local/sbin/lvs-realserver
    # nginx's conf and pages as the lab places them (rendered, or an imported nginx.conf).
    cp -R "$FILES/usr/local/nginx/conf/." /usr/local/nginx/conf/
    cp -R "$FILES/usr/local/nginx/html/." /usr/local/nginx/html/
    chmod -R a+rX,go-w /usr/local/nginx/conf /usr/local/nginx/html
    command -v restorecon >/dev/null 2>&1 && restorecon -R /usr/local/nginx /usr/local/sbin
    unit lvs-realserver "[Unit]
Description=LVS real server: the lab's forwarding method (VIP on lo or tunl0, or the NAT route) (halab)
Before=nginx.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/lvs-realserver start
ExecStop=/usr/local/sbin/lvs-realserver stop
[Install]
WantedBy=multi-user.target"
    systemctl enable nginx >/dev/null && systemctl restart nginx
    ;;
client)
    [ -n "$MAILDIR" ] || { echo "usage: $0 client RENDERED_NODE_DIR MAILDIR" >&2; exit 2; }
    step "client: curl, python3 and an SMTP server collecting keepalived's mail in $MAILDIR"
    install_packages "curl" "curl"
    install_smtp_sink
    mkdir -p "$(dirname "$MAILDIR")"
    address=$(ip -4 -o addr show dev eth1 | awk '{split($4, a, "/"); print a[1]}')
    unit halab-smtpd "[Unit]
Description=SMTP sink for keepalived's notifications (halab)
After=network-online.target
[Service]
ExecStart=/usr/bin/python3 -m aiosmtpd -n -l $address:25 -c aiosmtpd.handlers.Mailbox $MAILDIR
[Install]
WantedBy=multi-user.target"
    ;;
*)
    echo "usage: $0 director|realserver|client RENDERED_NODE_DIR [MAILDIR]" >&2
    exit 2
    ;;
esac
