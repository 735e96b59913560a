// How esbuild bundles the connector (scripts/bundle.mjs), in a module of its own so that a test can bundle a module
// the connector loads lazily exactly as the connector's bundle will, before anything reachable from main.js loads it
// (test/e2e/ssh-tunnel-aedes.test.ts runs the SSH tunnel, with ssh2, from such a bundle).
import { readFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { join } from 'node:path';

// CommonJS has no import.meta: each bundled file's import.meta.url becomes the bundle's own URL.
export const importMetaUrl = {
  define: { 'import.meta.url': '__bundle_url' },
  banner: { js: "const __bundle_url = require('node:url').pathToFileURL(__filename).href;" },
};

// The modules that load a package only when it is needed (transport.ts: MQTT.js's client; websocket.ts: ws; the
// generated validator: ajv's runtime) do it with `createRequire(import.meta.url)`, which esbuild does not follow.
// Without that line their `require` is CommonJS's own, which esbuild bundles, still called only when needed.
const LAZY_REQUIRE = /^const require = createRequire\(import\.meta\.url\);$/m;
export const bundleLazyRequires = {
  name: 'bundle-lazy-requires',
  setup(builder) {
    builder.onLoad({ filter: /[\\/]dist[\\/]src[\\/].*\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      return { contents: source.replace(LAZY_REQUIRE, ''), loader: 'js' };
    });
  },
};

// MQTT.js, mqtt-packet and bl load readable-stream, a copy of Node's own stream module for browsers and old Node.js
// releases (4.8: Node 18's streams). In the bundle they get node:stream itself, which the socket has loaded anyway:
// 3 to 4 ms less CPU per start, about 5% of `node -e 0` (check from 1.42 to 1.36 times, Node 20). The whole
// end-to-end suite passes against the bundle built so.
export const ALIASES = { 'readable-stream': 'node:stream' };

// Packages that may be missing by design, each required inside a try: debug does without supports-color, ws without
// its native helpers bufferutil and utf-8-validate.
export const OPTIONAL = new Set(['supports-color', 'bufferutil', 'utf-8-validate']);

// Native parts that a package loads inside a try and does without, by the specifier it requires them with. ssh2
// loads cpu-features (which only reorders its cipher preferences) and its own sshcrypto.node binding (faster AES-GCM
// and ChaCha20-Poly1305); without them it uses Node's crypto (OpenSSL's AES-GCM, its default cipher) and its own
// WebAssembly Poly1305. esbuild cannot bundle a .node file, and leaving them external would load them from
// node_modules where an install happened to compile them (here, with a compiler) and not elsewhere (the Docker image
// has none): the bundle gets a module that throws instead, so ssh2 takes its pure-JS paths everywhere, and starts
// without loading two shared libraries.
const OPTIONAL_NATIVE = /^(?:cpu-features|\.\/crypto\/build\/Release\/sshcrypto\.node)$/;
export const optionalNatives = {
  name: 'optional-natives',
  setup(builder) {
    builder.onResolve({ filter: OPTIONAL_NATIVE }, (args) => ({ path: args.path, namespace: 'optional-native' }));
    builder.onLoad({ filter: /.*/, namespace: 'optional-native' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not in the bundle`)});`,
      loader: 'js',
    }));
  },
};

// Packages the connector needs only for some configurations, each bundled into a file of its own beside the
// connector's, which the connector requires (by that file's path) when it first needs the package: ssh2, for SSH
// tunnels, is about as large as everything else in the bundle together, and inside connector.cjs it added 4 ms of
// CPU to every start (spec, Node 20: 86.5 ms against 82.8, `node -e 0` 73.7; 60 alternating runs each), tunnel or
// not. Required only from the connector's own modules: a package in the separate file that needs another keeps it.
export const SEPARATE = { ssh2: 'ssh2.cjs' };
export const separatePackages = {
  name: 'separate-packages',
  setup(builder) {
    builder.onResolve({ filter: new RegExp(`^(?:${Object.keys(SEPARATE).join('|')})$`) }, (args) =>
      /[\\/]dist[\\/]src[\\/]/.test(args.importer) ? { path: `./${SEPARATE[args.path]}`, external: true } : undefined,
    );
  },
};

/** Fails the build if the bundle would load anything from node_modules at run time, or would import() anything. */
export function checkExternals(metafile) {
  for (const [output, { imports }] of Object.entries(metafile.outputs)) {
    for (const { path, kind, external } of imports) {
      if (!external) continue;
      if (kind === 'dynamic-import') throw new Error(`${output}: import('${path}') cannot run under vm.Script`);
      const separate = Object.values(SEPARATE).some((file) => path === `./${file}`);
      if (!isBuiltin(path) && !OPTIONAL.has(path) && !separate) throw new Error(`${output}: ${path} is not bundled`);
    }
  }
}

/** Options for every bundle: one CommonJS file for Node 20 that knows its own URL. */
export const commonOptions = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  metafile: true,
  ...importMetaUrl,
};

/** Options for the connector and what it loads: lazy requires bundled, Node's streams, optional natives left out. */
export const connectorOptions = {
  ...commonOptions,
  plugins: [bundleLazyRequires, optionalNatives, separatePackages],
  alias: ALIASES,
};

/** Bundles each of SEPARATE into `outdir`, with `options` (the connector's), as the connector will require them. */
export async function bundleSeparatePackages(build, outdir, options = connectorOptions) {
  for (const [name, file] of Object.entries(SEPARATE)) {
    const result = await build({
      ...options,
      entryPoints: [createRequire(import.meta.url).resolve(name)],
      outfile: join(outdir, file),
    });
    checkExternals(result.metafile);
  }
}
