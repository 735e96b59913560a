#!/usr/bin/env node
/**
 * The command line: `spec`, `check --config FILE`, `write --config FILE --catalog FILE`.
 *
 * Stdout carries Airbyte messages only, so help and usage text go to stderr. Every command ends the same way: a fatal
 * error becomes one TRACE message, stdout is drained, and only then does the process exit.
 */
import { Command, CommanderError } from 'commander';
import { check } from './commands/check.js';
import { spec } from './commands/spec.js';
import { write } from './commands/write.js';
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

const program = new Command('destination-mqtt')
  .description('Airbyte destination that publishes every record of a sync to an MQTT broker.')
  .configureOutput({ writeOut: (text) => process.stderr.write(text), writeErr: (text) => process.stderr.write(text) })
  .exitOverride();

program
  .command('spec')
  .description('print the connector specification')
  .action(() => run(() => spec(output)));

program
  .command('check')
  .description('validate the configuration and test the connection to the broker')
  .requiredOption('--config <file>', 'configuration JSON file')
  .action((options: { config: string }) => run(() => check(options.config, output)));

program
  .command('write')
  .description('publish the AirbyteMessages read from stdin; print the states the broker has acknowledged')
  .requiredOption('--config <file>', 'configuration JSON file')
  .requiredOption('--catalog <file>', 'configured catalog JSON file')
  .action((options: { config: string; catalog: string }) => run(() => write(options.config, options.catalog, output)));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.exitCode === 0) await finish(0);
    output.error(new SystemError(`Invalid command line: ${err.message.replace(/^error: /, '')}`));
    await finish(2);
  }
  throw err;
}
