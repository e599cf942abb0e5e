import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive, isOurs, livePid, startDetached, stopByPidFile } from '../../stack/processes.ts';
import { randomClusterId } from '../../stack/services.ts';

describe('stack processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'apilog-proc-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('starts a detached process, finds it by pid file and marker, stops it by pid', async () => {
    const marker = `apilog-test-marker-${process.pid}`;
    const pidFile = join(dir, 'sleeper.pid');
    // The marker rides along as an argument so it shows in /proc/<pid>/cmdline.
    const pid = startDetached({ command: 'sh', args: ['-c', 'sleep 60', marker], cwd: dir, logFile: join(dir, 'sleeper.log'), pidFile });
    expect(livePid(pidFile, marker)).toBe(pid);
    expect(livePid(pidFile, 'some-other-marker')).toBeUndefined();
    expect(isAlive(pid)).toBe(true); // what a start-up wait checks for the pid it spawned, whatever its command line
    const stopped = await stopByPidFile(pidFile, marker, { graceMs: 5000 });
    expect(stopped).toBe(pid);
    expect(isOurs(pid, marker)).toBe(false);
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(pidFile)).toBe(false);
  });

  it('never signals a pid whose process is not ours (stale or recycled pid file)', async () => {
    const pidFile = join(dir, 'stale.pid');
    writeFileSync(pidFile, `${process.pid}\n`); // this test process: alive, but not carrying the marker
    expect(livePid(pidFile, 'kafka.Kafka-not-this-process')).toBeUndefined();
    expect(await stopByPidFile(pidFile, 'kafka.Kafka-not-this-process')).toBeUndefined();
    writeFileSync(pidFile, 'garbage\n');
    expect(livePid(pidFile, 'x')).toBeUndefined();
  });
});

describe('Kafka cluster ids', () => {
  it('are 22 URL-safe base64 characters and never start with "-" (the storage tool would read an option)', () => {
    for (let i = 0; i < 5000; i++) {
      const id = randomClusterId();
      expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
  });
});
