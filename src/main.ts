#!/usr/bin/env node
/**
 * The command line: `spec`, `check --config FILE`, `write --config FILE --catalog FILE`.
 *
 * Stdout carries Airbyte messages only, so help and usage text go to stderr. Every command ends the same way: a fatal
 * error becomes one TRACE message, stdout is drained, and only then does the process exit.
 *
 * The platform runs `spec` and `check` often and starts a process for every sync, so start-up time counts. Each
 * command's module is imported only once the command line has chosen it, so `spec` loads neither MQTT.js, ws nor the
 * configuration validator: it went from about 4 times the CPU time of a bare `node -e 0` to 1.2 (Node 20) and 1.3
 * (Node 24). The command line is parsed here rather than by commander, whose loading alone took 7 ms of CPU on Node 24,
 * where `node -e 0` takes 22 ms: two thirds of what `spec` may add to it while staying within 1.5 times.
 */
import { SystemError, asConnectorError } from './errors.js';
import { Output } from './airbyte/output.js';

const output = new Output();

async function finish(exitCode: number): Promise<never> {
  await output.flush();
  process.exit(exitCode);
}

async function run(command: () => Promise<void> | void): Promise<never> {
  try {
    await command();
  } catch (err) {
    output.error(asConnectorError(err));
    return finish(1);
  }
  return finish(0);
}

/** The last resort: one TRACE for an error nothing else caught, then exit 1 even if flushing stdout fails. */
function crash(err: unknown): void {
  output.error(asConnectorError(err));
  finish(1).catch(() => process.exit(1));
}
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);

const PROGRAM = 'destination-mqtt';
const DESCRIPTION = 'Airbyte destination that publishes every record of a sync to an MQTT broker.';
const HELP_FLAG = { flags: '-h, --help', description: 'display help for command' };

/** A command takes no arguments, only required `--name <file>` options; `O` names them. */
interface CommandDefinition<O extends string> {
  readonly description: string;
  readonly options: Readonly<Record<O, string>>;
  readonly run: (options: Readonly<Record<O, string>>) => Promise<void> | void;
}

// Written as a function so that each command's option names type its own `run`: the parser hands `run` every option
// the command declares, or does not call it.
function command<O extends string>(definition: CommandDefinition<O>): CommandDefinition<string> {
  return definition;
}

const COMMANDS: Readonly<Record<string, CommandDefinition<string>>> = {
  spec: command({
    description: 'print the connector specification',
    options: {},
    run: async () => (await import('./commands/spec.js')).spec(output),
  }),
  check: command({
    description: 'validate the configuration and test the connection to the broker',
    options: { config: 'configuration JSON file' },
    run: async ({ config }) => (await import('./commands/check.js')).check(config, output),
  }),
  write: command({
    description: 'publish the AirbyteMessages read from stdin; print the states the broker has acknowledged',
    options: { config: 'configuration JSON file', catalog: 'configured catalog JSON file' },
    run: async ({ config, catalog }) => (await import('./commands/write.js')).write(config, catalog, output),
  }),
};

/** A command line that cannot run; `help` is the text printed before the error, when the user may need it. */
class UsageError extends Error {
  constructor(
    message: string,
    readonly help?: string,
  ) {
    super(message);
  }
}

type Row = readonly [string, string];

/** Titled sections of two aligned columns, one alignment for all of them, as commander printed them. */
function sections(list: readonly (readonly [string, readonly Row[]])[]): string {
  const width = Math.max(...list.flatMap(([, rows]) => rows.map(([left]) => left.length)));
  return list
    .map(
      ([title, rows]) => `${title}:\n${rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`).join('\n')}\n`,
    )
    .join('\n');
}

function optionFlags(name: string): string {
  return `--${name} <file>`;
}

function programHelp(): string {
  const commands = Object.entries(COMMANDS).map(([name, definition]): Row => [
    Object.keys(definition.options).length > 0 ? `${name} [options]` : name,
    definition.description,
  ]);
  return [
    `Usage: ${PROGRAM} [options] [command]\n`,
    `${DESCRIPTION}\n`,
    sections([
      ['Options', [[HELP_FLAG.flags, HELP_FLAG.description]]],
      ['Commands', [...commands, ['help [command]', HELP_FLAG.description]]],
    ]),
  ].join('\n');
}

function commandHelp(name: string, definition: CommandDefinition<string>): string {
  const options = Object.entries(definition.options).map(([option, description]): Row => [
    optionFlags(option),
    description,
  ]);
  return [
    `Usage: ${PROGRAM} ${name} [options]\n`,
    `${definition.description}\n`,
    sections([['Options', [...options, [HELP_FLAG.flags, HELP_FLAG.description]]]]),
  ].join('\n');
}

const isHelpFlag = (arg: string): boolean => arg === '-h' || arg === '--help';

type Invocation =
  | { readonly help: string }
  | { readonly definition: CommandDefinition<string>; readonly options: Readonly<Record<string, string>> };

/** What the arguments ask for; throws a UsageError with the same wording commander used, which users may know. */
function parse(args: readonly string[]): Invocation {
  const [first, ...rest] = args;
  if (first === undefined) throw new UsageError('no command given; expected one of spec, check, write', programHelp());
  if (isHelpFlag(first)) return { help: programHelp() };
  if (first === 'help') {
    const topic = rest[0];
    if (topic === undefined) return { help: programHelp() };
    const definition = Object.hasOwn(COMMANDS, topic) ? COMMANDS[topic] : undefined;
    if (!definition) throw new UsageError(`unknown command '${topic}'`, programHelp());
    return { help: commandHelp(topic, definition) };
  }
  if (first.startsWith('-')) throw new UsageError(`unknown option '${first}'`);
  const definition = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  if (!definition) throw new UsageError(`unknown command '${first}'`);
  return parseCommand(first, definition, rest);
}

function parseCommand(name: string, definition: CommandDefinition<string>, args: readonly string[]): Invocation {
  const end = args.indexOf('--');
  const flags = end === -1 ? args : args.slice(0, end);
  if (flags.some(isHelpFlag)) return { help: commandHelp(name, definition) };
  const options: Record<string, string> = {};
  const extra = end === -1 ? [] : args.slice(end + 1);
  for (let i = 0; i < flags.length; i++) {
    const arg = flags[i] as string;
    if (!arg.startsWith('-') || arg === '-') {
      extra.push(arg);
      continue;
    }
    const equals = arg.indexOf('=');
    const key = arg.startsWith('--') ? arg.slice(2, equals === -1 ? undefined : equals) : '';
    if (!Object.hasOwn(definition.options, key)) throw new UsageError(`unknown option '${arg}'`);
    // Like commander: an option's value is the next argument whatever it looks like, so a file may start with '-'.
    const value = equals === -1 ? flags[++i] : arg.slice(equals + 1);
    if (value === undefined) throw new UsageError(`option '${optionFlags(key)}' argument missing`);
    options[key] = value;
  }
  for (const key of Object.keys(definition.options)) {
    if (!Object.hasOwn(options, key)) throw new UsageError(`required option '${optionFlags(key)}' not specified`);
  }
  if (extra.length > 0)
    throw new UsageError(`too many arguments for '${name}'. Expected 0 arguments but got ${extra.length}.`);
  return { definition, options };
}

async function main(args: readonly string[]): Promise<never> {
  let invocation: Invocation;
  try {
    invocation = parse(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.help ?? ''}error: ${err.message}\n`);
    output.error(new SystemError(`Invalid command line: ${err.message}`));
    return finish(2);
  }
  if ('help' in invocation) {
    process.stderr.write(invocation.help);
    return finish(0);
  }
  const { definition, options } = invocation;
  return run(() => definition.run(options));
}

// Not a top-level await: the shipped build bundles this module as CommonJS (scripts/bundle.mjs), which has none.
main(process.argv.slice(2)).catch(crash);
