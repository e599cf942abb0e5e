/**
 * The registry's compatibility endpoint (Apicurio 3.0.9 through its Confluent API), as `apilog schemas check`
 * uses it: POST /compatibility/subjects/{subject}/versions/latest answers under the subject's level, and the
 * registry refuses to register what it calls incompatible. Also pins Apicurio's two answers that differ from
 * Confluent's: is_compatible=true for a subject that does not exist (Confluent: 404), and for anything under
 * level NONE (which Apicurio reports for a subject that has no rule of its own).
 */
import { describe, expect, it } from 'vitest';
import { API_CALL_SCHEMA_V1, API_CALL_SCHEMA_V2 } from '../../schemas/apiCall.ts';
import { checkWithRegistry } from '../../schemas/compatibility.ts';
import { registryClient, stack, uniqueName } from './pipeline.ts';

const incompatible = (() => {
  const schema = JSON.parse(API_CALL_SCHEMA_V2) as { fields: { name: string; type: unknown; default?: unknown; doc: string }[] };
  schema.fields.push({ name: 'required_without_default', type: 'string', doc: 'breaks readers of older data' });
  return JSON.stringify(schema);
})();

async function setLevel(subject: string, level: string): Promise<void> {
  const res = await fetch(`${stack().registry}/config/${encodeURIComponent(subject)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ compatibility: level }),
  });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

describe('schema registry compatibility endpoint (integration)', () => {
  it('says v2 is compatible with v1 under BACKWARD, a default-less new field is not, and refuses to register it', async () => {
    const registry = registryClient();
    const subject = `${uniqueName('it-compat')}-value`;
    await registry.register(subject, API_CALL_SCHEMA_V1); // first registration sets BACKWARD
    expect(await registry.compatibilityLevel(subject)).toBe('BACKWARD');
    expect(await checkWithRegistry(registry, subject, API_CALL_SCHEMA_V2)).toEqual({ kind: 'compatible', level: 'BACKWARD', latest: 1 });
    expect(await checkWithRegistry(registry, subject, incompatible)).toMatchObject({ kind: 'incompatible', level: 'BACKWARD', latest: 1 });
    await expect(registry.register(subject, incompatible)).rejects.toThrow(/refused|409|ncompatible/);
    expect(await registry.versions(subject)).toEqual([1]);
    await registry.register(subject, API_CALL_SCHEMA_V2);
    expect(await registry.versions(subject)).toEqual([1, 2]);
  });

  it("reports Apicurio's vacuous answers as unchecked, not as passed", async () => {
    const registry = registryClient();
    const unknown = `${uniqueName('it-compat-none')}-value`;
    // Apicurio answers is_compatible=true for a subject it does not know; the check looks at the versions first.
    expect(await registry.testCompatibility(unknown, incompatible)).toEqual({ compatible: true, messages: [] });
    expect(await checkWithRegistry(registry, unknown, incompatible)).toEqual({ kind: 'no-subject' });
    // Under NONE it accepts anything.
    await registry.register(unknown, API_CALL_SCHEMA_V1);
    await setLevel(unknown, 'NONE');
    expect(await registry.testCompatibility(unknown, incompatible)).toEqual({ compatible: true, messages: [] });
    expect(await checkWithRegistry(registry, unknown, incompatible)).toEqual({ kind: 'unchecked', level: 'NONE', latest: 1 });
  });
});
