#!/bin/sh
# Make an mmdebstrap'ed Debian tree a bootable Vagrant base (run by `invoke image.base` as
# mmdebstrap's customize hook, on the host, with the tree's root as $1).
# The disk around it (one MBR partition labelled "root" at sector 2048) is made by
# halab/images/base.py; this script only writes files inside the tree and GRUB's core
# image, which base.py then places on the disk's first sectors.
# usage: debian.sh ROOT VAGRANT_PUBLIC_KEY
set -eu
ROOT=$1
PUBKEY=$2

# The vagrant user: Vagrant's public insecure key (Packer and the first `vagrant up` log in
# with it; Vagrant then puts a key of its own in), passwordless sudo, no password.
chroot "$ROOT" useradd --create-home --shell /bin/bash vagrant
install -d -m 0700 "$ROOT/home/vagrant/.ssh"
install -m 0600 "$PUBKEY" "$ROOT/home/vagrant/.ssh/authorized_keys"
chroot "$ROOT" chown -R vagrant:vagrant /home/vagrant/.ssh
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' > "$ROOT/etc/sudoers.d/vagrant"
chmod 0440 "$ROOT/etc/sudoers.d/vagrant"

# The management NIC (eth0: net.ifnames=0 keeps the kernel's names) by DHCP; Vagrant adds
# the lab NIC (eth1) with its static address to this file at `vagrant up`.
cat > "$ROOT/etc/network/interfaces" <<'NET'
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

allow-hotplug eth0
iface eth0 inet dhcp
NET
echo halab > "$ROOT/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 halab\n' > "$ROOT/etc/hosts"
echo 'LABEL=root / ext4 errors=remount-ro 0 1' > "$ROOT/etc/fstab"

# sshd host keys are made at boot when missing: images are cleaned of them (provision/image.sh),
# and Debian, unlike Rocky (sshd-keygen), makes them only when the package is installed.
cat > "$ROOT/etc/systemd/system/ssh-host-keys.service" <<'UNIT'
[Unit]
Description=Make the ssh host keys this machine lacks
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
UNIT
chroot "$ROOT" systemctl enable ssh-host-keys.service >/dev/null 2>&1

# GRUB without grub-install (no block device here): a config that boots the kernel on the
# partition labelled root, and a core image that finds that config on the first partition.
mkdir -p "$ROOT/boot/grub"
cat > "$ROOT/boot/grub/grub.cfg" <<'GRUB'
set timeout=0
linux /vmlinuz root=LABEL=root ro console=tty0 console=ttyS0,115200 net.ifnames=0 biosdevname=0
initrd /initrd.img
boot
GRUB
chroot "$ROOT" grub-mkimage -O i386-pc -o /boot/grub/core.img -p '(hd0,msdos1)/boot/grub' \
    biosdisk part_msdos ext2 normal linux configfile boot
