import { defineConfig } from 'vitest/config';

// `npm test` runs every suite on the embedded PGlite. With TEST_DATABASE_URL set (CI sets it), the
// same suites run a second time against that PostgreSQL server; each test file makes its own database.
const backends = process.env.TEST_DATABASE_URL ? ['pglite', 'postgres'] : ['pglite'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Builds the example app once, for the browser tests that load it.
    globalSetup: ['examples/holiday-sale/test/build-app.ts'],
    projects: backends.map((backend) => ({
      extends: true,
      test: {
        name: backend,
        include: ['packages/*/test/**/*.test.ts', 'packages/*/src/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
        env: { HALLPASS_TEST_BACKEND: backend },
      },
    })),
  },
});
