# A binding is imported by "<symmetric_key_id>,<role>".
terraform import kms_symmetric_key_iam_binding.users "abj5rje5m43i0hsk53gl,kms.keys.encrypterDecrypter"
