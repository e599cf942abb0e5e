/**
 * The load of `npm run bench:latency`, in a process of its own (so that the service's work does not share the event
 * loop with what is measured): the SDK logs `rate` events per second, in ticks of 10 ms, for `seconds`, each stamped
 * with the time of its log() call, then closes (every event sent). Arguments: brokers registry topic rate seconds.
 * Prints one JSON line: {"logged": N, "rejected": N}.
 */
import { createApiLogger } from '../producer/apiLogger.ts';
import { SyntheticEvents } from '../producer/syntheticEvents.ts';

const [brokers = '', registry = '', topic = '', rateText = '10000', secondsText = '30'] = process.argv.slice(2);
const rate = Number(rateText);
const seconds = Number(secondsText);
const logger = await createApiLogger({ brokers: brokers.split(','), registry, topic, whenFull: 'wait' });
const perTick = rate / 100;
// Events are built ahead (the load generator's work is not what is measured); ts is left to log().
const pool = new SyntheticEvents({ seed: 7, apis: 12 }).take(Math.ceil(perTick) * 200).map(({ ts: _ts, event_id: _id, ...rest }) => rest);
let logged = 0;
let rejected = 0;
const start = performance.now();
for (let tick = 0; tick < seconds * 100; tick++) {
  const due = Math.round((tick + 1) * perTick);
  while (logged + rejected < due) {
    const accepted = await logger.log({ ...pool[(logged + rejected) % pool.length]! });
    if (accepted) logged++;
    else rejected++;
  }
  const wait = start + (tick + 1) * 10 - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
await logger.close();
process.stdout.write(`${JSON.stringify({ logged, rejected })}\n`);
