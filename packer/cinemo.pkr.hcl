# cinemo AMI: the release binary, baked with ansible/host.yml, for x86_64 and
# arm64 (Graviton). One AMI serves both tiers; user data picks the tier.
#
#   packer init packer/ && packer build \
#     -var binary_x86_64=dist/cinemo-x86_64 -var binary_arm64=dist/cinemo-arm64 \
#     -var version=1.4.0 -var git_sha=$(git rev-parse --short=12 HEAD) -var channel=edge packer/
#
# Output: packer/manifest.json (see docs/host.md, "The Packer manifest").
# Debian's Packer 1.6.6 rejects the `packer {}` block below; everything
# after it stays 1.6.6-compatible so a local bake against moto can strip it.

packer {
  required_version = ">= 1.10.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "~> 1.3"
    }
    ansible = {
      source  = "github.com/hashicorp/ansible"
      version = "~> 1.1"
    }
  }
}

variable "version" {
  type        = string
  description = "cinemo version being baked (semver), tagged on the AMI."
}

variable "git_sha" {
  type        = string
  description = "Git commit of the binary, tagged on the AMI."
}

variable "channel" {
  type        = string
  description = "Release channel: edge or stable."
  validation {
    condition     = var.channel == "edge" || var.channel == "stable"
    error_message = "The channel must be edge or stable."
  }
}

variable "binary_x86_64" {
  type        = string
  description = "Path to the x86_64 release binary (target/release/cinemo)."
}

variable "binary_arm64" {
  type        = string
  description = "Path to the aarch64 release binary, from the release workflow."
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "ami_regions" {
  type        = list(string)
  default     = []
  description = "Further regions to copy the AMI to; each copy is listed in the manifest."
}

variable "aws_endpoint_url" {
  type        = string
  default     = ""
  description = "EC2 endpoint override (a local moto server); empty for AWS."
}

variable "skip_region_validation" {
  type    = bool
  default = false
}

variable "communicator" {
  type        = string
  default     = "ssh"
  description = "ssh (over Session Manager) for real bakes; none for a metadata-only bake against moto."
}

variable "iam_instance_profile" {
  type        = string
  default     = "cinemo-packer-build"
  description = "Instance profile of the build instance; needs AmazonSSMManagedInstanceCore for Session Manager."
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "A build subnet to use instead of the tagged one (see subnet_filter); it needs a route out."
}

variable "source_ami_owner" {
  type        = string
  default     = "136693071363"
  description = "Debian's official AWS account."
}

variable "source_ami_name_x86_64" {
  type    = string
  default = "debian-12-amd64-*"
}

variable "source_ami_name_arm64" {
  type    = string
  default = "debian-12-arm64-*"
}

variable "instance_type_x86_64" {
  type    = string
  default = "t3.small"
}

variable "instance_type_arm64" {
  type    = string
  default = "t4g.small"
}

variable "kms_key_id" {
  type        = string
  default     = ""
  description = "KMS key for the AMI's snapshots; empty uses the account's default EBS key."
}

variable "root_volume_gb" {
  type    = number
  default = 8
}

locals {
  stamp = formatdate("YYYYMMDDhhmmss", timestamp())
  # Session Manager carries SSH for the build: no inbound rule anywhere.
  ssh_interface = var.communicator == "ssh" ? "session_manager" : ""
}

source "amazon-ebs" "x86_64" {
  region                 = var.region
  ami_regions            = var.ami_regions
  custom_endpoint_ec2    = var.aws_endpoint_url
  skip_region_validation = var.skip_region_validation

  ami_name        = "cinemo-${var.channel}-${var.version}-x86_64-${local.stamp}"
  ami_description = "cinemo ${var.version} (${var.git_sha}, ${var.channel}) x86_64"
  instance_type   = var.instance_type_x86_64
  ena_support     = true

  source_ami_filter {
    owners      = [var.source_ami_owner]
    most_recent = true
    filters = {
      name                = var.source_ami_name_x86_64
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.root_volume_gb
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    encrypted             = true
    delete_on_termination = true
  }
  encrypt_boot = true
  kms_key_id   = var.kms_key_id

  communicator                          = var.communicator
  ssh_username                          = "admin"
  ssh_interface                         = local.ssh_interface
  iam_instance_profile                  = var.iam_instance_profile
  associate_public_ip_address           = false
  temporary_security_group_source_cidrs = ["127.0.0.1/32"]
  # Debian's AMIs have no SSM agent: install it before Packer connects.
  user_data_file = "${path.root}/ssm-agent-user-data.sh"

  # The build subnet the network role creates (a route out through NAT for
  # the SSM endpoints, S3 and apt); Packer stops with "No subnet was found
  # matching filters" when there is none. subnet_id, when set, wins.
  subnet_id = var.subnet_id
  subnet_filter {
    filters = {
      "tag:cinemo:purpose" = "packer-build"
    }
    most_free = true
  }

  # The rollout and `promote.yml` find AMIs by these tags.
  tags = {
    Name    = "cinemo-${var.channel}-${var.version}-x86_64"
    service = "cinemo"
    version = var.version
    git_sha = var.git_sha
    channel = var.channel
    arch    = "x86_64"
  }
  snapshot_tags = {
    service = "cinemo"
    version = var.version
    git_sha = var.git_sha
    channel = var.channel
    arch    = "x86_64"
  }
  run_tags      = { Name = "packer-cinemo-x86_64", service = "cinemo-bake" }
}

source "amazon-ebs" "arm64" {
  region                 = var.region
  ami_regions            = var.ami_regions
  custom_endpoint_ec2    = var.aws_endpoint_url
  skip_region_validation = var.skip_region_validation

  ami_name        = "cinemo-${var.channel}-${var.version}-arm64-${local.stamp}"
  ami_description = "cinemo ${var.version} (${var.git_sha}, ${var.channel}) arm64"
  instance_type   = var.instance_type_arm64
  ena_support     = true

  source_ami_filter {
    owners      = [var.source_ami_owner]
    most_recent = true
    filters = {
      name                = var.source_ami_name_arm64
      architecture        = "arm64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.root_volume_gb
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    encrypted             = true
    delete_on_termination = true
  }
  encrypt_boot = true
  kms_key_id   = var.kms_key_id

  communicator                          = var.communicator
  ssh_username                          = "admin"
  ssh_interface                         = local.ssh_interface
  iam_instance_profile                  = var.iam_instance_profile
  associate_public_ip_address           = false
  temporary_security_group_source_cidrs = ["127.0.0.1/32"]
  # Debian's AMIs have no SSM agent: install it before Packer connects.
  user_data_file = "${path.root}/ssm-agent-user-data.sh"

  # The build subnet the network role creates (a route out through NAT for
  # the SSM endpoints, S3 and apt); Packer stops with "No subnet was found
  # matching filters" when there is none. subnet_id, when set, wins.
  subnet_id = var.subnet_id
  subnet_filter {
    filters = {
      "tag:cinemo:purpose" = "packer-build"
    }
    most_free = true
  }

  # The rollout and `promote.yml` find AMIs by these tags.
  tags = {
    Name    = "cinemo-${var.channel}-${var.version}-arm64"
    service = "cinemo"
    version = var.version
    git_sha = var.git_sha
    channel = var.channel
    arch    = "arm64"
  }
  snapshot_tags = {
    service = "cinemo"
    version = var.version
    git_sha = var.git_sha
    channel = var.channel
    arch    = "arm64"
  }
  run_tags      = { Name = "packer-cinemo-arm64", service = "cinemo-bake" }
}

build {
  sources = ["source.amazon-ebs.x86_64", "source.amazon-ebs.arm64"]

  # Same role as CI applies to its throwaway root; each architecture gets its
  # own binary.
  provisioner "ansible" {
    only             = ["amazon-ebs.x86_64"]
    playbook_file    = "${path.root}/../ansible/host.yml"
    user             = "admin"
    use_proxy        = false
    extra_arguments  = ["--become", "-e", "cinemo_binary_src=${var.binary_x86_64}"]
    ansible_env_vars = ["ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_ROLES_PATH=${path.root}/../ansible/roles"]
  }

  provisioner "ansible" {
    only             = ["amazon-ebs.arm64"]
    playbook_file    = "${path.root}/../ansible/host.yml"
    user             = "admin"
    use_proxy        = false
    extra_arguments  = ["--become", "-e", "cinemo_binary_src=${var.binary_arm64}"]
    ansible_env_vars = ["ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_ROLES_PATH=${path.root}/../ansible/roles"]
  }

  # Run the real cinemo-bootstrap unit against a local SSM stand-in, then
  # the real cinemo unit in a safe mode (both tiers on loopback, SQLite in
  # the state dir, no export), ask `cinemo healthcheck`, check that nothing
  # but sshd listens beyond loopback, then leave no trace.
  provisioner "file" {
    source      = "${path.root}/smoke-ssm.py"
    destination = "/tmp/cinemo-smoke-ssm.py"
  }

  provisioner "shell" {
    script          = "${path.root}/smoke.sh"
    execute_command = "sudo sh -eu '{{ .Path }}'"
  }

  post-processor "manifest" {
    output     = "${path.root}/manifest.json"
    strip_path = true
    custom_data = {
      version = var.version
      git_sha = var.git_sha
      channel = var.channel
    }
  }
}
