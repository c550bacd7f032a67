// Tests are compiled by `tsc` (the same build users run) and jest runs the emitted ESM.
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/dist/test'],
  testMatch: ['**/*.test.js'],
  transform: {},
  // One SoftHSM2 token directory for the run; SOFTHSM2_CONF must exist before workers start.
  // …and one PostgreSQL cluster (KMS_TEST_PG_URL) for the cluster tests and KMS_TEST_STORE=postgres.
  globalSetup: '<rootDir>/jest.global-setup.js',
  globalTeardown: '<rootDir>/jest.global-teardown.js',
  testTimeout: 60000,
  maxWorkers: 2,
};
