/**
 * The checks every in-place change to kafkajs makes before it touches anything (kafkajsIdleLoop.ts,
 * kafkajsRecords.ts, kafkajsFetch.ts): each was written against kafkajs 2.2.4, its latest release, and applies to
 * that code only; any other kafkajs is left as it is.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * Whether the process's kafkajs is 2.2.4 and the code to be replaced (`source()`, its text, read only for 2.2.4:
 * another kafkajs may not have the module) still holds each mark.
 */
export function isKafkajs224(source: () => string, marks: readonly string[]): boolean {
  if ((require('kafkajs/package.json') as { version: string }).version !== '2.2.4') return false;
  const text = source();
  return marks.every((mark) => text.includes(mark));
}

export type ModuleSwap = 'swapped' | 'other kafkajs' | 'already loaded';

/**
 * Puts `replace(kafkajs's export)` in place of a kafkajs module's export in the module cache. kafkajs loads some of
 * its modules only when first needed (a request's encoder with the first request of its kind), and the module that
 * requires this one (`loadedBy`) takes the export from the cache then: once `loadedBy` is loaded, a swap would change
 * nothing, so none is made. `marks`: text the module's source holds in kafkajs 2.2.4.
 */
export function swapKafkajsModule<T>(module: string, loadedBy: string, marks: readonly string[], replace: (kafkajs: T) => T): ModuleSwap {
  if (!isKafkajs224(() => readFileSync(require.resolve(module), 'utf8'), marks)) return 'other kafkajs';
  const path = require.resolve(module);
  const kafkajs = require(module) as T;
  if (require.cache[require.resolve(loadedBy)] !== undefined) return 'already loaded';
  const cached = require.cache[path];
  if (cached === undefined) return 'other kafkajs';
  cached.exports = replace(kafkajs);
  return 'swapped';
}
