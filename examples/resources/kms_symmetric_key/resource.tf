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
