import { defineConfig } from 'vitest/config';

// Two projects: `unit` (test/unit) runs offline in seconds; `integration` (test/integration) runs against the
// real local stack, which test/integration/stack.setup.ts finds through .stack/env or starts (under CI=true
// it must already be up), after build.setup.ts has brought dist/ (what bin/apilog.js runs) up to date.
// Integration files run one at a time: the stack's JVMs and ClickHouse share two cores with the tests.
// `npm test` runs both; `npx vitest run --project unit` only the offline ones.
export default defineConfig({
  test: {
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/build.setup.ts', 'test/integration/stack.setup.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
