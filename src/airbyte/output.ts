/**
 * Everything the connector prints: Airbyte messages, one JSON object per line, on stdout. Nothing else may reach
 * stdout, since the platform parses every line.
 *
 * Every text meant for people (log message, error message, internal message, stack trace, connection status message)
 * passes through a redactor that knows the configured secrets, so that no code path (an error text from a library, a
 * log line) can print a password even by accident. Redacting the serialised line instead broke the line itself
 * whenever the password equalled a key, an enum value, digits of the time or JSON punctuation: with the password
 * `type` every line read `{"**********":"LOG",...}`. Keys, enum values and numbers are the connector's own, and the
 * spec and state lines are printed as they are.
 */
import type { Writable } from 'node:stream';
import type { ConnectorError } from '../errors.js';
import type { LogLevel } from '../log.js';
import { REDACTED, Redactor } from '../text/redaction.js';

const LEVELS: readonly LogLevel[] = ['FATAL', 'ERROR', 'WARN', 'INFO', 'DEBUG', 'TRACE'];
export { REDACTED };

/** The most detailed level to print, from LOG_LEVEL (case-insensitive); INFO when unset or unknown. */
export function logLevelFrom(value: string | undefined): LogLevel {
  const level = value?.toUpperCase() as LogLevel | undefined;
  return level && LEVELS.includes(level) ? level : 'INFO';
}

export class Output {
  private readonly redactor = new Redactor();
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

  /** Values that must never appear in any text this prints. */
  redact(values: Iterable<string | undefined>): void {
    this.redactor.add(values);
  }

  /** `text` with every secret masked, for text that leaves by another way than this output (the status topic). */
  readonly redacted = (text: string): string => this.redactor.text(text);

  private write(message: object): void {
    this.sink.write(`${JSON.stringify(message)}\n`);
  }

  /** A state line produced by the checkpoints, already serialised; never redacted (it is the source's own state). */
  state(line: string): void {
    this.sink.write(`${line}\n`);
  }

  log(level: LogLevel, message: string): void {
    if (this.enabled(level)) this.write({ type: 'LOG', log: { level, message: this.redactor.text(message) } });
  }

  /** The specification, as spec.json has it: the connector's own text, printed before any configuration is known. */
  spec(spec: unknown): void {
    this.write({ type: 'SPEC', spec });
  }

  connectionStatus(status: 'SUCCEEDED' | 'FAILED', message: string): void {
    this.write({ type: 'CONNECTION_STATUS', connectionStatus: { status, message: this.redactor.text(message) } });
  }

  error(err: ConnectorError): void {
    const text = (value: string): string => this.redactor.text(value);
    const error: Record<string, string> = { message: text(err.message), failure_type: err.failureType };
    if (err.internalMessage) error.internal_message = text(err.internalMessage);
    if (err.stack) error.stack_trace = text(err.stack);
    this.write({ type: 'TRACE', trace: { type: 'ERROR', emitted_at: Date.now(), error } });
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
