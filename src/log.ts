/**
 * How every part of the connector says what it is doing: one function type, so that nothing below the commands
 * depends on how lines are printed (airbyte/output.ts prints them as Airbyte LOG messages).
 */

/** The levels of Airbyte's LOG messages, most severe first. */
export type LogLevel = 'FATAL' | 'ERROR' | 'WARN' | 'INFO' | 'DEBUG' | 'TRACE';

export type Log = (level: LogLevel, message: string) => void;
