// Mutation testing with StrykerJS: `npm run mutate` (slow, not part of `npm test` or CI).
//
// Stryker copies the project into a sandbox under .stryker-tmp/, writes the instrumented TypeScript there (every
// mutant of a file behind a runtime switch), builds the sandbox once with `npm run build`, and then runs the compiled
// unit test files with Node's built-in test runner, reading their TAP output. Each test file runs in its own process,
// so a mutant is tested only by the test files whose run reached it.
//
// Narrow the run to some modules with either
//   npm run mutate -- --mutate src/payload/topic.ts
//   MUTATE=src/payload/topic.ts,src/mqtt/packets.ts npm run mutate
//   MUTATE=sync npm run mutate      (the ledger and the sync decisions: src/airbyte/checkpoints.ts and src/sync/)
// The unit tests must pass first: Stryker stops if any fails in its initial run.
// Reports: reports/mutation/mutation.html and reports/mutation/mutation.json.

/**
 * The modules under mutation test: the one place to change when a file moves. The sync decisions are all of
 * `src/sync/` but three modules that only talk to a broker (opening the channels, the delivery check's subscriber, the
 * test message): their behaviour is tested end to end, which is far too slow to run per mutant.
 */
const SYNC_MODULES = [
  'src/sync/*.ts',
  '!src/sync/channels.ts',
  '!src/sync/delivery-check.ts',
  '!src/sync/test-message.ts',
];
const CORE_MODULES = [
  'src/airbyte/checkpoints.ts',
  ...SYNC_MODULES,
  'src/mqtt/publisher.ts',
  'src/mqtt/inflight-store.ts',
  'src/mqtt/ack-watchdog.ts',
  'src/mqtt/packets.ts',
  'src/airbyte/record-scan.ts',
  'src/payload/topic.ts',
];

// The publisher's property test runs 2,000 random cases by default (about 17 s); per mutant a tenth of that still
// covers its paths. Set PROPERTY_CASES yourself to change it. Test runner processes inherit this environment.
process.env.PROPERTY_CASES ??= '200';
// The keyspace's tests hold up to 400,000 keys (about 5 s, four times that instrumented); a tenth still grows its table
// through several doublings, and keeps a run over the keyspace's mutants to minutes rather than an hour.
process.env.PROPERTY_SCALE ??= '0.1';

const only = (process.env.MUTATE ?? '')
  .split(',')
  .map((entry) => entry.trim())
  .filter((entry) => entry !== '');

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate:
    only.length === 1 && only[0] === 'sync'
      ? ['src/airbyte/checkpoints.ts', ...SYNC_MODULES]
      : only.length > 0
        ? only
        : CORE_MODULES,
  testRunner: 'tap',
  tap: {
    // Any unit test file, present or added later; the end-to-end tests start brokers and are far too slow per mutant.
    testFiles: ['dist/test/unit/**/*.test.js'],
    nodeArgs: ['--test-reporter=tap', '-r', '{{hookFile}}', '{{testFile}}'],
    forceBail: true,
  },
  coverageAnalysis: 'perTest',
  // No type checker by default: it checks about one mutant a second here, four times slower than just running the
  // tests. Add `--checkers typescript` to set mutants that do not compile aside as compile errors (left out of the
  // score) instead of running them, e.g. to see which survivors are only type errors.
  checkers: [],
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  // The sandbox builds its own dist/ from the instrumented sources; never copy the working tree's build output.
  ignorePatterns: ['dist'],
  buildCommand: 'npm run build',
  concurrency: 2,
  // A mutant counts as detected when its tests run past 1.5 x their normal time plus this. On a busy 2-core machine
  // a 10 s margin turned about 30 surviving publisher mutants into false timeouts; 30 s did not.
  timeoutMS: 30000,
  reporters: ['clear-text', process.stdout.isTTY ? 'progress' : 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: {
    allowColor: process.stdout.isTTY === true,
    logTests: false,
    reportScoreTable: true,
    reportMutants: true,
  },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
