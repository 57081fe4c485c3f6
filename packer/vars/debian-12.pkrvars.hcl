# Debian 12: no install ISO; Packer starts from the base disk image `invoke image.base`
# makes from the Debian archive (iso_url, iso_checksum and the vagrant user's key come from
# invoke). What CI bakes and boots: the same provision/ scripts as Rocky; libvirt only.
os_name    = "debian"
os_version = "12"
disk_size  = 4096
memory     = 1024
