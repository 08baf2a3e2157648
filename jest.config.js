/** @type {import('jest').Config} */
export default {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/src'],
  testMatch: ['**/*.test.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true }],
  },
  reporters: ['default', '<rootDir>/test/support/summary-reporter.cjs'],
  // Integration tests start real servers; give them room, but every test still bounds its own waits.
  testTimeout: 30000,
};
