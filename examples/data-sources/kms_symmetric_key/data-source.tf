# By id…
data "kms_symmetric_key" "by_id" {
  symmetric_key_id = "abj5rje5m43i0hsk53gl"
}

# …or by name within a folder (the provider's folder_id unless set).
data "kms_symmetric_key" "by_name" {
  name      = "app-secrets"
  folder_id = "default"
}
