# A fresh 256-bit data key for envelope encryption, opened on every run.
ephemeral "kms_data_key" "backup" {
  key_id        = "abj5rje5m43i0hsk53gl"
  aad_context   = "backups"
  data_key_spec = "AES_256"
}

# Keep only the encrypted data key; the plaintext one exists only during the run.
resource "kms_secret_ciphertext" "backup_key" {
  key_id               = "abj5rje5m43i0hsk53gl"
  plaintext_wo         = ephemeral.kms_data_key.backup.ciphertext
  plaintext_wo_version = 1
}
