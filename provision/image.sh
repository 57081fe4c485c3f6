#!/bin/sh
# Bake an image (run by Packer as root in the build VM): keepalived and nginx compiled
# from the uploaded, already-verified tarballs, the LVS tools, the firewall and SELinux
# ready for a director or real server, the services installed but not enabled (the lab
# enables them per role), and the image cleaned for cloning.
# usage: image.sh KEEPALIVED_TARBALL NGINX_TARBALL
# Environment: RHSM_USERNAME / RHSM_PASSWORD (RHEL only) to reach CodeReady Builder (rhsm.sh).
# Its last command leaves the mark that the bake's next step checks: an image whose
# provisioning did not run to its end is never recorded.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/rhsm.sh"
KEEPALIVED_TARBALL=$1
NGINX_TARBALL=$2

registered=""
if [ -n "${RHSM_USERNAME:-}" ] && command -v subscription-manager >/dev/null 2>&1; then
    rhsm_register
    registered=yes
fi

sh "$HERE/build-keepalived.sh" "$KEEPALIVED_TARBALL"
sh "$HERE/build-nginx.sh" "$NGINX_TARBALL"

step "LVS tools: ipvsadm, arptables"
install_packages "ipvsadm arptables" "ipvsadm"
command -v arptables >/dev/null 2>&1 || install_packages "" "arptables" || install_packages "" "iptables-arptables"

step "kernel modules of every forwarding method: ip_vs and its schedulers (directors), ipip (TUN)"
kernel_modules ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ipip

step "every role's packages, so a VM from this image needs no network: curl, the SMTP sink"
install_packages "curl" "curl"
install_smtp_sink

open_firewall

if command -v getenforce >/dev/null 2>&1 && [ "$(getenforce)" != "Disabled" ]; then
    step "SELinux stays enforcing: label the from-source binaries as the packaged ones are"
    install_packages "" "policycoreutils-python-utils"
    label() { semanage fcontext -a -t "$1" "$2" 2>/dev/null || semanage fcontext -m -t "$1" "$2"; }
    label keepalived_exec_t '/usr/local/keepalived/sbin/keepalived'
    label httpd_exec_t '/usr/local/nginx/sbin/nginx'
    label httpd_config_t '/usr/local/nginx/conf(/.*)?'
    label httpd_sys_content_t '/usr/local/nginx/html(/.*)?'
    label httpd_log_t '/usr/local/nginx/logs(/.*)?'
    label httpd_log_t '/var/log/nginx(/.*)?'
    restorecon -R /usr/local/keepalived /usr/local/nginx /usr/local/sbin /etc/systemd/system /var/log/nginx
fi

step "services installed, not enabled: the lab enables them per role"
if has_systemd; then systemctl disable keepalived nginx >/dev/null 2>&1 || true; fi

step "cleaning the image: caches, logs, machine-id, ssh host keys"
if [ -n "$registered" ]; then rhsm_unregister; fi
if command -v dnf >/dev/null 2>&1; then dnf -y -q clean all; fi
if command -v apt-get >/dev/null 2>&1; then apt-get clean; fi
rm -rf /tmp/halab /var/cache/dnf/* /var/tmp/*
find /var/log -type f -exec truncate -s 0 {} +
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/systemd/random-seed

# The mark of a provisioning that ran to its end, in /run: tmpfs, so never in the image.
: > /run/halab-provisioned
