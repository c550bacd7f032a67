# A key is imported by its id.
terraform import kms_symmetric_key.secrets abj5rje5m43i0hsk53gl
