/**
 * apilog's exit codes, from sysexits(3) as daemons use them, so that a supervisor can act on them: restart after
 * 69 (a service could not be reached) or 70 (a fatal error at run time); stop after 64 and 78, which a restart
 * cannot fix (with systemd: RestartPreventExitStatus=64 78).
 */
import { CommanderError } from 'commander';
import { ConfigError, UnreachableError } from '../runtime/errors.ts';

export const EXIT = {
  ok: 0,
  /** The command ran and reports a failure: `schemas check` found an incompatible version, `consume` was stopped past its shutdown deadline, `produce` or `demo` landed fewer events than it sent. */
  failed: 1,
  /** EX_USAGE: the command line is wrong (an unknown flag, a missing or malformed value). */
  usage: 64,
  /** EX_UNAVAILABLE: Kafka, the schema registry or ClickHouse did not answer. */
  unavailable: 69,
  /** EX_SOFTWARE: a fatal error while running (a batch no codec can read, a bug). */
  software: 70,
  /** EX_CONFIG: the configuration cannot work (a bad config file or variable, conflicting options, credentials or TLS settings refused, a missing table). */
  config: 78,
} as const;

/** The exit code for an error that ended a command. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (error instanceof ConfigError) return EXIT.config;
  if (error instanceof UnreachableError) return EXIT.unavailable;
  return EXIT.software;
}
