# A member is imported by "<symmetric_key_id>,<role>,<member>".
terraform import kms_symmetric_key_iam_member.viewer "abj5rje5m43i0hsk53gl,kms.viewer,serviceAccount:billing"
