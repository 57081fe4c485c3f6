# Rocky Linux 8: the boot ISO from Rocky's mirror, verified against the CHECKSUM file beside it.
os_name         = "rocky"
os_version      = "8"
iso_url         = "https://download.rockylinux.org/pub/rocky/8/isos/x86_64/Rocky-8-latest-x86_64-boot.iso"
iso_checksum    = "file:https://download.rockylinux.org/pub/rocky/8/isos/x86_64/CHECKSUM"
guest_os_type   = "RedHat_64"
ami_name_filter = "Rocky-8-EC2-Base-8.*.x86_64"
