/** Registry credentials and CA from the environment (cli/endpoints.ts registryFor), and what the client keeps of them. */
import { describe, expect, it } from 'vitest';
import { registryFor } from '../../cli/endpoints.ts';
import { ConfigError } from '../../runtime/errors.ts';
import { SchemaRegistryClient } from '../../schemas/registry.ts';

const endpoints = { registry: 'https://registry.example:8443/apis/ccompat/v7' };
const noFile = (file: string): Buffer => {
  throw new Error(`ENOENT: no such file, open '${file}'`);
};

describe('registry credentials', () => {
  it('takes basic auth or a token from the environment, never both, never half', () => {
    expect(registryFor(endpoints, {}, { SCHEMA_REGISTRY_USERNAME: 'u', SCHEMA_REGISTRY_PASSWORD: 'p' }).url).toBe(endpoints.registry);
    expect(registryFor(endpoints, {}, { SCHEMA_REGISTRY_TOKEN: 't' }).url).toBe(endpoints.registry);
    expect(() => registryFor(endpoints, {}, { SCHEMA_REGISTRY_USERNAME: 'u' })).toThrow(/SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD go together/);
    expect(() => registryFor(endpoints, {}, { SCHEMA_REGISTRY_PASSWORD: 'p' })).toThrow(ConfigError);
    expect(() => registryFor(endpoints, {}, { SCHEMA_REGISTRY_USERNAME: 'u', SCHEMA_REGISTRY_PASSWORD: 'p', SCHEMA_REGISTRY_TOKEN: 't' })).toThrow(/not both/);
  });

  it('reads the CA from --registry-ca before SCHEMA_REGISTRY_CA, and names the option when the file is missing', () => {
    const read: string[] = [];
    registryFor(endpoints, { registryCa: 'flag.pem' }, { SCHEMA_REGISTRY_CA: 'env.pem' }, (f) => (read.push(f), Buffer.from('')));
    registryFor(endpoints, {}, { SCHEMA_REGISTRY_CA: 'env.pem' }, (f) => (read.push(f), Buffer.from('')));
    expect(read).toEqual(['flag.pem', 'env.pem']);
    expect(() => registryFor(endpoints, { registryCa: '/nope/ca.pem' }, {}, noFile)).toThrow(/^--registry-ca \(or SCHEMA_REGISTRY_CA\) "\/nope\/ca\.pem": ENOENT/);
  });

  it('takes user:password from the URL as basic auth and keeps neither in its url nor anywhere JSON.stringify looks', () => {
    const client = new SchemaRegistryClient({ url: 'https://svc%40team:s3cr%2Ft@registry.example:8443/apis/ccompat/v7/' });
    expect(client.url).toBe('https://registry.example:8443/apis/ccompat/v7');
    expect(JSON.stringify(client)).not.toMatch(/s3cr|svc/);
    expect(() => new SchemaRegistryClient({ url: 'https://u:p@registry.example', auth: { token: 't' } })).toThrow(/given twice/);
    const withToken = new SchemaRegistryClient({ url: endpoints.registry, auth: { token: 'tok-123' } });
    expect(JSON.stringify(withToken)).not.toContain('tok-123');
    expect(() => new SchemaRegistryClient({ url: endpoints.registry, auth: { token: '' } })).toThrow(/token is empty/);
  });
});
