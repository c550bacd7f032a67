resource "kms_symmetric_key" "app" {
  name = "app"
}

# Exactly these members hold kms.keys.encrypterDecrypter on the key; other roles are untouched.
resource "kms_symmetric_key_iam_binding" "users" {
  symmetric_key_id = kms_symmetric_key.app.id
  role             = "kms.keys.encrypterDecrypter"
  members = [
    "serviceAccount:billing",
    "userAccount:alice",
  ]
}
