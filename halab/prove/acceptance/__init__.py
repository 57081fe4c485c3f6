"""The acceptance suite users run (`invoke test.acceptance`): pytest + testinfra over a lab's ssh_config."""

# The versions the suite proves the shipped labs with when no lab file is given. The lab
# files' default nginx (1.17.8, the write-up's) exists only upstream; Debian's source
# archive has these two, byte-identical to upstream's tarballs.
SUITE_VERSIONS = {"keepalived": "2.2.7", "nginx": "1.22.1"}
