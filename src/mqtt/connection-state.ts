/**
 * The old name of send-state.ts, kept only for test/unit/airbyte/output.test.ts, which imports `windowSize` from here;
 * once that import names send-state.js, this file goes.
 */
export { windowSize } from './send-state.js';
