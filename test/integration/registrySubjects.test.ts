/**
 * Subjects that other clients created (integration, Apicurio's Confluent API): a subject another producer registered
 * first is used as it is, not refused for its level; a subject that holds another team's record, or a version the
 * registry finds incompatible, ends `apilog produce` with one line that says the registry refused (not that it
 * cannot be reached), names the subject and the conflict, and says what to do.
 */
import { describe, expect, it } from 'vitest';
import { SchemaRefusedError } from '../../schemas/registry.ts';
import { API_CALL_SCHEMA_V1, valueSubject } from '../../schemas/apiCall.ts';
import { registryClient, stack, uniqueName } from './pipeline.ts';
import { APILOG, run } from './processes.ts';

/** Registers as a client that sets no level of its own does (Python's, Java's): a plain POST of the schema. */
async function registerAsAnotherClient(subject: string, schema: string): Promise<number> {
  const res = await fetch(`${stack().registry}/subjects/${encodeURIComponent(subject)}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { id: number }).id;
}

const ORDER = JSON.stringify({ type: 'record', name: 'Order', namespace: 'shop', fields: [{ name: 'id', type: 'string' }, { name: 'amount', type: 'long' }] });

describe('registry subjects created by other clients (integration)', () => {
  it('a subject another client created with our schema: found, same id, its level left as it is', async () => {
    const subject = `${uniqueName('it-subject-theirs')}-value`;
    const id = await registerAsAnotherClient(subject, API_CALL_SCHEMA_V1);
    const registry = registryClient();
    const levelBefore = await registry.compatibilityLevel(subject);
    expect(await registry.register(subject, API_CALL_SCHEMA_V1)).toBe(id);
    expect(await registry.versions(subject)).toEqual([1]);
    expect(await registry.compatibilityLevel(subject)).toBe(levelBefore);
  });

  it('a subject this client creates gets level BACKWARD', async () => {
    const subject = `${uniqueName('it-subject-ours')}-value`;
    const registry = registryClient();
    const id = await registry.register(subject, API_CALL_SCHEMA_V1);
    expect(await registry.register(subject, API_CALL_SCHEMA_V1)).toBe(id);
    expect(await registry.compatibilityLevel(subject)).toBe('BACKWARD');
  });

  it('`apilog produce` on a topic whose subject holds another record: one line, the subject, the conflict, what to do; exit 78', async () => {
    const topic = uniqueName('it-subject-foreign');
    await registerAsAnotherClient(valueSubject(topic), ORDER);
    const s = stack();
    const produce = await run([...APILOG, 'produce', '--brokers', s.brokers, '--registry', s.registry, '--topic', topic, '--count', '10'], { timeoutMs: 60_000 });
    expect(produce.code).toBe(78);
    const lines = produce.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^apilog: schema registry at \\S+: subject ${topic}-value holds record shop\\.Order \\(version 1, level [A-Z_]+\\), not record apilog\\.ApiCall; ` +
          `another producer writes a different record type to this topic\\. Give apilog a topic of its own \\(--topic, or APILOG_TOPIC\\), ` +
          `or, if what ${topic}-value holds is obsolete, delete it \\(DELETE /subjects/${topic}-value\\) and start again$`,
      ),
    );
    expect(produce.stderr).not.toContain('cannot reach');
    expect(await registryClient().versions(valueSubject(topic))).toEqual([1]);
  });

  it('a version the registry finds incompatible: SchemaRefusedError with the level and the registry’s reason', async () => {
    const subject = `${uniqueName('it-subject-incompatible')}-value`;
    const registry = registryClient();
    await registry.register(subject, API_CALL_SCHEMA_V1);
    const breaking = JSON.parse(API_CALL_SCHEMA_V1) as { fields: unknown[] };
    breaking.fields.push({ name: 'required_without_default', type: 'string', doc: 'breaks readers of older data' });
    const error = await registry.register(subject, JSON.stringify(breaking)).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaRefusedError);
    expect((error as Error).message).toMatch(
      new RegExp(`^schema registry at \\S+ refused the schema for subject ${subject}: it is not compatible with the latest of its 1 version\\(s\\) under level BACKWARD \\(.*required_without_default.*\\)\\. Give apilog a topic of its own`),
    );
    expect((error as SchemaRefusedError).retriable).toBe(false);
  });
});
