/**
 * Everything the connector prints: Airbyte messages, one JSON object per line, on stdout. Nothing else may reach
 * stdout, since the platform parses every line.
 *
 * Every line passes through a redactor that knows the configured secrets, so that no code path (an error text from a
 * library, a log line) can print a password even by accident.
 */
import type { Writable } from 'node:stream';
import type { ConnectorError } from '../errors.js';

export type LogLevel = 'FATAL' | 'ERROR' | 'WARN' | 'INFO' | 'DEBUG' | 'TRACE';

const LEVELS: readonly LogLevel[] = ['FATAL', 'ERROR', 'WARN', 'INFO', 'DEBUG', 'TRACE'];
export const REDACTED = '**********';

/** The most detailed level to print, from LOG_LEVEL (case-insensitive); INFO when unset or unknown. */
export function logLevelFrom(value: string | undefined): LogLevel {
  const level = value?.toUpperCase() as LogLevel | undefined;
  return level && LEVELS.includes(level) ? level : 'INFO';
}

export class Output {
  private secrets: string[] = [];
  private readonly threshold: number;

  constructor(
    private readonly sink: Writable = process.stdout,
    level: LogLevel = logLevelFrom(process.env.LOG_LEVEL),
  ) {
    this.threshold = LEVELS.indexOf(level);
  }

  /** Whether messages of `level` are printed; lets callers skip building messages nobody will see. */
  enabled(level: LogLevel): boolean {
    return LEVELS.indexOf(level) <= this.threshold;
  }

  /** Values that must never appear in any output line, as given and as they look inside a JSON string. */
  redact(values: Iterable<string | undefined>): void {
    for (const value of values) {
      if (!value) continue;
      this.secrets.push(value);
      const escaped = JSON.stringify(value).slice(1, -1);
      if (escaped !== value) this.secrets.push(escaped);
    }
    // Longest first, so a secret that contains another is replaced whole.
    this.secrets.sort((a, b) => b.length - a.length);
  }

  private write(line: string): void {
    let safe = line;
    for (const secret of this.secrets) safe = safe.split(secret).join(REDACTED);
    this.sink.write(`${safe}\n`);
  }

  /** A state line produced by the checkpoints, already serialised; never redacted (it is the source's own state). */
  state(line: string): void {
    this.sink.write(`${line}\n`);
  }

  log(level: LogLevel, message: string): void {
    if (this.enabled(level)) this.write(JSON.stringify({ type: 'LOG', log: { level, message } }));
  }

  spec(spec: unknown): void {
    this.write(JSON.stringify({ type: 'SPEC', spec }));
  }

  connectionStatus(status: 'SUCCEEDED' | 'FAILED', message: string): void {
    this.write(JSON.stringify({ type: 'CONNECTION_STATUS', connectionStatus: { status, message } }));
  }

  error(err: ConnectorError): void {
    const error: Record<string, string> = { message: err.message, failure_type: err.failureType };
    if (err.internalMessage) error.internal_message = err.internalMessage;
    if (err.stack) error.stack_trace = err.stack;
    this.write(JSON.stringify({ type: 'TRACE', trace: { type: 'ERROR', emitted_at: Date.now(), error } }));
  }

  /** Resolves once everything written so far has been handed to the OS, so exiting afterwards loses no line. */
  flush(): Promise<void> {
    return new Promise((resolve) => {
      if (this.sink.writableLength === 0 && !this.sink.writableNeedDrain) {
        resolve();
        return;
      }
      this.sink.write('', () => resolve());
    });
  }
}
