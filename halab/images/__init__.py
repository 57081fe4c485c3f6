"""Images: Packer builds (packer.py) and AMI publishing (ami.py)."""
