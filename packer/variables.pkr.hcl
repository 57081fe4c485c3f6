# Every input of the image build, typed and described. `invoke image.build` sets them
# from the pins, the OS vars file and the git checkout; people rarely need to.

variable "os_name" {
  type        = string
  description = "Distribution: rocky, rhel or debian."
}

variable "os_version" {
  type        = string
  description = "Major version: 8 or 9."
}

variable "iso_url" {
  type        = string
  default     = ""
  description = "Install ISO (boot or DVD). For RHEL: your own download location, never committed. For Debian: the base disk image (invoke image.base)."
}

variable "iso_checksum" {
  type        = string
  default     = ""
  description = "ISO checksum, e.g. file:<url of Rocky's CHECKSUM file> or sha256:<hex>."
}

variable "guest_os_type" {
  type        = string
  default     = "RedHat_64"
  description = "VirtualBox guest OS type."
}

variable "keepalived_version" {
  type        = string
  description = "Pinned keepalived version (pins.yaml)."
}

variable "keepalived_tarball" {
  type        = string
  description = "Local path of the keepalived tarball, fetched and sha256-verified on the build host; uploaded to the guest."
}

variable "keepalived_sha256" {
  type        = string
  description = "sha256 of the keepalived tarball, recorded in the manifest."
}

variable "nginx_version" {
  type        = string
  description = "Pinned nginx version (pins.yaml)."
}

variable "nginx_tarball" {
  type        = string
  description = "Local path of the verified nginx tarball; uploaded to the guest."
}

variable "nginx_sha256" {
  type        = string
  description = "sha256 of the nginx tarball, recorded in the manifest."
}

variable "git_revision" {
  type        = string
  default     = "unknown"
  description = "The project's git revision, recorded in the manifest and the AMI's tags."
}

variable "build_inputs" {
  type        = string
  description = "Digest of the pins and provision scripts: matches the image to the acceptance runs that proved them."
}

variable "input_hash" {
  type        = string
  description = "Hash of everything that decides the image (build_inputs, templates, kickstart, vars); names and tags it."
}

variable "output_dir" {
  type        = string
  default     = "output"
  description = "Where boxes, disk images and manifest.json go."
}

variable "accelerator" {
  type        = string
  default     = "kvm"
  description = "QEMU accelerator of the build VM: kvm, or tcg where /dev/kvm runs no guest (invoke probes it)."
}

variable "ssh_private_key_file" {
  type        = string
  default     = ""
  description = "Debian: Vagrant's insecure private key, which the base image's vagrant user accepts."
}

variable "cpus" {
  type        = number
  default     = 2
  description = "vCPUs of the build VM."
}

variable "memory" {
  type        = number
  default     = 2048
  description = "MiB of memory of the build VM."
}

variable "disk_size" {
  type        = number
  default     = 20480
  description = "MiB of disk of the image."
}

variable "headless" {
  type        = bool
  default     = true
  description = "Run the local build VMs without a window."
}

variable "ssh_password" {
  type        = string
  default     = "vagrant"
  description = "The vagrant user's build-time password (set by the kickstart; boxes use key auth)."
  sensitive   = true
}

variable "aws_region" {
  type        = string
  default     = "eu-west-1"
  description = "Region the AMI is built in (ami.publish copies it elsewhere)."
}

variable "aws_instance_type" {
  type        = string
  default     = "t3.small"
  description = "Instance type of the AMI build."
}

variable "ami_owner" {
  type        = string
  default     = "792107900819"
  description = "Owner of the source AMI: the Rocky Enterprise Software Foundation."
}

variable "ami_name_filter" {
  type        = string
  default     = ""
  description = "Name filter of the source AMI; the vars file sets one per OS version (newest match wins)."
}

variable "ami_ssh_username" {
  type        = string
  default     = "rocky"
  description = "Login user of the source AMI (rocky; ec2-user for RHEL)."
}

variable "skip_region_validation" {
  type        = bool
  default     = false
  description = "Skip checking aws_region with AWS (validation without credentials)."
}

variable "rhsm_username" {
  type        = string
  default     = ""
  description = "RHEL only: Red Hat subscription user for the build deps (CodeReady Builder); unregistered at the end."
  sensitive   = true
}

variable "rhsm_password" {
  type        = string
  default     = ""
  description = "RHEL only: Red Hat subscription password."
  sensitive   = true
}
