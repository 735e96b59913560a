/**
 * What a destination may print on stdout, as a JSON Schema of the Airbyte protocol's messages (release 0.18), and the
 * check every test applies to every line the connector prints. The platform reads each line by these definitions, so
 * a line that breaks them can be dropped or fail the sync even when a test, reading only the fields it looks for, is
 * satisfied with it.
 *
 * Written from the protocol's documented definitions. As there, every object accepts members the schema does not name
 * (a newer platform or source may add some). On top of the protocol, what a destination in particular may print:
 * STATE, LOG, SPEC, CONNECTION_STATUS and TRACE, each with the member its type names. RECORD, CATALOG and CONTROL are
 * defined by the protocol but are not a destination's to print, so their bodies are not described here.
 */
import Ajv, { type ErrorObject } from 'ajv';

/** A parsed stdout line: an object with at least a string `type`. */
export type AirbyteLine = Record<string, unknown> & { type: string };

export const MESSAGE_TYPES = [
  'RECORD',
  'STATE',
  'LOG',
  'SPEC',
  'CONNECTION_STATUS',
  'CATALOG',
  'TRACE',
  'CONTROL',
] as const;

/** The message types a destination prints, each with the member that carries its body. */
export const DESTINATION_MESSAGE_MEMBERS = {
  STATE: 'state',
  LOG: 'log',
  SPEC: 'spec',
  CONNECTION_STATUS: 'connectionStatus',
  TRACE: 'trace',
} as const;

/** DestinationSyncMode as of protocol 0.18. The platform's own configuration knows more modes; the protocol does not. */
export const DESTINATION_SYNC_MODES = ['append', 'overwrite', 'append_dedup', 'update', 'soft_delete'] as const;

const DESTINATION_TYPES = Object.keys(DESTINATION_MESSAGE_MEMBERS);

const object = { type: 'object' } as const;
const string = { type: 'string' } as const;
const number = { type: 'number' } as const;
const boolean = { type: 'boolean' } as const;
const ref = (name: string): { $ref: string } => ({ $ref: `#/definitions/${name}` });
/** A condition on the value of `type`, for if/then: only applies when `type` is there. */
const typeIs = (condition: Record<string, unknown>): Record<string, unknown> => ({
  type: 'object',
  required: ['type'],
  properties: { type: condition },
});

/**
 * A `description` on a schema that fails is shown with the problem: only the rules whose reason is not obvious from the
 * keyword carry one.
 */
export const AIRBYTE_DESTINATION_STDOUT_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'destination-mqtt/test/airbyte-destination-stdout',
  title: 'A line a destination prints on stdout',
  allOf: [ref('AirbyteMessage'), ref('DestinationStdout')],
  definitions: {
    AirbyteMessage: {
      type: 'object',
      required: ['type'],
      properties: {
        type: { type: 'string', enum: MESSAGE_TYPES },
        log: ref('AirbyteLogMessage'),
        spec: ref('ConnectorSpecification'),
        connectionStatus: ref('AirbyteConnectionStatus'),
        state: ref('AirbyteStateMessage'),
        trace: ref('AirbyteTraceMessage'),
      },
    },

    /** The destination's share of the protocol: which types it prints, and that the body the type names is there. */
    DestinationStdout: {
      type: 'object',
      // Only once the type is one the protocol knows: an unknown type is refused once, by AirbyteMessage.
      if: typeIs({ enum: MESSAGE_TYPES }),
      then: {
        properties: {
          type: {
            enum: DESTINATION_TYPES,
            description:
              'a destination prints only STATE, LOG, SPEC, CONNECTION_STATUS and TRACE; RECORD, CATALOG and CONTROL are not its to print',
          },
        },
      },
      allOf: Object.entries(DESTINATION_MESSAGE_MEMBERS).map(([type, member]) => ({
        if: typeIs({ const: type }),
        then: { required: [member], description: `a ${type} message carries its body in ${member}` },
      })),
    },

    AirbyteLogMessage: {
      type: 'object',
      required: ['level', 'message'],
      properties: {
        level: { type: 'string', enum: ['FATAL', 'ERROR', 'WARN', 'INFO', 'DEBUG', 'TRACE'] },
        message: string,
        stack_trace: string,
      },
    },

    AirbyteConnectionStatus: {
      type: 'object',
      required: ['status'],
      properties: {
        status: { type: 'string', enum: ['SUCCEEDED', 'FAILED'] },
        message: string,
      },
    },

    AirbyteTraceMessage: {
      type: 'object',
      required: ['type', 'emitted_at'],
      properties: {
        type: { type: 'string', enum: ['ERROR', 'ESTIMATE', 'STREAM_STATUS', 'ANALYTICS'] },
        // Milliseconds since the epoch; the protocol types it as a number, not an integer.
        emitted_at: number,
        error: ref('AirbyteErrorTraceMessage'),
      },
      if: typeIs({ const: 'ERROR' }),
      then: { required: ['error'], description: 'a TRACE of type ERROR carries its error' },
    },

    AirbyteErrorTraceMessage: {
      type: 'object',
      required: ['message'],
      properties: {
        message: string,
        internal_message: string,
        stack_trace: string,
        failure_type: { type: 'string', enum: ['system_error', 'config_error', 'transient_error'] },
        stream_descriptor: ref('StreamDescriptor'),
      },
    },

    AirbyteStateMessage: {
      type: 'object',
      properties: {
        // Absent means LEGACY, read from `data`.
        type: { type: 'string', enum: ['GLOBAL', 'STREAM', 'LEGACY'] },
        stream: ref('AirbyteStreamState'),
        global: ref('AirbyteGlobalState'),
        data: object,
        sourceStats: ref('AirbyteStateStats'),
        destinationStats: ref('AirbyteStateStats'),
      },
    },

    AirbyteStreamState: {
      type: 'object',
      required: ['stream_descriptor'],
      properties: {
        stream_descriptor: ref('StreamDescriptor'),
        stream_state: ref('AirbyteStateBlob'),
      },
    },

    AirbyteGlobalState: {
      type: 'object',
      required: ['stream_states'],
      properties: {
        shared_state: ref('AirbyteStateBlob'),
        stream_states: { type: 'array', items: ref('AirbyteStreamState') },
      },
    },

    /** A source's own state: any object. */
    AirbyteStateBlob: object,

    /** Counts are doubles in the protocol (printed with a decimal point), so any number. */
    AirbyteStateStats: {
      type: 'object',
      properties: {
        recordCount: number,
        rejectedRecordCount: number,
      },
    },

    StreamDescriptor: {
      type: 'object',
      required: ['name'],
      properties: {
        name: string,
        namespace: string,
      },
    },

    ConnectorSpecification: {
      type: 'object',
      required: ['connectionSpecification'],
      properties: {
        // The protocol says format uri; not checked here.
        documentationUrl: string,
        changelogUrl: string,
        connectionSpecification: object,
        supportsIncremental: boolean,
        supportsNormalization: boolean,
        supportsDBT: boolean,
        supported_destination_sync_modes: { type: 'array', items: ref('DestinationSyncMode') },
        advanced_auth: object,
        protocol_version: string,
      },
    },

    DestinationSyncMode: { type: 'string', enum: DESTINATION_SYNC_MODES },
  },
} as const;

// A copy in which no two places share an object (structuredClone would keep the sharing), so that each failing schema
// can be found again by identity and the problem can name its place in the schema: with references compiled apart,
// ajv's schemaPath starts at the nearest definition without naming it.
const compiled = JSON.parse(JSON.stringify(AIRBYTE_DESTINATION_STDOUT_SCHEMA)) as Record<string, unknown>;
const placeOf = new WeakMap<object, string>();
(function index(node: unknown, place: string): void {
  if (typeof node !== 'object' || node === null) return;
  placeOf.set(node, place);
  for (const [key, value] of Object.entries(node)) index(value, place === '' ? key : `${place}/${key}`);
})(compiled, '');

// strictRequired off: a then-branch requires members its parent defines. inlineRefs off: every definition is compiled
// once, on its own. verbose: each error carries the failing schema (for its place and description) and the value.
const ajv = new Ajv.default({ allErrors: true, strict: true, strictRequired: false, inlineRefs: false, verbose: true });
const validate = ajv.compile(compiled);

/** A JSON pointer as a JSONPath-like `$.a.b[0]`, the way people read it. */
function pathOf(pointer: string, member?: string): string {
  const keys =
    pointer === ''
      ? []
      : pointer
          .slice(1)
          .split('/')
          .map((key) => key.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (member !== undefined) keys.push(member);
  return keys.reduce((path, key) => {
    if (/^\d+$/.test(key)) return `${path}[${key}]`;
    return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
  }, '$');
}

/** A value as a problem shows it: its JSON type, and the value itself unless it is an object or an array. */
function shown(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return `${typeof value} ${text.length > 80 ? `${text.slice(0, 80)}...` : text}`;
}

function problemOf(error: ErrorObject): string {
  const place = error.parentSchema === undefined ? undefined : placeOf.get(error.parentSchema);
  const rule = (place === undefined ? error.schemaPath : `${place}/${error.keyword}`).replace(
    /^(#\/)?(definitions\/)?/,
    '',
  );
  const description = (error.parentSchema as { description?: unknown } | undefined)?.description;
  const why = typeof description === 'string' ? `: ${description}` : '';
  switch (error.keyword) {
    case 'required': {
      const { missingProperty } = error.params as { missingProperty: string };
      return `${pathOf(error.instancePath, missingProperty)} is required but missing${why} [${rule}]`;
    }
    case 'enum': {
      const { allowedValues } = error.params as { allowedValues: readonly unknown[] };
      return `${pathOf(error.instancePath)} is ${shown(error.data)}, not one of ${allowedValues.map(String).join(', ')}${why} [${rule}]`;
    }
    case 'type': {
      const { type } = error.params as { type: string };
      return `${pathOf(error.instancePath)} is ${shown(error.data)}, must be of type ${type}${why} [${rule}]`;
    }
    default:
      return `${pathOf(error.instancePath)} ${error.message ?? 'is refused'}${why} [${rule}]`;
  }
}

/**
 * Everything the protocol (and a destination's share of it) refuses in `message`, one text per problem naming the JSON
 * path, what is wrong, and the rule in the schema; empty when the message is one a destination may print.
 */
export function protocolProblems(message: unknown): string[] {
  if (validate(message)) return [];
  // An if/then failure only repeats the problem found inside its `then`; a value that is not an object is refused by
  // both AirbyteMessage and DestinationStdout, and said once.
  const problems = new Map<string, string>();
  for (const error of validate.errors ?? []) {
    if (error.keyword === 'if') continue;
    const problem = problemOf(error);
    const said = problem.slice(0, problem.lastIndexOf(' ['));
    if (!problems.has(said)) problems.set(said, problem);
  }
  return [...problems.values()];
}

/** The line, cut to `max` characters, for error messages about it. */
export function shortened(line: string, max = 300): string {
  return line.length > max ? `${line.slice(0, max)}... (${line.length} characters)` : line;
}

/**
 * One stdout line parsed and checked: throws, naming the line (its number when given) and every problem, unless it is
 * a JSON message a destination may print.
 */
export function parseProtocolLine(line: string, lineNumber?: number): AirbyteLine {
  const where = lineNumber === undefined ? 'stdout line' : `stdout line ${lineNumber}`;
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch (err) {
    throw new Error(`${where} is not JSON (${(err as Error).message}): ${shortened(line)}`, { cause: err });
  }
  const problems = protocolProblems(message);
  if (problems.length > 0) {
    throw new Error(
      `${where} is not an Airbyte message a destination may print: ${shortened(line)}\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  }
  return message as AirbyteLine;
}

/** Every non-empty line of `stdout`, parsed and checked by parseProtocolLine. */
export function parseProtocolLines(stdout: string): AirbyteLine[] {
  const messages: AirbyteLine[] = [];
  stdout.split('\n').forEach((line, index) => {
    if (line !== '') messages.push(parseProtocolLine(line, index + 1));
  });
  return messages;
}
