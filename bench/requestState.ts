/**
 * `npx tsx bench/requestState.ts`: what keeping one value per request costs, on request objects as Express hands them
 * to middleware. Express gives every request and response its app's prototype (`Object.setPrototypeOf`), and V8 then
 * pays dearly for each property added to that object. Three ways, on fresh IncomingMessage objects (no network):
 *   property   a symbol property added to a request whose prototype was never changed (Fastify's raw request)
 *   express    the same, after Object.setPrototypeOf, as Express does
 *   weakmap    a WeakMap entry (a small object as value) for the Express-style request: what the middleware does
 * ns per request, medians of rounds; last line one JSON object.
 */
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { median } from './measure.ts';

const N = Number(process.env['BENCH_REQUESTS'] ?? 50_000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const socket = new Socket();
const appRequest = Object.create(IncomingMessage.prototype) as object;
const kState = Symbol('state');
const states = new WeakMap<object, { readonly mountPath: string }>();
const value = { mountPath: '/v1' };

const ways: Record<string, { make: () => IncomingMessage; keep: (req: IncomingMessage) => void }> = {
  property: { make: () => new IncomingMessage(socket), keep: (req) => void ((req as unknown as Record<symbol, unknown>)[kState] = value) },
  express: {
    make: () => Object.setPrototypeOf(new IncomingMessage(socket), appRequest) as IncomingMessage,
    keep: (req) => void ((req as unknown as Record<symbol, unknown>)[kState] = value),
  },
  weakmap: {
    make: () => Object.setPrototypeOf(new IncomingMessage(socket), appRequest) as IncomingMessage,
    keep: (req) => void states.set(req, { mountPath: value.mountPath }),
  },
};

const times: Record<string, number[]> = Object.fromEntries(Object.keys(ways).map((k) => [k, []]));
for (let round = 0; round <= ROUNDS; round++) {
  for (const [name, way] of Object.entries(ways)) {
    const requests = Array.from({ length: N }, way.make);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) way.keep(requests[i]!);
    const ns = Number(process.hrtime.bigint() - t0) / N;
    if (round > 0) times[name]!.push(ns); // round 0 warms up
  }
}
const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, Math.round(median(v))]));
process.stderr.write(`ns per request, medians of ${ROUNDS} rounds of ${N}: property ${m['property']} · after setPrototypeOf ${m['express']} · WeakMap ${m['weakmap']}\n`);
process.stdout.write(`${JSON.stringify({ requests: N, rounds: ROUNDS, property_ns: m['property'], express_property_ns: m['express'], weakmap_ns: m['weakmap'] })}\n`);
