/**
 * The schema registry as production runs it: behind TLS and authentication. Apicurio's own authentication needs an
 * OpenID Connect server (Keycloak), which cannot run here; the closest real setup is a reverse proxy from Debian
 * (nginx) in front of it, terminating TLS with a certificate from our own CA and checking credentials:
 *
 * - `basicPort`: HTTP basic auth (an htpasswd file made with `openssl passwd`),
 * - `bearerPort`: a bearer token (`Authorization: Bearer <token>`, compared by nginx),
 *
 * both proxying to the registry's Confluent API. A private instance (own id, ports, config under STACK_DIR), started
 * and stopped by pid like the stack's services (stack.ts startService / stopService).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { certificatesIn, makeCertificates, type Certificates } from './certificates.ts';
import { STACK_DIR } from './endpoints.ts';
import { hasCommand, run, StackError, type Service } from './services.ts';

export interface RegistryProxyOptions {
  /** Names its pid file, log and config directory. @default 'registry-proxy' */
  readonly id?: string;
  readonly basicPort: number;
  readonly bearerPort: number;
  /** Where the registry listens, host:port (the proxy forwards every path as it is). */
  readonly upstream: string;
  readonly username: string;
  readonly password: string;
  readonly token: string;
  /** Where its CA and certificate are (made there if missing). @default <its config directory>/tls */
  readonly certificatesDir?: string;
}

export interface RegistryProxy extends Service {
  readonly certificates: Certificates;
  /** The Confluent API through basic auth and through a bearer token. */
  readonly basicUrl: string;
  readonly bearerUrl: string;
}

/** Debian's nginx, installed as root when missing; a note when it did. */
export function installNginx(): string | undefined {
  if (hasCommand('nginx')) return undefined;
  if (process.getuid?.() !== 0 || !hasCommand('apt-get')) throw new StackError('nginx is not installed: run `apt-get install nginx-light` as root');
  run('apt-get', ['update', '-qq'], 'apt-get update');
  run('apt-get', ['install', '-y', '-qq', 'nginx-light'], 'installing nginx-light');
  return 'nginx-light (Debian package)';
}

/** Quoting for an nginx string literal. */
const nginxString = (value: string) => `"${value.replace(/["\\$]/g, (c) => `\\${c}`)}"`;

export function registryProxyService(options: RegistryProxyOptions): RegistryProxy {
  const id = options.id ?? 'registry-proxy';
  const dir = join(STACK_DIR, id);
  const config = join(dir, 'nginx.conf');
  const tlsDir = options.certificatesDir ?? join(dir, 'tls');
  const certificates = certificatesIn(tlsDir);
  const path = '/apis/ccompat/v7';
  const basicUrl = `https://127.0.0.1:${options.basicPort}${path}`;
  const bearerUrl = `https://127.0.0.1:${options.bearerPort}${path}`;
  return {
    name: 'registry',
    id,
    endpoint: basicUrl,
    marker: config,
    startTimeoutMs: 20_000,
    certificates,
    basicUrl,
    bearerUrl,
    install: installNginx,
    prepare() {
      makeCertificates(tlsDir);
      mkdirSync(join(dir, 'tmp'), { recursive: true });
      const hash = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: `${options.password}\n` }).toString().trim();
      writeFileSync(join(dir, 'htpasswd'), `${options.username}:${hash}\n`, { mode: 0o644 });
      const tls = [`ssl_certificate ${certificates.serverCert};`, `ssl_certificate_key ${certificates.serverKey};`, 'ssl_protocols TLSv1.2 TLSv1.3;'];
      const proxy = [`location / { proxy_pass http://${options.upstream}; proxy_set_header Authorization ""; }`];
      writeFileSync(
        config,
        [
          '# Written by stack/registryProxy.ts: TLS and authentication in front of the schema registry.',
          // Started as root, nginx runs its workers as nobody/www-data, who cannot read these files when the project
          // sits in a directory only its owner may enter (mktemp -d makes such directories): the workers stay ours.
          ...(process.getuid?.() === 0 ? ['user root;'] : []),
          'worker_processes 1;',
          `pid ${join(dir, 'nginx.pid')};`,
          `error_log ${join(dir, 'error.log')} warn;`,
          'events { worker_connections 256; }',
          'http {',
          '  access_log off;',
          `  client_body_temp_path ${join(dir, 'tmp')}; proxy_temp_path ${join(dir, 'tmp')};`,
          `  fastcgi_temp_path ${join(dir, 'tmp')}; uwsgi_temp_path ${join(dir, 'tmp')}; scgi_temp_path ${join(dir, 'tmp')};`,
          `  server { listen 127.0.0.1:${options.basicPort} ssl; ${tls.join(' ')}`,
          `    auth_basic "apilog registry"; auth_basic_user_file ${join(dir, 'htpasswd')};`,
          `    ${proxy.join(' ')} }`,
          `  server { listen 127.0.0.1:${options.bearerPort} ssl; ${tls.join(' ')}`,
          `    if ($http_authorization != ${nginxString(`Bearer ${options.token}`)}) { return 401; }`,
          `    ${proxy.join(' ')} }`,
          '}',
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
    },
    command() {
      return { command: 'nginx', args: ['-c', config, '-p', dir, '-g', 'daemon off;'] };
    },
    async healthy() {
      if (!existsSync(certificates.caCert)) return false;
      const dispatcher = new Agent({ connect: { ca: readFileSync(certificates.caCert) } });
      try {
        const authorization = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`;
        const res = await fetch(`${basicUrl}/subjects`, { headers: { authorization }, dispatcher, signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return res.ok;
      } catch {
        return false;
      } finally {
        await dispatcher.close();
      }
    },
  };
}
