/**
 * Processes the local stack started: one pid file per service, checked against /proc so that a
 * recycled pid is never mistaken for ours, and stopped by that pid only (never by name).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { dirname } from 'node:path';

export interface StartSpec {
  /** Program to run. */
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  /** stdout and stderr go here (appended). */
  readonly logFile: string;
  readonly pidFile: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Starts a detached process that outlives this one; returns its pid. */
export function startDetached(spec: StartSpec): number {
  mkdirSync(dirname(spec.logFile), { recursive: true });
  mkdirSync(dirname(spec.pidFile), { recursive: true });
  const log = openSync(spec.logFile, 'a');
  try {
    const child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      detached: true,
      stdio: ['ignore', log, log],
      env: spec.env ?? process.env,
    });
    if (child.pid === undefined) throw new Error(`could not start ${spec.command}`);
    child.unref();
    writeFileSync(spec.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/** The pid in a pid file, if the file exists and names a live process whose command line contains `marker`. */
export function livePid(pidFile: string, marker: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return isOurs(pid, marker) ? pid : undefined;
}

/**
 * Whether a process exists and has not exited (a zombie has). For a pid this stack has just spawned: right after
 * spawn its command line may not show the new program yet on a loaded machine (checked: a CI run failed "clickhouse
 * exited during start-up" while the server went on to log "Ready for connections").
 */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function isOurs(pid: number, marker: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes(marker)) return false;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // A zombie (state Z) has exited; its parent just has not reaped it yet.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z';
  } catch {
    return false; // no such process: /proc/<pid> is gone
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Stops the process in `pidFile` if it is ours: `signal` first, SIGKILL after `graceMs`.
 * Returns the pid stopped, or undefined when nothing of ours was running.
 */
export async function stopByPidFile(
  pidFile: string,
  marker: string,
  options: { signal?: NodeJS.Signals; graceMs?: number } = {},
): Promise<number | undefined> {
  const pid = livePid(pidFile, marker);
  if (pid === undefined) {
    rmSync(pidFile, { force: true });
    return undefined;
  }
  const signal = options.signal ?? 'SIGTERM';
  process.kill(pid, signal);
  const deadline = Date.now() + (signal === 'SIGKILL' ? 10_000 : (options.graceMs ?? 30_000));
  while (isOurs(pid, marker) && Date.now() < deadline) await sleep(100);
  if (isOurs(pid, marker)) {
    process.kill(pid, 'SIGKILL');
    while (isOurs(pid, marker)) await sleep(100);
  }
  rmSync(pidFile, { force: true });
  return pid;
}

/** The last `lines` lines of a log file, for error messages. */
export function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return '(no log)';
  const text = readFileSync(file, 'utf8');
  return text.split('\n').slice(-lines - 1).join('\n');
}
