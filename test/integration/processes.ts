/** Child processes of the integration tests: `apilog` itself and third-party clients (Python, PHP, the JVM). */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `node bin/apilog.js …` as a user runs it. */
export const APILOG: readonly string[] = [process.execPath, join(PROJECT_ROOT, 'bin', 'apilog.js')];

/** Runs a command to its end; rejects (after killing it) if it takes longer than `timeoutMs`. */
export function run(command: readonly string[], options: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {}): Promise<Run> {
  const started = Date.now();
  const child = start(command, options);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.process.kill('SIGKILL');
      reject(new Error(`${command.join(' ')} did not finish within ${options.timeoutMs ?? 60_000} ms\n${child.stdout()}\n${child.stderr()}`));
    }, options.timeoutMs ?? 60_000);
    child.process.on('error', reject);
    void child.exited.then((code) => {
      clearTimeout(timer);
      resolve({ code, stdout: child.stdout(), stderr: child.stderr(), ms: Date.now() - started });
    });
  });
}

export interface Started {
  readonly process: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the exit code once the output is read to its end. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/** Starts a long-running command (ingest, consume), collecting its output. */
export function start(command: readonly string[], options: { env?: Record<string, string>; cwd?: string } = {}): Started {
  const child = spawn(command[0]!, command.slice(1), { cwd: options.cwd ?? PROJECT_ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  // Decoded as a stream: a character split across two chunks must not turn into two U+FFFD.
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    process: child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Polls `check` every 200 ms until it returns true or `timeoutMs` passes; returns its last answer. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A TCP port free on 127.0.0.1 right now (for a server the test starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
