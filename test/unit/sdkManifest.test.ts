/**
 * The SDK package's manifest (producer/package.json) against the repository's: the SDK ships with the ranges
 * of the packages the repository installs, builds and tests it with, and stays a small install.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';

interface Manifest {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const read = (path: string) => JSON.parse(readFileSync(join(PROJECT_ROOT, path), 'utf8')) as Manifest;

describe('SDK manifest', () => {
  const sdk = read('producer/package.json');
  const root = read('package.json');

  test('every dependency and peer of the SDK has the range the repository installs', () => {
    const shipped = { ...sdk.dependencies, ...sdk.peerDependencies };
    const installed = { ...root.dependencies, ...root.devDependencies };
    for (const [name, range] of Object.entries(shipped)) expect(`${name}@${installed[name]}`).toBe(`${name}@${range}`);
  });

  test('the consumer, its embedded engine, the web frameworks and the TypeScript loader are not dependencies of the SDK', () => {
    const all = Object.keys({ ...sdk.dependencies, ...sdk.peerDependencies });
    for (const name of ['chdb', '@clickhouse/client', 'express', 'fastify', 'tsx', 'commander']) expect(all).not.toContain(name);
    // Peers are optional: npm installs none of them unasked.
    for (const name of Object.keys(sdk.peerDependencies ?? {})) expect(sdk.peerDependenciesMeta?.[name]?.optional, name).toBe(true);
  });
});
