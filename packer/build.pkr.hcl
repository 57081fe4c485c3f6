# One build for every target: the same provisioning (provision/image.sh, shared with the
# host builds and Vagrant), then a Vagrant box for the local hypervisors and a manifest
# whose custom data says exactly what went in.

build {
  sources = ["source.qemu.rocky", "source.virtualbox-iso.rocky", "source.amazon-ebs.rocky", "source.qemu.debian"]

  provisioner "shell" {
    inline = ["mkdir -p '/tmp/halab/provision'"]
  }

  provisioner "file" {
    source      = "${path.root}/../provision/"
    destination = "/tmp/halab/provision"
  }

  provisioner "file" {
    source      = var.keepalived_tarball
    destination = "/tmp/halab/keepalived-${var.keepalived_version}.tar.gz"
  }

  provisioner "file" {
    source      = var.nginx_tarball
    destination = "/tmp/halab/nginx-${var.nginx_version}.tar.gz"
  }

  # The credentials travel in a file Packer writes with each value single-quoted, mode 0600,
  # removed after the run (use_env_var_file), which root's shell sources: no shell ever
  # parses them as code, and no command line holds them. (Packer's already-quoted
  # {{ .Vars }} inside sh -c '...' were unquoted by it: a password with a space ran no
  # provisioning at all, and the bake exited 0.)
  provisioner "shell" {
    use_env_var_file = true
    execute_command  = "chmod +x {{ .Path }}; sudo sh -c '. {{ .EnvVarFile }} && {{ .Path }}'"
    environment_vars = ["RHSM_USERNAME=${var.rhsm_username}", "RHSM_PASSWORD=${var.rhsm_password}"]
    inline = [
      "sh '/tmp/halab/provision/image.sh' '/tmp/halab/keepalived-${var.keepalived_version}.tar.gz' '/tmp/halab/nginx-${var.nginx_version}.tar.gz'",
    ]
  }

  # No image without its provisioning: image.sh's last command leaves this mark (in /run, so
  # never in the image), and a bake without it fails here, before any post-processor
  # records an image under its input hash.
  provisioner "shell" {
    inline = ["test -e '/run/halab-provisioned' || { echo 'provision/image.sh did not run to its end: no image is recorded' >&2; exit 1; }"]
  }

  # A chain: the manifest records what the vagrant post-processor made (the .box) for the
  # local hypervisors, and the AMI itself for amazon-ebs (vagrant is skipped there).
  post-processors {
    post-processor "vagrant" {
      only   = ["qemu.rocky", "virtualbox-iso.rocky", "qemu.debian"]
      output = "${var.output_dir}/${local.image}-{{ .Provider }}.box"
    }

    post-processor "manifest" {
      output     = "${var.output_dir}/manifest.json"
      strip_path = false
      custom_data = {
        os                 = "${var.os_name}-${var.os_version}"
        keepalived_version = var.keepalived_version
        keepalived_sha256  = var.keepalived_sha256
        nginx_version      = var.nginx_version
        nginx_sha256       = var.nginx_sha256
        git_revision       = var.git_revision
        input_hash         = var.input_hash
        build_inputs       = var.build_inputs
      }
    }
  }
}
