resource "kms_symmetric_key" "app" {
  name = "app"
}

# Terraform >= 1.11 and OpenTofu >= 1.11: the plaintext is write-only and comes from an
# ephemeral variable, so it is in neither the plan nor the state. Bump plaintext_wo_version to
# encrypt a new value.
variable "db_password" {
  type      = string
  sensitive = true
  ephemeral = true
}

resource "kms_secret_ciphertext" "db_password" {
  key_id               = kms_symmetric_key.app.id
  aad_context          = "db-password"
  plaintext_wo         = var.db_password
  plaintext_wo_version = 1
}

# Older CLIs (Terraform 1.5–1.10, OpenTofu 1.6–1.10): plaintext, stored in the state as a
# sensitive value.
resource "kms_secret_ciphertext" "legacy" {
  key_id      = kms_symmetric_key.app.id
  aad_context = "legacy"
  plaintext   = "not so secret"
}
