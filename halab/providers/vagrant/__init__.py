"""The Vagrant lab: the provider (VMs via python-vagrant) and where their libvirt lives (libvirt.py)."""
