import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // One Apache Kafka broker (test/support/kafka/broker.sh), started only when Kafka tests are in the run.
    globalSetup: ['test/support/kafka/global-setup.ts'],
    reporters: ['default'],
  },
});
