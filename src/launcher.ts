#!/usr/bin/env node
/**
 * The connector as shipped: package.json's `bin`, the Docker image's entrypoint and what the start-up bench measures.
 * scripts/bundle.mjs builds it into dist/bundle/main/main.cjs, beside connector.cjs (the whole connector bundled into
 * one CommonJS file) and connector.cache (V8's code cache for it, made at build time by running the commands).
 *
 * Running connector.cjs through `vm.Script` with that cache lets V8 skip parsing and compiling what the cache holds.
 * Node 20 offers no code cache for ES modules or for `require` (module.enableCompileCache came in Node 22), hence
 * CommonJS and this loader. CPU time of `check` against a refused port, as a multiple of `node -e 0` (Node 20, 2
 * cores, 31 alternating runs): 2.5 unbundled, 1.5 bundled, 1.36 bundled and run from the cache.
 *
 * The cache only fits the Node.js build and the V8 flags that made it; V8 checks that and, when they differ, rejects
 * it and compiles the source as usual. Of the source it checks only the length, which is why scripts/bundle.mjs
 * always writes the bundle and its cache together: after editing connector.cjs by hand, rebuild or delete the cache.
 *
 * DESTINATION_MQTT_CODE_CACHE_OUT=FILE (for the build): at exit, write the code compiled so far to FILE, and say on
 * stderr whether the cache was used.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const bundle = fileURLToPath(new URL('connector.cjs', import.meta.url));
const cacheFile = fileURLToPath(new URL('connector.cache', import.meta.url));

function readCache(): Buffer | undefined {
  try {
    return readFileSync(cacheFile);
  } catch {
    return undefined;
  }
}

const cachedData = readCache();
// connector.cjs is one function expression, the bundle wrapped as Node wraps a CommonJS module, so that it finds
// require, module and __filename as under require(). It is ASCII only, so latin1 reads the same string as UTF-8
// would, without decoding it. Both together: 2.5 ms less CPU per start (Node 20), 4% of `node -e 0`.
const script = new Script(readFileSync(bundle, 'latin1'), { filename: bundle, cachedData });

const cacheOut = process.env.DESTINATION_MQTT_CODE_CACHE_OUT;
if (cacheOut) {
  process.on('exit', () => {
    writeFileSync(cacheOut, script.createCachedData());
    process.stderr.write(
      `code cache ${cachedData === undefined ? 'absent' : script.cachedDataRejected === true ? 'rejected' : 'used'}\n`,
    );
  });
}

const module = { exports: {} };
(script.runInThisContext() as (...args: unknown[]) => void)(
  module.exports,
  createRequire(bundle),
  module,
  bundle,
  dirname(bundle),
);
