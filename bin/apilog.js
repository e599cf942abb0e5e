#!/usr/bin/env node
// The `apilog` command: the JavaScript that `npm install` builds into dist/ (the `prepare` script, `npm run build`).
// Without it (an install with scripts turned off) the TypeScript sources run through tsx's loader, about 1 s slower
// to start.
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
