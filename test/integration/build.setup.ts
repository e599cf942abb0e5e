/**
 * Builds dist/ before the integration tests, which run `apilog` as users do (bin/apilog.js runs the built
 * JavaScript): a source change since the last `npm install` or `npm run build` is what they test, never a stale
 * build. `tsc -b` rebuilds only what changed (about a second when nothing did).
 */
import { execFileSync } from 'node:child_process';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';

export default function setup(): void {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
}
