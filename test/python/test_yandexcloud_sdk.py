"""The unmodified Yandex Cloud Python SDK (`yandexcloud` from PyPI) against a real kmsd.

Run by test/integration/grpc-python-sdk.test.ts, which starts kmsd (SoftHSM2, gRPC on a free
port) and passes where it is: KMS_GRPC_ENDPOINT (HOST:PORT, as endpoint discovery advertises it),
KMS_GRPC_CA (the CA certificate kmsd made), KMS_TOKEN (the bootstrap admin token), KMS_FOLDER and
KMS_SA_TOKEN / KMS_SA_ID (a service account with no roles). The SDK runs endpoint discovery at
KMS_GRPC_ENDPOINT first, exactly as against Yandex Cloud.
"""

import os

import grpc
import pytest
import yandexcloud
from google.protobuf.duration_pb2 import Duration
from google.protobuf.empty_pb2 import Empty
from google.protobuf.field_mask_pb2 import FieldMask

from yandex.cloud.access import access_pb2
from yandex.cloud.kms.v1 import symmetric_crypto_service_pb2 as crypto_pb
from yandex.cloud.kms.v1 import symmetric_crypto_service_pb2_grpc as crypto_grpc
from yandex.cloud.kms.v1 import symmetric_key_pb2 as key_pb
from yandex.cloud.kms.v1 import symmetric_key_service_pb2 as svc_pb
from yandex.cloud.kms.v1 import symmetric_key_service_pb2_grpc as svc_grpc
from yandex.cloud.operation import operation_service_pb2, operation_service_pb2_grpc

ENDPOINT = os.environ["KMS_GRPC_ENDPOINT"]
FOLDER = os.environ.get("KMS_FOLDER", "python-sdk")


def ca() -> bytes:
    with open(os.environ["KMS_GRPC_CA"], "rb") as f:
        return f.read()


def sdk(**auth: str) -> yandexcloud.SDK:
    return yandexcloud.SDK(endpoint=ENDPOINT, root_certificates=ca(), **auth)


@pytest.fixture(scope="module")
def admin() -> yandexcloud.SDK:
    return sdk(iam_token=os.environ["KMS_TOKEN"])


def create_key(admin: yandexcloud.SDK, name: str, **fields) -> key_pb.SymmetricKey:
    keys = admin.client(svc_grpc.SymmetricKeyServiceStub)
    op = keys.Create(svc_pb.CreateSymmetricKeyRequest(folder_id=FOLDER, name=name, **fields))
    result = admin.wait_operation_and_get_result(op, response_type=key_pb.SymmetricKey, meta_type=svc_pb.CreateSymmetricKeyMetadata)
    return result.response


def test_discovery_names_every_service_at_kmsd(admin: yandexcloud.SDK) -> None:
    endpoints = admin._channels.endpoints  # what the SDK resolved from ApiEndpointService.List
    for service in ("kms", "kms-crypto", "operation", "iam", "resource-manager", "endpoint"):
        assert endpoints[service] == ENDPOINT


def test_the_whole_key_lifecycle(admin: yandexcloud.SDK) -> None:
    keys = admin.client(svc_grpc.SymmetricKeyServiceStub)
    crypto = admin.client(crypto_grpc.SymmetricCryptoServiceStub)

    # create with labels and a rotation period, then wait for the operation (OperationService.Get)
    op = keys.Create(
        svc_pb.CreateSymmetricKeyRequest(
            folder_id=FOLDER,
            name="py-lifecycle",
            labels={"env": "test", "team": "payments"},
            default_algorithm=key_pb.AES_256,
            rotation_period=Duration(seconds=7 * 24 * 3600),
        )
    )
    assert op.metadata.Is(svc_pb.CreateSymmetricKeyMetadata.DESCRIPTOR)
    result = admin.wait_operation_and_get_result(op, response_type=key_pb.SymmetricKey, meta_type=svc_pb.CreateSymmetricKeyMetadata)
    key = result.response
    assert result.meta.key_id == key.id
    assert key.labels == {"env": "test", "team": "payments"}
    assert key.rotation_period.seconds == 7 * 24 * 3600
    assert key.default_algorithm == key_pb.AES_256
    assert key.status == key_pb.SymmetricKey.ACTIVE
    first_version = key.primary_version.id

    # get, list, list versions
    got = keys.Get(svc_pb.GetSymmetricKeyRequest(key_id=key.id))
    assert got == key
    listed = keys.List(svc_pb.ListSymmetricKeysRequest(folder_id=FOLDER, page_size=1000))
    assert key.id in [k.id for k in listed.keys]
    versions = keys.ListVersions(svc_pb.ListSymmetricKeyVersionsRequest(key_id=key.id))
    assert [v.id for v in versions.key_versions] == [first_version]

    # update with a field mask: only the masked fields change
    op = keys.Update(
        svc_pb.UpdateSymmetricKeyRequest(
            key_id=key.id,
            update_mask=FieldMask(paths=["description", "deletion_protection"]),
            description="updated by the Python SDK",
            name="ignored: not in the mask",
            deletion_protection=True,
        )
    )
    updated = admin.wait_operation_and_get_result(op, response_type=key_pb.SymmetricKey, meta_type=svc_pb.UpdateSymmetricKeyMetadata).response
    assert updated.description == "updated by the Python SDK"
    assert updated.name == "py-lifecycle"
    assert updated.deletion_protection is True

    # encrypt / decrypt with AAD
    enc = crypto.Encrypt(crypto_pb.SymmetricEncryptRequest(key_id=key.id, plaintext=b"card 4111", aad_context=b"order-1"))
    assert enc.key_id == key.id and enc.version_id == first_version
    dec = crypto.Decrypt(crypto_pb.SymmetricDecryptRequest(key_id=key.id, ciphertext=enc.ciphertext, aad_context=b"order-1"))
    assert dec.plaintext == b"card 4111"
    with pytest.raises(grpc.RpcError) as wrong_aad:
        crypto.Decrypt(crypto_pb.SymmetricDecryptRequest(key_id=key.id, ciphertext=enc.ciphertext, aad_context=b"order-2"))
    assert wrong_aad.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # rotate: the response is the SymmetricKey (the annotation's type), with a new primary version
    op = keys.Rotate(svc_pb.RotateSymmetricKeyRequest(key_id=key.id))
    done = operation_service_pb2_grpc.OperationServiceStub
    assert op.response.Is(key_pb.SymmetricKey.DESCRIPTOR), op.response.type_url
    assert op.metadata.Is(svc_pb.RotateSymmetricKeyMetadata.DESCRIPTOR)
    rotated = admin.wait_operation_and_get_result(op, response_type=key_pb.SymmetricKey, meta_type=svc_pb.RotateSymmetricKeyMetadata)
    assert rotated.response.id == key.id
    new_version = rotated.response.primary_version.id
    assert new_version != first_version and rotated.meta.new_primary_version_id == new_version
    assert rotated.response.rotated_at == rotated.response.primary_version.created_at
    assert admin.client(done).Get(operation_service_pb2.GetOperationRequest(operation_id=op.id)).done

    # the old ciphertext still decrypts; reEncrypt moves it to the new primary version
    assert crypto.Decrypt(crypto_pb.SymmetricDecryptRequest(key_id=key.id, ciphertext=enc.ciphertext, aad_context=b"order-1")).version_id == first_version
    re = crypto.ReEncrypt(
        crypto_pb.SymmetricReEncryptRequest(
            key_id=key.id, aad_context=b"order-1", source_key_id=key.id, source_aad_context=b"order-1", ciphertext=enc.ciphertext
        )
    )
    assert re.version_id == new_version and re.source_version_id == first_version
    assert crypto.Decrypt(crypto_pb.SymmetricDecryptRequest(key_id=key.id, ciphertext=re.ciphertext, aad_context=b"order-1")).plaintext == b"card 4111"

    # generateDataKey: the plaintext data key and its ciphertext, which decrypts to it
    dk = crypto.GenerateDataKey(crypto_pb.GenerateDataKeyRequest(key_id=key.id, data_key_spec=key_pb.AES_256, aad_context=b"dk"))
    assert len(dk.data_key_plaintext) == 32
    assert crypto.Decrypt(crypto_pb.SymmetricDecryptRequest(key_id=key.id, ciphertext=dk.data_key_ciphertext, aad_context=b"dk")).plaintext == dk.data_key_plaintext

    # access bindings: add, list, remove
    sa = access_pb2.Subject(id=os.environ["KMS_SA_ID"], type="serviceAccount")
    binding = access_pb2.AccessBinding(role_id="kms.keys.encrypter", subject=sa)
    op = keys.UpdateAccessBindings(
        access_pb2.UpdateAccessBindingsRequest(
            resource_id=key.id, access_binding_deltas=[access_pb2.AccessBindingDelta(action=access_pb2.ADD, access_binding=binding)]
        )
    )
    admin.wait_operation_and_get_result(op, response_type=Empty, meta_type=access_pb2.UpdateAccessBindingsMetadata)
    assert list(keys.ListAccessBindings(access_pb2.ListAccessBindingsRequest(resource_id=key.id)).access_bindings) == [binding]
    op = keys.UpdateAccessBindings(
        access_pb2.UpdateAccessBindingsRequest(
            resource_id=key.id, access_binding_deltas=[access_pb2.AccessBindingDelta(action=access_pb2.REMOVE, access_binding=binding)]
        )
    )
    admin.wait_operation_and_get_result(op, response_type=Empty, meta_type=access_pb2.UpdateAccessBindingsMetadata)
    assert list(keys.ListAccessBindings(access_pb2.ListAccessBindingsRequest(resource_id=key.id)).access_bindings) == []

    # schedule, then cancel, the destruction of the old version
    op = keys.ScheduleVersionDestruction(
        svc_pb.ScheduleSymmetricKeyVersionDestructionRequest(key_id=key.id, version_id=first_version, pending_period=Duration(seconds=3 * 24 * 3600))
    )
    scheduled = admin.wait_operation_and_get_result(
        op, response_type=key_pb.SymmetricKeyVersion, meta_type=svc_pb.ScheduleSymmetricKeyVersionDestructionMetadata
    )
    assert scheduled.response.status == key_pb.SymmetricKeyVersion.SCHEDULED_FOR_DESTRUCTION
    assert scheduled.meta.destroy_at.seconds > 0
    op = keys.CancelVersionDestruction(svc_pb.CancelSymmetricKeyVersionDestructionRequest(key_id=key.id, version_id=first_version))
    cancelled = admin.wait_operation_and_get_result(
        op, response_type=key_pb.SymmetricKeyVersion, meta_type=svc_pb.CancelSymmetricKeyVersionDestructionMetadata
    )
    assert cancelled.response.status == key_pb.SymmetricKeyVersion.ACTIVE

    # deletion protection refuses the delete with FAILED_PRECONDITION; lifted, the delete works
    with pytest.raises(grpc.RpcError) as protected:
        keys.Delete(svc_pb.DeleteSymmetricKeyRequest(key_id=key.id))
    assert protected.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "deletion protection" in protected.value.details()
    op = keys.Update(
        svc_pb.UpdateSymmetricKeyRequest(key_id=key.id, update_mask=FieldMask(paths=["deletion_protection"]), deletion_protection=False)
    )
    admin.wait_operation_and_get_result(op, response_type=key_pb.SymmetricKey)
    op = keys.Delete(svc_pb.DeleteSymmetricKeyRequest(key_id=key.id))
    deleted = admin.wait_operation_and_get_result(op, response_type=key_pb.SymmetricKey, meta_type=svc_pb.DeleteSymmetricKeyMetadata)
    assert deleted.meta.key_id == key.id
    with pytest.raises(grpc.RpcError) as gone:
        keys.Get(svc_pb.GetSymmetricKeyRequest(key_id=key.id))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_wrong_token_is_unauthenticated() -> None:
    keys = sdk(iam_token="kms_not-a-real-token").client(svc_grpc.SymmetricKeyServiceStub)
    with pytest.raises(grpc.RpcError) as err:
        keys.List(svc_pb.ListSymmetricKeysRequest(folder_id=FOLDER))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.value.details() == "the token is not valid"


def test_a_missing_key_is_not_found(admin: yandexcloud.SDK) -> None:
    keys = admin.client(svc_grpc.SymmetricKeyServiceStub)
    with pytest.raises(grpc.RpcError) as err:
        keys.Get(svc_pb.GetSymmetricKeyRequest(key_id="abjnosuchkey"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "key abjnosuchkey not found"


def test_a_missing_permission_is_denied(admin: yandexcloud.SDK) -> None:
    key = create_key(admin, "py-denied")
    outsider = sdk(iam_token=os.environ["KMS_SA_TOKEN"])
    with pytest.raises(grpc.RpcError) as err:
        outsider.client(crypto_grpc.SymmetricCryptoServiceStub).Encrypt(crypto_pb.SymmetricEncryptRequest(key_id=key.id, plaintext=b"x"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"lacks permission kms.keys.encrypt on key {key.id}" in err.value.details()


def test_a_bad_request_carries_google_rpc_bad_request_details(admin: yandexcloud.SDK) -> None:
    from google.rpc import error_details_pb2, status_pb2

    keys = admin.client(svc_grpc.SymmetricKeyServiceStub)
    with pytest.raises(grpc.RpcError) as err:
        keys.Create(svc_pb.CreateSymmetricKeyRequest(folder_id=FOLDER, labels={"Env": "x"}))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    raw = dict(err.value.trailing_metadata())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and status.message == err.value.details()
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert bad.field_violations[0].field == "labels.Env"


def test_the_oauth_token_flow_exchanges_an_api_token_for_an_iam_token() -> None:
    # token= makes the SDK call IamTokenService.Create at the discovered `iam` endpoint (kmsd),
    # then send the IAM token it got back.
    exchanged = sdk(token=os.environ["KMS_TOKEN"])
    keys = exchanged.client(svc_grpc.SymmetricKeyServiceStub)
    assert keys.List(svc_pb.ListSymmetricKeysRequest(folder_id=FOLDER)) is not None
