import {
  to = kms_symmetric_key.secrets
  id = "abj5rje5m43i0hsk53gl"
}
