// Build step, after tsc and compile-validator.mjs: the connector as shipped, in dist/bundle/main/ (see src/launcher.ts).
//
//   connector.cjs   dist/src/main.js and everything it loads, MQTT.js included, bundled by esbuild into one CommonJS
//                   module (written inside the function Node wraps modules in, for the launcher), so that Node does
//                   not resolve, read and compile module after module. CPU time of a `check`
//                   against a refused port, as a multiple of `node -e 0` (Node 20, 2 cores): 2.5 unbundled, 1.5
//                   bundled.
//   connector.cache V8's code cache for connector.cjs, made here by running the shipped entry point: spec, check
//                   against a refused port and against a broker, and a small write. With it, 1.36.
//   main.cjs        src/launcher.ts as CommonJS: the `bin` of package.json and the Docker entrypoint's target.
//   ssh2.cjs        ssh2, bundled on its own, which connector.cjs requires only for an SSH tunnel (bundle-options.mjs).
//
// The directory is three levels below the package root, as dist/src/commands/ is, so that the bundled modules'
// `new URL('../../../spec.json', import.meta.url)` still finds spec.json. How esbuild bundles is in bundle-options.mjs.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aedes } from 'aedes';
import { build } from 'esbuild';
import { bundleSeparatePackages, checkExternals, commonOptions, connectorOptions } from './bundle-options.mjs';

const root = fileURLToPath(new URL('../', import.meta.url));
const outdir = join(root, 'dist/bundle/main');
const connector = join(outdir, 'connector.cjs');
const launcher = join(outdir, 'main.cjs');
const cache = join(outdir, 'connector.cache');

rmSync(join(root, 'dist/bundle'), { recursive: true, force: true });
const bundled = await build({
  ...connectorOptions,
  entryPoints: [join(root, 'dist/src/main.js')],
  outfile: connector,
  sourcemap: 'linked',
});
checkExternals(bundled.metafile);
await bundleSeparatePackages(build, outdir);
const output = readFileSync(connector, 'utf8');
// A lazy require the plugin missed would still work, from node_modules and as slowly as before: fail instead.
if (output.includes('createRequire'))
  throw new Error('connector.cjs still calls createRequire: a lazy require was left out of the bundle');
// The launcher reads connector.cjs as latin1, which is the same string as UTF-8 for ASCII and needs no decoding;
// esbuild writes ASCII (it escapes the rest), but a comment it keeps could hold more.
if (/[\u0080-\uffff]/.test(output)) throw new Error('connector.cjs is not ASCII only: the launcher would misread it');
// Written already wrapped in the function Node puts around a CommonJS module (a #! line cannot stay inside it), so
// that the launcher compiles the file's text as it is, without building a second string of it.
writeFileSync(
  connector,
  `(function (exports, require, module, __filename, __dirname) {${output.replace(/^#!.*\n/, '')}\n})`,
);
chmodSync(connector, 0o644);
const launched = await build({
  ...commonOptions,
  entryPoints: [join(root, 'dist/src/launcher.js')],
  outfile: launcher,
});
checkExternals(launched.metafile);
chmodSync(launcher, 0o755);

/**
 * Runs the shipped entry point once, saving the code cache it ends with; the run must end as `expect` says. Not
 * spawnSync: the broker the runs talk to lives in this process.
 */
async function train(args, expect, input = '') {
  const out = `${cache}.tmp`;
  const child = spawn(process.execPath, [launcher, ...args], {
    env: { ...process.env, DESTINATION_MQTT_CODE_CACHE_OUT: out },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  child.stdin.end(input);
  const [code] = await once(child, 'close');
  if (code !== 0 || !expect.test(stdout)) {
    rmSync(out, { force: true });
    throw new Error(`the bundled connector failed \`${args.join(' ')}\` (exit ${code}):\n${stdout}\n${stderr}`);
  }
  renameSync(out, cache);
  return stderr;
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

const work = mkdtempSync(join(tmpdir(), 'bundle-training-'));
const broker = await Aedes.createBroker();
const server = createServer(broker.handle);
try {
  const port = await listen(server);
  const closed = createServer();
  const refusedPort = await listen(closed);
  await new Promise((resolve) => closed.close(resolve));
  const file = (name, value) => {
    const path = join(work, name);
    writeFileSync(path, JSON.stringify(value));
    return path;
  };
  const config = (brokerPort, extra = {}) => ({
    broker_host: '127.0.0.1',
    broker_port: brokerPort,
    topic_pattern: 'training/{stream}',
    connect_timeout: 5,
    ...extra,
  });
  const catalog = file('catalog.json', {
    streams: [
      {
        stream: { name: 'users', json_schema: {}, supported_sync_modes: ['full_refresh'] },
        sync_mode: 'full_refresh',
        destination_sync_mode: 'append',
      },
    ],
  });
  const records = Array.from({ length: 3 }, (_, id) =>
    JSON.stringify({ type: 'RECORD', record: { stream: 'users', data: { id }, emitted_at: 1 } }),
  );
  const state = JSON.stringify({
    type: 'STATE',
    state: { type: 'STREAM', stream: { stream_descriptor: { name: 'users' }, stream_state: { id: 2 } } },
  });

  // Each run starts from the cache the previous one saved and adds what it compiled itself, so the cache ends up
  // holding the code of every command. One cache for all: a check-only cache (360 KB instead of 490) was no faster.
  await train(['spec'], /"type":"SPEC"/);
  await train(['check', '--config', file('refused.json', config(refusedPort))], /"status":"FAILED"/);
  await train(
    ['check', '--config', file('check.json', config(port, { topic_test: 'training/check' }))],
    /"status":"SUCCEEDED"/,
  );
  await train(
    ['write', '--config', file('write.json', config(port)), '--catalog', catalog],
    /"type":"STATE"/,
    `${records.join('\n')}\n${state}\n`,
  );
  // A last run only to see that this Node.js accepts the cache it made.
  const last = await train(['spec'], /"type":"SPEC"/);
  if (!/code cache used/.test(last)) throw new Error(`the code cache made here is not used by this Node.js: ${last}`);
} finally {
  await new Promise((resolve) => server.close(resolve));
  await new Promise((resolve) => broker.close(resolve));
  rmSync(work, { recursive: true, force: true });
}
