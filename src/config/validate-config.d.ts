// The validator compiled from spec.json at build time (scripts/compile-validator.mjs).
import type { ErrorObject } from 'ajv';

export declare const validate: ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
