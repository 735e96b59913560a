/** Reading the Dockerfile: its stages and instructions, enough to check its invariants and to replay its build. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './connector.js';

export interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

export interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

export function readDockerfile(path = join(PROJECT_ROOT, 'Dockerfile')): Stage[] {
  const logical = readFileSync(path, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of logical) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (keyword.toUpperCase() === 'FROM') {
      const [image = '', as, name] = args.split(/\s+/);
      stages.push({ image, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

/** The value of ENV KEY="value" or ENV KEY=value in a stage. */
export function envValue(stage: Stage, key: string): string | undefined {
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== 'ENV') continue;
    const match = new RegExp(`^${key}=(?:"([^"]*)"|(\\S+))`).exec(args);
    if (match) return match[1] ?? match[2];
  }
  return undefined;
}

export function labels(stage: Stage): Record<string, string> {
  const result: Record<string, string> = {};
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== 'LABEL') continue;
    for (const match of args.matchAll(/([\w.-]+)=(?:"([^"]*)"|(\S+))/g))
      result[match[1] as string] = (match[2] ?? match[3]) as string;
  }
  return result;
}
