# Two keys in a self-hosted kmsd, managed by Terraform or OpenTofu.
#
#   npm run provider:install            # puts the plugin in ~/.terraform.d/plugins
#   export KMS_ENDPOINT=http://127.0.0.1:8443 KMS_TOKEN=$(cat kms-data/admin.token)
#   terraform init && terraform apply   # or: tofu init && tofu apply
#
# The explicit host in `source` makes Terraform (default registry.terraform.io) and OpenTofu
# (default registry.opentofu.org) resolve the same filesystem-mirror directory.
terraform {
  required_version = ">= 1.5"
  required_providers {
    kms = {
      source  = "terraform.local/local/kms"
      version = "~> 0.1"
    }
  }
}

variable "folder_id" {
  description = "Folder that holds the keys."
  type        = string
  default     = "default"
}

# endpoint and token fall back to KMS_ENDPOINT and KMS_TOKEN; keep the token out of the code.
provider "kms" {
  folder_id = var.folder_id
}

# Encrypts application secrets: rotated daily, protected against `terraform destroy`.
resource "kms_symmetric_key" "secrets" {
  name                = "app-secrets"
  description         = "Envelope key for application secrets"
  default_algorithm   = "AES_256"
  rotation_period     = "24h"
  deletion_protection = true

  labels = {
    env   = "prod"
    owner = "platform-team"
  }
}

# Encrypts backups: rotated yearly; the key material never leaves the HSM.
resource "kms_symmetric_key" "backups" {
  name                = "backups"
  description         = "Key for nightly database backups"
  default_algorithm   = "AES_256_HSM"
  rotation_period     = "8760h"
  deletion_protection = false

  labels = {
    env  = "prod"
    tier = ""
  }
}

output "secrets_key_id" {
  value = kms_symmetric_key.secrets.id
}

output "backups_primary_version_id" {
  value = kms_symmetric_key.backups.primary_version_id
}
