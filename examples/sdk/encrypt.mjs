// Encrypt and decrypt with kmsd through the unmodified Yandex Cloud Node SDK (npm i @yandex-cloud/nodejs-sdk).
// KMS_ENDPOINT=localhost:8444 KMS_CA=kms-data/tls/ca.pem KMS_TOKEN=$(cat kms-data/admin.token) node encrypt.mjs
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { Session, waitForOperation } from '@yandex-cloud/nodejs-sdk';
import { symmetricCryptoService, symmetricKey, symmetricKeyService } from '@yandex-cloud/nodejs-sdk/kms-v1';

const endpoint = process.env.KMS_ENDPOINT ?? 'localhost:8444'; // the Node SDK has no discovery: give it per client
const session = new Session({ iamToken: process.env.KMS_TOKEN, ssl: { rootCerts: readFileSync(process.env.KMS_CA ?? 'kms-data/tls/ca.pem') } });
const keys = session.client(symmetricKeyService.SymmetricKeyServiceClient, endpoint);
const crypto = session.client(symmetricCryptoService.SymmetricCryptoServiceClient, endpoint);

const operation = await keys.create(
  symmetricKeyService.CreateSymmetricKeyRequest.fromPartial({ folderId: 'default', name: 'sdk-example', defaultAlgorithm: symmetricKey.SymmetricAlgorithm.AES_256 }),
);
// waitForOperation polls OperationService.Get: give it the endpoint too.
const done = await waitForOperation(operation, session, 10_000, endpoint);
const key = symmetricKey.SymmetricKey.decode(done.response.value);

const aadContext = Buffer.from('order-1');
const { ciphertext } = await crypto.encrypt(symmetricCryptoService.SymmetricEncryptRequest.fromPartial({ keyId: key.id, plaintext: Buffer.from('card 4111'), aadContext }));
const { plaintext } = await crypto.decrypt(symmetricCryptoService.SymmetricDecryptRequest.fromPartial({ keyId: key.id, ciphertext, aadContext }));
process.stdout.write(`${key.id} ${Buffer.from(plaintext).toString()}\n`);
