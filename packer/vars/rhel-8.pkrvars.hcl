# RHEL 8: Red Hat's DVD ISO is behind a login, so iso_url and iso_checksum (and the
# subscription, rhsm_username / rhsm_password) come from you at build time, never from
# this repository: invoke image.build --os rhel-8 --var iso_url=... --var iso_checksum=sha256:...
os_name          = "rhel"
os_version       = "8"
guest_os_type    = "RedHat_64"
ami_owner        = "309956199498"
ami_name_filter  = "RHEL-8.*_HVM-*-x86_64-*-Hourly2-GP*"
ami_ssh_username = "ec2-user"
