/**
 * Is a new version of the contract safe to deploy? Two independent answers:
 * - avsc's resolver, offline: a reader of the new version must be able to read every older version's bytes
 *   (BACKWARD_TRANSITIVE: consumers upgrade first, then producers, and old events stay on the topic);
 * - the schema registry's compatibility endpoint, under the subject's configured level (see registry.ts).
 * `apilog schemas check` and the tests use both.
 */
import avro from 'avsc';
import type { SchemaRegistryClient } from './registry.ts';

export interface SchemaVersion {
  readonly version: number;
  readonly text: string;
}

export interface PairVerdict {
  /** The version that reads (newer). */
  readonly reader: number;
  /** The version whose bytes are read (older). */
  readonly writer: number;
  readonly compatible: boolean;
  /** avsc's reason when not compatible. */
  readonly reason?: string;
}

const parse = (text: string) => avro.Type.forSchema(JSON.parse(text) as avro.Schema);

/** Whether data written with `writer` can be read with `reader` (avsc's schema resolution rules). */
export function canRead(reader: string, writer: string): { compatible: boolean; reason?: string } {
  try {
    parse(reader).createResolver(parse(writer));
    return { compatible: true };
  } catch (error) {
    return { compatible: false, reason: (error as Error).message.split('\n')[0] ?? String(error) };
  }
}

/** Every version read against every older one (BACKWARD_TRANSITIVE), oldest pairs first. */
export function checkBackwardTransitive(versions: readonly SchemaVersion[]): PairVerdict[] {
  const out: PairVerdict[] = [];
  for (let r = 1; r < versions.length; r++) {
    for (let w = 0; w < r; w++) {
      const verdict = canRead(versions[r]!.text, versions[w]!.text);
      out.push({ reader: versions[r]!.version, writer: versions[w]!.version, ...verdict });
    }
  }
  return out;
}

/** Names of record fields (at any depth) that have no `doc`: every field of the contract must say what it means. */
export function undocumentedFields(text: string): string[] {
  const missing: string[] = [];
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) {
      for (const branch of node) walk(branch, path);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const record = node as { type?: unknown; fields?: unknown; items?: unknown; values?: unknown; name?: unknown };
    if (record.type === 'record' && Array.isArray(record.fields)) {
      for (const field of record.fields as { name: string; doc?: unknown; type: unknown }[]) {
        const name = path ? `${path}.${field.name}` : field.name;
        if (typeof field.doc !== 'string' || field.doc.trim() === '') missing.push(name);
        walk(field.type, name);
      }
    }
    walk(record.items, path);
    walk(record.values, path);
  };
  walk(JSON.parse(text) as unknown, '');
  return missing;
}

export type RegistryVerdict =
  | { readonly kind: 'compatible'; readonly level: string; readonly latest: number }
  | { readonly kind: 'incompatible'; readonly level: string; readonly latest: number; readonly messages: readonly string[] }
  /** Nothing registered yet: any first version is accepted. */
  | { readonly kind: 'no-subject' }
  /** Level NONE: the registry accepts anything, so its answer proves nothing. */
  | { readonly kind: 'unchecked'; readonly level: string; readonly latest: number };

/**
 * Asks the registry whether `schema` may follow the latest version of `subject`. Checks the subject exists
 * and its level first, because Apicurio answers is_compatible=true both for unknown subjects and under NONE.
 */
export async function checkWithRegistry(registry: SchemaRegistryClient, subject: string, schema: string): Promise<RegistryVerdict> {
  const versions = await registry.versions(subject);
  if (versions.length === 0) return { kind: 'no-subject' };
  const latest = versions[versions.length - 1]!;
  const level = await registry.compatibilityLevel(subject);
  const answer = await registry.testCompatibility(subject, schema);
  if (answer === undefined) return { kind: 'no-subject' };
  if (level === 'NONE') return { kind: 'unchecked', level, latest };
  return answer.compatible
    ? { kind: 'compatible', level, latest }
    : { kind: 'incompatible', level, latest, messages: answer.messages };
}
