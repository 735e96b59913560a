import { connectorSpec } from '../config/spec.js';
import type { Output } from '../airbyte/output.js';

export function spec(output: Output): void {
  output.spec(connectorSpec());
}
