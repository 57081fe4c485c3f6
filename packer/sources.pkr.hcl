# The ways an image is made: a QEMU disk installed from Rocky's ISO (libvirt box), a
# VirtualBox VM (virtualbox box), an EBS-backed AMI started from the official Rocky AMI,
# and a QEMU disk started from Debian's base disk image (libvirt box; `invoke image.base`
# makes it from the Debian archive, where no install ISO can be had).

locals {
  image        = "halab-${var.os_name}-${var.os_version}"
  short_hash   = substr(var.input_hash, 0, 12)
  boot_command = ["<up><tab> inst.text inst.ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ks.cfg net.ifnames=0 biosdevname=0<enter><wait>"]
  image_tags = {
    Name              = "${local.image}-${local.short_hash}"
    Family            = local.image
    OS                = "${var.os_name}-${var.os_version}"
    KeepalivedVersion = var.keepalived_version
    NginxVersion      = var.nginx_version
    InputHash         = var.input_hash
    GitRevision       = var.git_revision
  }
}

source "qemu" "rocky" {
  iso_url          = var.iso_url
  iso_checksum     = var.iso_checksum
  http_directory   = "${path.root}/http"
  boot_command     = local.boot_command
  boot_wait        = "10s"
  accelerator      = var.accelerator
  cpus             = var.cpus
  memory           = var.memory
  disk_size        = var.disk_size
  format           = "qcow2"
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  headless         = var.headless
  ssh_username     = "vagrant"
  ssh_password     = var.ssh_password
  ssh_timeout      = "60m"
  shutdown_command = "sudo systemctl poweroff"
  output_directory = "${var.output_dir}/${local.image}-libvirt"
  vm_name          = "${local.image}.qcow2"
}

source "qemu" "debian" {
  disk_image           = true
  iso_url              = var.iso_url
  iso_checksum         = var.iso_checksum
  accelerator          = var.accelerator
  cpus                 = var.cpus
  memory               = var.memory
  disk_size            = var.disk_size
  format               = "qcow2"
  disk_interface       = "virtio"
  net_device           = "virtio-net"
  headless             = var.headless
  ssh_username         = "vagrant"
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "20m"
  shutdown_command     = "sudo systemctl poweroff"
  output_directory     = "${var.output_dir}/${local.image}-libvirt"
  vm_name              = "${local.image}.qcow2"
}

source "virtualbox-iso" "rocky" {
  iso_url                 = var.iso_url
  iso_checksum            = var.iso_checksum
  http_directory          = "${path.root}/http"
  boot_command            = local.boot_command
  boot_wait               = "10s"
  guest_os_type           = var.guest_os_type
  cpus                    = var.cpus
  memory                  = var.memory
  disk_size               = var.disk_size
  hard_drive_interface    = "sata"
  guest_additions_mode    = "disable"
  headless                = var.headless
  ssh_username            = "vagrant"
  ssh_password            = var.ssh_password
  ssh_timeout             = "60m"
  shutdown_command        = "sudo systemctl poweroff"
  output_directory        = "${var.output_dir}/${local.image}-virtualbox"
  vm_name                 = local.image
}

source "amazon-ebs" "rocky" {
  region                 = var.aws_region
  skip_region_validation = var.skip_region_validation
  instance_type          = var.aws_instance_type
  ssh_username           = var.ami_ssh_username
  ami_name               = "${local.image}-${local.short_hash}-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  ami_description        = "halab ${var.os_name} ${var.os_version}: keepalived ${var.keepalived_version} and nginx ${var.nginx_version} from source"
  tags                   = local.image_tags
  snapshot_tags          = local.image_tags

  source_ami_filter {
    filters = {
      name                = var.ami_name_filter
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = [var.ami_owner]
    most_recent = true
  }
}
