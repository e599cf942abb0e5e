/**
 * The third-party Kafka clients the interop tests run (test/interop/, test/integration/interop*.test.ts), installed
 * on first use and cached in CACHE_DIR like the stack's services; `npm run stack -- clients` installs them all.
 *
 * - Python: a venv with `confluent-kafka` (its wheels carry librdkafka) and its Avro and registry extras, from PyPI.
 * - JVM: Apache Kafka's Java client and Apicurio Registry's Avro serializer, from Maven Central
 *   (test/interop/jvm/pom.xml); `java` runs the producer's one source file, nothing is compiled ahead.
 * - PHP: Debian's php-cli and php-curl (apt-get, as root), for the ingest example in docs/sdk.md.
 * And Debian's nginx, the TLS and authentication proxy in front of the registry (registryProxy.ts).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR, PROJECT_ROOT } from './endpoints.ts';
import { installNginx } from './registryProxy.ts';
import { StackError, hasCommand as has, run } from './services.ts';

export const CONFLUENT_KAFKA_VERSION = '2.16.1';
/** Apicurio's Kafka serde 3.0.9 (the registry's version) is not installable: its parent POM is not on Maven Central. */
export const APICURIO_SERDE_VERSION = '3.1.7';

const pythonHome = join(CACHE_DIR, `python-confluent-kafka-${CONFLUENT_KAFKA_VERSION}`);

/** The venv's python, with confluent-kafka installed in it. */
export function pythonClient(): string {
  const python = join(pythonHome, 'bin', 'python');
  const ready = join(pythonHome, '.installed');
  if (existsSync(ready)) return python;
  if (!has('python3')) throw new StackError('python3 is not installed (the Python interop test runs confluent-kafka)');
  run('python3', ['-m', 'venv', '--clear', pythonHome], 'creating a Python venv');
  run(python, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', `confluent-kafka[avro,schemaregistry]==${CONFLUENT_KAFKA_VERSION}`],
    `pip install confluent-kafka ${CONFLUENT_KAFKA_VERSION}`);
  run('touch', [ready], 'marking the venv installed');
  return python;
}

const jvmLib = join(CACHE_DIR, `interop-jvm-apicurio-${APICURIO_SERDE_VERSION}`);

/** The classpath (a directory glob) of the JVM producer: kafka-clients, Apicurio's Avro serde and their dependencies. */
export function jvmClasspath(): string {
  const ready = join(jvmLib, `apicurio-registry-avro-serde-kafka-${APICURIO_SERDE_VERSION}.jar`);
  if (!existsSync(ready)) {
    if (!has('mvn')) throw new StackError('mvn is not installed (it fetches the JVM interop client from Maven Central)');
    run('mvn', ['-B', '-q', '-f', join(PROJECT_ROOT, 'test', 'interop', 'jvm', 'pom.xml'), `-Dapicurio.version=${APICURIO_SERDE_VERSION}`,
      'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${jvmLib}`], 'fetching the JVM interop client from Maven Central');
    if (!readdirSync(jvmLib).includes(`kafka-clients-3.9.1.jar`)) throw new StackError(`no kafka-clients jar in ${jvmLib}`);
  }
  return `${jvmLib}/*`;
}

/** `php` with the curl extension (Debian's php-cli and php-curl, installed as root when missing). */
export function phpCommand(): string {
  const hasCurl = () => {
    try {
      return execFileSync('php', ['-m'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().split('\n').includes('curl');
    } catch {
      return false;
    }
  };
  if (has('php') && hasCurl()) return 'php';
  if (process.getuid?.() !== 0 || !has('apt-get')) throw new StackError('php with curl is not installed: run `apt-get install php-cli php-curl` as root');
  run('apt-get', ['update', '-qq'], 'apt-get update');
  run('apt-get', ['install', '-y', '-qq', 'php-cli', 'php-curl'], 'apt-get install php-cli php-curl');
  if (!hasCurl()) throw new StackError('php-curl installed, yet php -m does not list curl');
  return 'php';
}

/** Installs every client (`npm run stack -- clients`), and nginx for the registry proxy; returns what each one is. */
export function installClients(): string[] {
  return [`python: ${pythonClient()}`, `jvm: ${jvmClasspath()}`, `php: ${phpCommand()}`, `nginx: ${installNginx() ?? 'installed'}`];
}
