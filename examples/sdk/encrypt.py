"""Encrypt and decrypt with kmsd through the unmodified Yandex Cloud Python SDK (pip install yandexcloud).

KMS_ENDPOINT=localhost:8444 KMS_CA=kms-data/tls/ca.pem KMS_TOKEN=$(cat kms-data/admin.token) python3 encrypt.py
"""
import os

import yandexcloud
from yandex.cloud.kms.v1 import symmetric_crypto_service_pb2 as crypto_pb
from yandex.cloud.kms.v1 import symmetric_crypto_service_pb2_grpc as crypto_grpc
from yandex.cloud.kms.v1 import symmetric_key_pb2 as key_pb
from yandex.cloud.kms.v1 import symmetric_key_service_pb2 as key_service_pb
from yandex.cloud.kms.v1 import symmetric_key_service_pb2_grpc as key_service_grpc

with open(os.environ.get("KMS_CA", "kms-data/tls/ca.pem"), "rb") as f:
    ca = f.read()
# endpoint: where the SDK runs endpoint discovery (kmsd answers it with its own address for
# kms, kms-crypto, operation, iam, ...). iam_token: a kmsd API token, sent as the bearer token.
# (token=<kmsd API token> also works: the SDK then exchanges it at kmsd's IamTokenService.Create.)
sdk = yandexcloud.SDK(endpoint=os.environ.get("KMS_ENDPOINT", "localhost:8444"), root_certificates=ca, iam_token=os.environ["KMS_TOKEN"])

keys = sdk.client(key_service_grpc.SymmetricKeyServiceStub)
operation = keys.Create(key_service_pb.CreateSymmetricKeyRequest(folder_id="default", name="sdk-example", default_algorithm=key_pb.AES_256))
key = sdk.wait_operation_and_get_result(operation, response_type=key_pb.SymmetricKey, meta_type=key_service_pb.CreateSymmetricKeyMetadata).response

crypto = sdk.client(crypto_grpc.SymmetricCryptoServiceStub)
ciphertext = crypto.Encrypt(crypto_pb.SymmetricEncryptRequest(key_id=key.id, plaintext=b"card 4111", aad_context=b"order-1")).ciphertext
plaintext = crypto.Decrypt(crypto_pb.SymmetricDecryptRequest(key_id=key.id, ciphertext=ciphertext, aad_context=b"order-1")).plaintext
print(key.id, plaintext.decode())
