# Rocky Linux 9: the boot ISO from Rocky's mirror, verified against the CHECKSUM file beside it.
os_name         = "rocky"
os_version      = "9"
iso_url         = "https://download.rockylinux.org/pub/rocky/9/isos/x86_64/Rocky-9-latest-x86_64-boot.iso"
iso_checksum    = "file:https://download.rockylinux.org/pub/rocky/9/isos/x86_64/CHECKSUM"
guest_os_type   = "RedHat_64"
ami_name_filter = "Rocky-9-EC2-Base-9.*.x86_64"
