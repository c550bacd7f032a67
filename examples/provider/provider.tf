terraform {
  required_providers {
    kms = {
      source  = "terraform.local/local/kms"
      version = "~> 0.1"
    }
  }
}

# endpoint, token and folder_id fall back to KMS_ENDPOINT, KMS_TOKEN and KMS_FOLDER_ID:
# keep the token out of the configuration.
provider "kms" {
  endpoint  = "http://127.0.0.1:8443"
  folder_id = "default"
}
