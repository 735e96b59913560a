/**
 * The Docker image, without a Docker engine: one test checks the Dockerfile's invariants against metadata.yaml and
 * package.json; the other replays its build steps in a temporary directory (copying what it copies, running what it
 * runs) and starts the result through its entrypoint.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { PROJECT_ROOT, parseLines } from '../support/connector.js';
import { type Stage, envValue, labels, readDockerfile } from '../support/dockerfile.js';

const metadata = (parse(readFileSync(join(PROJECT_ROOT, 'metadata.yaml'), 'utf8')) as { data: Record<string, unknown> })
  .data;
const packageJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };

describe('Dockerfile and metadata.yaml', () => {
  const stages = readDockerfile();
  const runtime = stages.at(-1) as Stage;

  it('builds in several stages on a pinned official Node.js LTS slim image', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    for (const stage of stages) {
      const match = /^node:(\d+)\.(\d+)\.(\d+)-[a-z]+-slim$/.exec(stage.image);
      assert.ok(match, `${stage.image} is not a pinned node:X.Y.Z-<debian>-slim image`);
      assert.equal(Number(match[1]) % 2, 0, `${stage.image}: Node.js LTS lines have even major versions`);
    }
  });

  it('ships production dependencies only and runs as a non-root user', () => {
    const build = stages.slice(0, -1).flatMap((s) => s.instructions);
    assert.ok(
      build.some((i) => i.keyword === 'RUN' && /npm prune --omit=dev|npm ci [^&]*--omit=dev/.test(i.args)),
      'dev dependencies are pruned',
    );
    assert.ok(
      runtime.instructions.some((i) => i.keyword === 'COPY' && /--from=\S+ \S*node_modules/.test(i.args)),
      'node_modules comes from the build stage',
    );
    assert.ok(
      !runtime.instructions.some((i) => i.keyword === 'RUN' && /npm (ci|install)/.test(i.args)),
      'no install in the runtime stage',
    );
    const users = runtime.instructions.filter((i) => i.keyword === 'USER').map((i) => i.args);
    assert.ok(users.length > 0 && !['root', '0'].includes(users.at(-1) as string), `runs as ${users.at(-1) ?? 'root'}`);
  });

  it('declares AIRBYTE_ENTRYPOINT equal to its ENTRYPOINT', () => {
    const entrypoint = runtime.instructions.filter((i) => i.keyword === 'ENTRYPOINT').at(-1);
    assert.ok(entrypoint);
    assert.equal(envValue(runtime, 'AIRBYTE_ENTRYPOINT'), (JSON.parse(entrypoint.args) as string[]).join(' '));
  });

  it('labels the image as metadata.yaml names it, at package.json version', () => {
    assert.deepEqual(labels(runtime), {
      'io.airbyte.name': metadata.dockerRepository,
      'io.airbyte.version': metadata.dockerImageTag,
    });
    assert.equal(metadata.dockerImageTag, packageJson.version);
  });

  it('describes the connector as Airbyte expects', () => {
    assert.match(
      String(metadata.definitionId),
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    assert.equal(metadata.connectorType, 'destination');
    assert.equal(metadata.connectorSubtype, 'message_queue');
    for (const key of ['name', 'license', 'releaseStage', 'documentationUrl', 'githubIssueLabel'])
      assert.ok(metadata[key], key);
    assert.deepEqual((metadata.allowedHosts as { hosts: string[] }).hosts, [
      '${broker_host}',
      '${broker_url}',
      '${tunnel_method.tunnel_host}',
      '${proxy_url}',
      '${auth_method.token_url}',
    ]);
    assert.ok((metadata.tags as string[]).includes('language:typescript'));
  });
});

describe('Docker build steps, replayed without Docker', () => {
  it('builds and answers spec through its entrypoint', { timeout: 300_000 }, () => {
    const root = mkdtempSync(join(tmpdir(), 'docker-replay-'));
    try {
      const stages = readDockerfile();
      const stageRoots = new Map<string, string>();
      let finalRoot = '';
      let finalWorkdir = '/';
      stages.forEach((stage, index) => {
        const stageRoot = join(root, `stage-${index}`);
        mkdirSync(stageRoot, { recursive: true });
        let workdir = '/';
        const inStage = (path: string): string => join(stageRoot, isAbsolute(path) ? path : join(workdir, path));
        for (const { keyword, args } of stage.instructions) {
          if (keyword === 'WORKDIR') {
            workdir = args;
            mkdirSync(inStage('.'), { recursive: true });
          } else if (keyword === 'COPY') {
            // Docker's rules: with several sources or a destination ending in "/", files go into that directory;
            // a directory source copies its contents to the destination.
            const parts = args.split(/\s+/);
            const from = parts[0]?.startsWith('--from=')
              ? (parts.shift() as string).slice('--from='.length)
              : undefined;
            const destination = parts.pop() as string;
            const sourceRoot = from === undefined ? PROJECT_ROOT : (stageRoots.get(from) as string);
            const intoDirectory = destination.endsWith('/') || parts.length > 1;
            for (const source of parts) {
              const sourcePath = join(sourceRoot, source);
              const target =
                intoDirectory && !statSync(sourcePath).isDirectory()
                  ? join(inStage(destination), basename(source))
                  : inStage(destination);
              mkdirSync(dirname(target), { recursive: true });
              cpSync(sourcePath, target, { recursive: true });
            }
          } else if (keyword === 'RUN') {
            execFileSync('sh', ['-c', args], {
              cwd: inStage('.'),
              stdio: ['ignore', 'ignore', 'pipe'],
              env: { ...process.env, npm_config_loglevel: 'error' },
            });
          }
        }
        stageRoots.set(stage.name ?? String(index), stageRoot);
        finalRoot = stageRoot;
        finalWorkdir = workdir;
      });
      const runtime = stages.at(-1) as Stage;
      const entrypoint = JSON.parse(
        runtime.instructions.filter((i) => i.keyword === 'ENTRYPOINT').at(-1)?.args ?? '[]',
      ) as string[];
      const [command = '', ...args] = entrypoint;
      assert.ok(command.startsWith(finalWorkdir), 'the entrypoint lives in the image');
      const stdout = execFileSync(join(finalRoot, command), [...args, 'spec'], { encoding: 'utf8' });
      const messages = parseLines(stdout);
      assert.equal(messages.length, 1);
      assert.deepEqual(messages[0]?.spec, JSON.parse(readFileSync(join(PROJECT_ROOT, 'spec.json'), 'utf8')));
      // Production dependencies only: the test tooling is not in the image.
      assert.throws(() => readFileSync(join(finalRoot, finalWorkdir, 'node_modules/typescript/package.json')));
      assert.throws(() => readFileSync(join(finalRoot, finalWorkdir, 'node_modules/aedes/package.json')));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
