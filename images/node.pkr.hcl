# Rendered by `strata images` from src/strata/spec/catalog/toolchains.csv
# (toolchain cu130): edit that table, not this file.
# Node image for GPU clusters on AWS and GCP, built with the same Ansible roles that
# configure running nodes (playbooks/node-image.yml):
#   packer init images/node.pkr.hcl
#   packer build -only 'amazon-ebs.gpu_node' -var aws_region=us-east-1 images/node.pkr.hcl
#   packer build -only 'googlecompute.gpu_node' -var gcp_project=my-project images/node.pkr.hcl
packer {
  required_version = ">= 1.10.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "~> 1.3"
    }
    googlecompute = {
      source  = "github.com/hashicorp/googlecompute"
      version = "~> 1.1"
    }
    ansible = {
      source  = "github.com/hashicorp/ansible"
      version = "~> 1.1"
    }
  }
}

variable "aws_region" {
  type        = string
  default     = "us-east-1"
  description = "Region the AMI is built in."
}

variable "aws_build_instance_type" {
  type        = string
  default     = "m7i.2xlarge"
  description = "Instance that builds the AMI; it needs no GPU (the roles install without one)."
}

variable "gcp_project" {
  type        = string
  default     = ""
  description = "Project the GCE image is built in."
}

variable "gcp_zone" {
  type        = string
  default     = "us-central1-a"
  description = "Zone of the GCE build machine."
}

locals {
  toolchain  = "cu130"
  image_name = "strata-node-cu130-${formatdate("YYYYMMDDhhmm", timestamp())}"
  versions = {
    torch         = "2.13.0"
    cuda          = "13.0"
    driver_branch = "580"
    nccl          = "2.29.7"
    efa_installer = "1.45.1"
    aws_ofi_nccl  = "1.17.2"
    dcgm          = "datacenter-gpu-manager-4-cuda13"
  }
}

source "amazon-ebs" "gpu_node" {
  region        = var.aws_region
  instance_type = var.aws_build_instance_type
  ami_name      = local.image_name
  ssh_username  = "ubuntu"
  source_ami_filter {
    filters = {
      name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["099720109477"]
    most_recent = true
  }
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  imds_support = "v2.0"
  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = 200
    volume_type           = "gp3"
    encrypted             = true
    delete_on_termination = true
  }
  tags = merge(local.versions, { Name = local.image_name, "strata:toolchain" = local.toolchain })
}

source "googlecompute" "gpu_node" {
  project_id              = var.gcp_project
  zone                    = var.gcp_zone
  machine_type            = "n2-standard-8"
  source_image_family     = "ubuntu-2404-lts-amd64"
  source_image_project_id = ["ubuntu-os-cloud"]
  image_name              = local.image_name
  image_family            = "strata-node-cu130"
  disk_size               = 200
  ssh_username            = "ubuntu"
  use_os_login            = true
  shielded_instance_config {
    enable_secure_boot          = false
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }
  image_labels = {
    strata-toolchain = local.toolchain
  }
}

build {
  sources = ["source.amazon-ebs.gpu_node", "source.googlecompute.gpu_node"]

  provisioner "ansible" {
    playbook_file = "${path.root}/../playbooks/node-image.yml"
    user          = "ubuntu"
    use_proxy     = false
    extra_arguments = [
      "--extra-vars", "nvidia_driver_branch=580",
      "--extra-vars", "nvidia_dcgm_package=datacenter-gpu-manager-4-cuda13",
      "--extra-vars", "nvidia_install_without_gpu=true",
      "--extra-vars", "efa_installer_version=1.45.1",
      # EFA software only in AWS images.
      "--extra-vars", "efa_install_without_device=${source.type == "amazon-ebs"}",
    ]
  }
}
