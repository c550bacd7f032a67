variable "token_ciphertext" {
  description = "A service account token, encrypted with kms_secret_ciphertext or :encrypt."
  type        = string
}

# Decrypted in memory on every run, never stored.
ephemeral "kms_secret_plaintext" "token" {
  key_id      = "abj5rje5m43i0hsk53gl"
  ciphertext  = var.token_ciphertext
  aad_context = "token"
}

# Ephemeral values may configure a provider…
provider "kms" {
  alias = "app"
  token = ephemeral.kms_secret_plaintext.token.plaintext
}

# …or feed a write-only argument.
resource "kms_secret_ciphertext" "copy" {
  key_id               = "abj5rje5m43i0hsk53gl"
  plaintext_wo         = ephemeral.kms_secret_plaintext.token.plaintext
  plaintext_wo_version = 1
}
