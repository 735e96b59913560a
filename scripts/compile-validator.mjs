// Build step: compiles spec.json's connectionSpecification into a standalone validator module, so the connector does
// not load and run ajv's compiler (a quarter of a second) every time it starts. spec.json stays the single source.
import { readFileSync, writeFileSync } from 'node:fs';
import Ajv from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';

const root = new URL('../', import.meta.url);
const spec = JSON.parse(readFileSync(new URL('spec.json', root), 'utf8'));
const ajv = new Ajv.default({
  allErrors: true,
  strict: true,
  strictRequired: false,
  code: { source: true, esm: true },
});
// Airbyte's UI annotations are not JSON Schema; declaring them keeps strict mode useful for real typos.
ajv.addVocabulary(['airbyte_secret', 'airbyte_hidden', 'order', 'group', 'groups', 'always_show', 'multiline']);
const code = standaloneCode(ajv, ajv.compile(spec.connectionSpecification));
// ajv's ESM output still require()s its runtime helpers.
const header = "import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\n";
writeFileSync(
  new URL('dist/src/config/validate-config.js', root),
  `// Generated from spec.json by scripts/compile-validator.mjs.\n${header}${code}\n`,
);
