#!/bin/sh
# The write-up's real-server commands, as it gives them for server1 (172.25.1.101) and
# server2 (172.25.1.102), with its erratum kept: each mangles the VIP's ARP source into
# the wrong address (.102 on server1, .103 on server2) instead of its own. One script for
# both: it picks the write-up's lines by the address this real server has.
# halab runs it as `lvs-realserver start` on each real server (lab.import --realserver-setup).
set -eu
VIP=172.25.1.100
case "${1:-start}" in
start) ;;
*) exit 0 ;;
esac
if ip -4 -o addr show | grep -q ' inet 172\.25\.1\.101/'; then
    MANGLE=172.25.1.102
elif ip -4 -o addr show | grep -q ' inet 172\.25\.1\.102/'; then
    MANGLE=172.25.1.103
else
    echo "not one of the write-up's real servers (172.25.1.101, 172.25.1.102)" >&2
    exit 1
fi
ip addr add "$VIP/32" dev lo
arptables -A INPUT -d "$VIP" -j DROP
arptables -A OUTPUT -s "$VIP" -j mangle --mangle-ip-s "$MANGLE"
