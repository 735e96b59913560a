/**
 * `spec`: prints spec.json as it is. It reads the file itself rather than through config/spec.ts, which loads the
 * compiled configuration validator and ajv's runtime with it: `spec` has no configuration to validate, and skipping
 * them saved 3 ms of CPU, about an eighth of a bare `node -e 0` on Node 24. The end-to-end test compares the output
 * with spec.json, so this path cannot silently point elsewhere.
 */
import { readFileSync } from 'node:fs';
import type { Output } from '../airbyte/output.js';

// Compiled output lives in dist/src/commands/, so the package root is three levels up, as for config/spec.ts.
const SPEC_URL = new URL('../../../spec.json', import.meta.url);

export function spec(output: Output): void {
  output.spec(JSON.parse(readFileSync(SPEC_URL, 'utf8')));
}
