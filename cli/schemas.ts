/**
 * `apilog schemas check`: is the newest version of the Avro contract safe to deploy?
 * 1. avsc, offline: every version reads every older one (BACKWARD_TRANSITIVE), and every field has a doc;
 * 2. the schema registry: the newest version against the latest one registered under <topic>-value, through
 *    its compatibility endpoint, under the subject's level (Apicurio says "compatible" to anything under NONE or
 *    for a subject it does not know: those are reported as unchecked, not as passed).
 * Exit code 1 when anything is incompatible.
 */
import type { Command } from 'commander';
import { API_CALL_SCHEMAS, valueSubject } from '../schemas/apiCall.ts';
import { checkBackwardTransitive, checkWithRegistry, undocumentedFields } from '../schemas/compatibility.ts';
import { registryFor, resolveEndpoints, withEndpoints, type EndpointFlags } from './endpoints.ts';
import { preflight } from './preflight.ts';

interface CheckFlags extends EndpointFlags {
  subject?: string;
  offline?: boolean;
}

const say = (line: string) => process.stdout.write(`${line}\n`);

export function registerSchemas(program: Command): void {
  const schemas = program.command('schemas').description('the Avro contract (schemas/avro/api_call.v<N>.avsc)');
  withEndpoints(schemas.command('check').description('check that the newest schema version is backward compatible (avsc and the registry)'))
    .option('--subject <name>', 'registry subject to check against (default: <topic>-value)')
    .option('--offline', 'only the avsc check, no registry')
    .action(async (flags: CheckFlags) => {
      let ok = true;
      for (const v of API_CALL_SCHEMAS) {
        const missing = undocumentedFields(v.text);
        if (missing.length > 0) {
          ok = false;
          say(`avsc      v${v.version}: fields without a doc: ${missing.join(', ')}`);
        }
      }
      for (const verdict of checkBackwardTransitive(API_CALL_SCHEMAS)) {
        ok &&= verdict.compatible;
        say(`avsc      v${verdict.reader} reads v${verdict.writer}: ${verdict.compatible ? 'compatible' : `INCOMPATIBLE: ${verdict.reason}`}`);
      }
      if (!flags.offline) {
        const endpoints = resolveEndpoints(flags);
        const registry = registryFor(endpoints, flags);
        await preflight({ registry });
        const subject = flags.subject ?? valueSubject(endpoints.topic);
        const newest = API_CALL_SCHEMAS[API_CALL_SCHEMAS.length - 1]!;
        const verdict = await checkWithRegistry(registry, subject, newest.text);
        const where = `registry  v${newest.version} against ${subject}`;
        if (verdict.kind === 'no-subject') say(`${where}: nothing registered yet, any first version is accepted`);
        else if (verdict.kind === 'unchecked') say(`${where} (latest ${verdict.latest}): level ${verdict.level}, the registry checks nothing; set BACKWARD`);
        else if (verdict.kind === 'compatible') say(`${where} (latest ${verdict.latest}, level ${verdict.level}): compatible`);
        else {
          ok = false;
          say(`${where} (latest ${verdict.latest}, level ${verdict.level}): INCOMPATIBLE ${verdict.messages.join('; ')}`);
        }
      }
      say(JSON.stringify({ compatible: ok }));
      if (!ok) process.exitCode = 1;
    });
}
