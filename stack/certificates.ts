/**
 * A private certificate authority for the secured services (stack/registryProxy.ts), made with openssl: a CA key and
 * certificate, and a server key and certificate it signs for 127.0.0.1 and localhost. Clients trust the CA file.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireCommand, run } from './services.ts';

export interface Certificates {
  /** PEM certificate of the CA: what clients pass as their CA (--registry-ca, --kafka-ca, --clickhouse-ca). */
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
}

/** Where makeCertificates(dir) puts them. */
export function certificatesIn(dir: string): Certificates {
  return { caCert: join(dir, 'ca.pem'), serverCert: join(dir, 'server.pem'), serverKey: join(dir, 'server.key') };
}

/** Creates the CA and a server certificate in `dir` unless they are there already (idempotent). */
export function makeCertificates(dir: string): Certificates {
  const certs = certificatesIn(dir);
  if (existsSync(certs.serverCert)) return certs;
  requireCommand('openssl', 'it makes the secured services\' certificates');
  mkdirSync(dir, { recursive: true });
  const caKey = join(dir, 'ca.key');
  const csr = join(dir, 'server.csr');
  const ext = join(dir, 'server.ext');
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', '/CN=apilog test CA', '-keyout', caKey, '-out', certs.caCert], 'making the CA');
  run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', certs.serverKey, '-out', csr], 'making the server key');
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  run('openssl', ['x509', '-req', '-in', csr, '-CA', certs.caCert, '-CAkey', caKey, '-CAcreateserial', '-days', '30', '-extfile', ext, '-out', certs.serverCert], 'signing the server certificate');
  return certs;
}
