resource "kms_symmetric_key" "app" {
  name = "app"
}

# Adds one member to the role, leaving its other members alone.
resource "kms_symmetric_key_iam_member" "viewer" {
  symmetric_key_id = kms_symmetric_key.app.id
  role             = "kms.viewer"
  member           = "serviceAccount:billing"
}
