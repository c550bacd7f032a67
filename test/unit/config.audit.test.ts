/** The `--audit-*` flags of daemon/config.ts: defaults, environment, sizes and refusals. */
import { describe, it, expect } from '@jest/globals';
import { ConfigError, USAGE, parseConfig, parseSize } from '../../daemon/config.js';

describe('audit flags', () => {
  it('default to 16 MiB segments, 24 h, 365 days of retention and 10 GiB in total', () => {
    expect(parseConfig([], {}).audit).toEqual({
      segmentBytes: 16 * 1024 ** 2,
      segmentMaxAgeSeconds: 24 * 3600,
      retentionSeconds: 8760 * 3600,
      maxTotalBytes: 10 * 1024 ** 3,
      acceptLoss: false,
    });
    for (const flag of ['--audit-segment-size', '--audit-segment-max-age', '--audit-retention', '--audit-max-size', '--audit-accept-loss']) expect(USAGE).toContain(flag);
  });

  it('take flags over KMS_AUDIT_* variables', () => {
    const env = { KMS_AUDIT_SEGMENT_SIZE: '1MiB', KMS_AUDIT_SEGMENT_MAX_AGE: '1h', KMS_AUDIT_RETENTION: '720h', KMS_AUDIT_MAX_SIZE: '1GB', KMS_AUDIT_ACCEPT_LOSS: '1' };
    expect(parseConfig([], env).audit).toEqual({ segmentBytes: 1024 ** 2, segmentMaxAgeSeconds: 3600, retentionSeconds: 720 * 3600, maxTotalBytes: 1e9, acceptLoss: true });
    expect(parseConfig(['--audit-segment-size', '64MiB', '--audit-max-size', '2TiB'], env).audit).toMatchObject({ segmentBytes: 64 * 1024 ** 2, maxTotalBytes: 2 * 1024 ** 4 });
  });

  it.each([
    ['64MiB', 64 * 1024 ** 2],
    ['500MB', 500e6],
    ['4096', 4096],
    ['8KiB', 8192],
  ])('parseSize(%s) = %i', (text, bytes) => {
    expect(parseSize('--x', text, 1)).toBe(bytes);
  });

  it.each([
    [['--audit-segment-size', '64M'], '--audit-segment-size must be a size such as "64MiB" or "10GiB", got "64M"'],
    [['--audit-segment-size', '100'], '--audit-segment-size must be at least 4096 bytes, got "100"'],
    [['--audit-max-size', 'lots'], '--audit-max-size must be a size such as "64MiB" or "10GiB", got "lots"'],
    [['--audit-segment-max-age', '1d'], '--audit-segment-max-age must be a duration such as "72h" or "90m", got "1d"'],
    [['--audit-segment-max-age', '0s'], '--audit-segment-max-age must be longer than 0s'],
    [['--audit-retention', '0h'], '--audit-retention must be longer than 0s'],
  ])('%j is refused', (argv, message) => {
    expect(() => parseConfig(argv, {})).toThrow(ConfigError);
    expect(() => parseConfig(argv, {})).toThrow(message);
  });
});
