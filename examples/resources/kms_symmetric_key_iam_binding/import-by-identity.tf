import {
  to = kms_symmetric_key_iam_binding.users
  identity = {
    symmetric_key_id = "abj5rje5m43i0hsk53gl"
    role             = "kms.keys.encrypterDecrypter"
  }
}
