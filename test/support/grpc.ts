/** kmsd with its gRPC listener on a free port, and the facts an SDK needs to reach it. */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { startTestKmsd, type TestKmsd } from './kmsd.js';

export interface GrpcKmsd extends TestKmsd {
  /** HOST:PORT as endpoint discovery advertises it (localhost:PORT). */
  endpoint: string;
  /** The CA certificate kmsd made under <data-dir>/tls/. */
  caPath: string;
  ca: Buffer;
}

export async function startGrpcKmsd(options: { args?: string[] } = {}): Promise<GrpcKmsd> {
  const kmsd = await startTestKmsd({ args: ['--grpc-listen', '127.0.0.1:0', ...(options.args ?? [])] });
  if (kmsd.grpcAdvertise === undefined || kmsd.grpcCaPath === undefined) throw new Error('kmsd started without its gRPC listener');
  return { ...kmsd, endpoint: kmsd.grpcAdvertise, caPath: kmsd.grpcCaPath, ca: readFileSync(kmsd.grpcCaPath) };
}

/** The yandexcloud release .ci/run installs (keep in step with YANDEXCLOUD_VERSION there). */
export const YANDEXCLOUD_VERSION = '0.413.0';

/**
 * The Python with the Yandex Cloud SDK (`yandexcloud` from PyPI) and pytest: KMS_PYTHON, or the
 * venv .ci/run creates.
 */
export function sdkPython(): string {
  return process.env['KMS_PYTHON'] ?? join(homedir(), '.cache', 'kms-tools', `venv-yandexcloud-${YANDEXCLOUD_VERSION}`, 'bin', 'python');
}
