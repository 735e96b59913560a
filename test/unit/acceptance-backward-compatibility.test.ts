import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { backwardCompatibilityProblems } from '../../scripts/acceptance/backward-compatibility.js';
import { PROJECT_ROOT } from '../support/connector.js';

type Spec = Record<string, unknown>;
const read = (path: string): Spec => JSON.parse(readFileSync(join(PROJECT_ROOT, path), 'utf8')) as Spec;
const previousSpec = read('integration_tests/previous_spec_0.1.3.json');
const currentSpec = read('spec.json');

/** A spec around one property, as the previous or current version declares it. */
const spec = (property: Record<string, unknown>, extra: Record<string, unknown> = {}): Spec => ({
  connectionSpecification: { type: 'object', properties: { p: property }, ...extra },
});
const problems = (previous: Spec, current: Spec): string[] =>
  backwardCompatibilityProblems(previous, current, { previousVersion: '0.9' });

describe('backward compatibility of the spec', () => {
  describe('0.1.3 (the archived Java connector) against spec.json', () => {
    const found = backwardCompatibilityProblems(previousSpec, currentSpec, { previousVersion: '0.1.3' });

    it('finds the narrowed broker_port range', () => {
      assert.ok(
        found.includes('broker_port: 0 was valid in 0.1.3 and is refused now (must be >= 1)'),
        found.join('\n'),
      );
      assert.ok(
        found.includes('broker_port: 65536 was valid in 0.1.3 and is refused now (must be <= 65535)'),
        found.join('\n'),
      );
    });

    it('finds the narrowed connect_timeout range, and no longer its 0 (no limit in the Java connector, accepted again)', () => {
      assert.ok(
        found.includes('connect_timeout: -1 was valid in 0.1.3 and is refused now (must be >= 0)'),
        found.join('\n'),
      );
      assert.ok(
        found.includes('connect_timeout: 2147483648 was valid in 0.1.3 and is refused now (must be <= 86400)'),
        found.join('\n'),
      );
      assert.ok(!found.some((problem) => problem.startsWith('connect_timeout: 0 ')), found.join('\n'));
    });

    it('finds that broker_host may no longer be empty', () => {
      assert.ok(
        found.includes('broker_host: "" was valid in 0.1.3 and is refused now (must NOT have fewer than 1 characters)'),
        found.join('\n'),
      );
    });

    it('does not count the shorter required list: fewer required properties refuse nothing', () => {
      assert.deepEqual(
        found.filter((problem) => /required/.test(problem)),
        [],
      );
    });

    it('finds nothing the spec does not narrow: message_qos gaining type "string" keeps all its enum values', () => {
      assert.deepEqual(
        found.filter((problem) => !/^(broker_host|broker_port|connect_timeout|topic_pattern): /.test(problem)),
        [],
      );
    });
  });

  it('finds nothing when a spec is compared with itself', () => {
    assert.deepEqual(backwardCompatibilityProblems(previousSpec, previousSpec), []);
    assert.deepEqual(backwardCompatibilityProblems(currentSpec, currentSpec), []);
  });

  describe('each rule', () => {
    it('a type changed or narrowed', () => {
      assert.deepEqual(problems(spec({ type: 'string' }), spec({ type: 'integer' })), [
        'p: type changed from "string" to "integer"',
        'p: "x" was valid in 0.9 and is refused now (must be integer)',
        'p: "" was valid in 0.9 and is refused now (must be integer)',
      ]);
      assert.ok(
        problems(spec({ type: ['string', 'integer'] }), spec({ type: 'string' })).includes(
          'p: type narrowed from ["string","integer"] to "string"',
        ),
      );
    });

    it('a type widened is allowed: to nullable, or to a list that holds the old type', () => {
      assert.deepEqual(problems(spec({ type: 'string' }), spec({ type: ['string', 'null'] })), []);
      assert.deepEqual(problems(spec({ type: 'string' }), spec({ type: ['integer', 'string'] })), []);
      assert.deepEqual(problems(spec({ type: ['string'] }), spec({ type: 'string' })), []);
      assert.deepEqual(problems(spec({ type: 'string' }), spec({})), []);
    });

    it('a nullable type made non-nullable', () => {
      assert.deepEqual(problems(spec({ type: ['string', 'null'] }), spec({ type: 'string' })), [
        'p: made non-nullable (type ["string","null"] is now "string")',
        'p: null was valid in 0.9 and is refused now (must be string)',
      ]);
    });

    it('an enum value removed', () => {
      assert.deepEqual(problems(spec({ type: 'string', enum: ['a', 'b'] }), spec({ type: 'string', enum: ['a'] })), [
        'p: enum value "b" removed',
        'p: "b" was valid in 0.9 and is refused now (must be equal to one of the allowed values)',
      ]);
      assert.deepEqual(problems(spec({ type: 'string', enum: ['a'] }), spec({ type: 'string', enum: ['a', 'b'] })), []);
    });

    it('an enum declared on an existing property', () => {
      assert.deepEqual(problems(spec({ type: 'string' }), spec({ type: 'string', enum: ['x'] })), [
        'p: enum ["x"] declared on an existing property',
        'p: "" was valid in 0.9 and is refused now (must be equal to one of the allowed values)',
      ]);
    });

    it('a property removed', () => {
      const previous = {
        connectionSpecification: { type: 'object', properties: { p: { type: 'string' }, gone: { type: 'string' } } },
      };
      assert.deepEqual(problems(previous, spec({ type: 'string' })), ['gone: property removed']);
    });

    it('a property added to required, or required declared where there was none', () => {
      const previous = spec(
        { type: 'string' },
        { properties: { p: { type: 'string' }, q: { type: 'string' } }, required: ['p'] },
      );
      const current = spec(
        { type: 'string' },
        { properties: { p: { type: 'string' }, q: { type: 'string' } }, required: ['p', 'q'] },
      );
      assert.deepEqual(problems(previous, current), [
        'q: added to required',
        "a configuration with only the required properties was valid in 0.9 and is refused now (must have required property 'q')",
      ]);
      assert.deepEqual(problems(spec({ type: 'string' }), spec({ type: 'string' }, { required: ['p'] })), [
        'connectionSpecification: required ["p"] declared where there was none',
        "a configuration with only the required properties was valid in 0.9 and is refused now (must have required property 'p')",
      ]);
      assert.deepEqual(problems(current, previous), [], 'fewer required properties refuse nothing');
    });

    it('a narrowed range, found by the generated configurations', () => {
      assert.deepEqual(problems(spec({ type: 'integer' }), spec({ type: 'integer', minimum: 0, maximum: 65535 })), [
        'p: -1 was valid in 0.9 and is refused now (must be >= 0)',
        'p: 65536 was valid in 0.9 and is refused now (must be <= 65535)',
        'p: 2147483648 was valid in 0.9 and is refused now (must be <= 65535)',
      ]);
      // The ends of the previous range itself, for a required property whose plain typical value it refuses.
      const required = { required: ['p'] };
      assert.deepEqual(
        problems(
          spec({ type: 'integer', minimum: 10, maximum: 65535 }, required),
          spec({ type: 'integer', maximum: 1000 }, required),
        ),
        ['p: 65535 was valid in 0.9 and is refused now (must be <= 1000)'],
      );
      assert.deepEqual(problems(spec({ type: 'string', maxLength: 64 }), spec({ type: 'string', maxLength: 23 })), [
        `p: "${'x'.repeat(64)}" was valid in 0.9 and is refused now (must NOT have more than 23 characters)`,
      ]);
    });

    it('a typical configuration of the previous version that is refused now', () => {
      const found = backwardCompatibilityProblems(
        spec({ type: 'string' }),
        spec({ type: 'string', pattern: '^[a-z]+$' }),
        {
          previousVersion: '0.9',
          typicalConfigs: [{ name: 'the old test configuration', config: { p: 'A-1' } }],
        },
      );
      assert.ok(
        found.includes(
          'the old test configuration was valid in 0.9 and is refused now (p must match pattern "^[a-z]+$")',
        ),
        found.join('\n'),
      );
    });

    it('looks into nested properties and array items', () => {
      const previous = spec({
        type: 'object',
        properties: { inner: { type: 'array', items: { type: ['string', 'null'] } } },
      });
      const current = spec({ type: 'object', properties: { inner: { type: 'array', items: { type: 'string' } } } });
      assert.ok(
        problems(previous, current).includes('p.inner[]: made non-nullable (type ["string","null"] is now "string")'),
      );
    });
  });
});
