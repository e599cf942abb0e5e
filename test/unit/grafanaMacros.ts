/**
 * A dashboard panel's SQL as ClickHouse receives it from Grafana and the ClickHouse data source plugin
 * (grafana-clickhouse-datasource, the version pinned in docker-compose.yml), in the plugin's order:
 *
 * 1. In the browser, `$__conditionalAll(condition, $var)` becomes `1=1` when `$var` is All (or empty), else the
 *    condition (CHDatasource.applyConditionalAll).
 * 2. Grafana's template service replaces variables: `${var:singlequote}` quotes each value and escapes `'` as `\'`,
 *    joined with commas (Grafana's singlequote format); `$var` / `${var}` without a format go through the plugin's
 *    own formatter: a multi-value list becomes `'a','b'`, a single value is put in as it is.
 * 3. The plugin's backend expands its macros (pkg/macros/macros.go): `$__timeFilter(c)` is
 *    `c >= toDateTime(<from s>) AND c <= toDateTime(<to s>)` (both ends included, seconds truncated);
 *    `$__timeFilter_ms(c)` the same with `fromUnixTimestamp64Milli(<ms>)`; `$__fromTime`, `$__toTime` (and `_ms`);
 *    `$__dateFilter(c)` with `toDate('YYYY-MM-DD')`; `$__timeInterval(c)` is
 *    `toStartOfInterval(toDateTime(c), INTERVAL <interval s, at least 1> second)`; `$__interval_s` the interval in
 *    whole seconds, at least 1.
 *
 * Any other `$__` macro or `$variable` left in the text is an error here, so a panel cannot use something this
 * expansion does not know and still pass its test.
 */

export interface GrafanaQueryContext {
  readonly fromMs: number;
  readonly toMs: number;
  /** The panel's interval ($__interval), from the time range and the panel's width. */
  readonly intervalMs: number;
  /** Dashboard variables: a list of values, or 'All'. */
  readonly variables: Readonly<Record<string, readonly string[] | 'All'>>;
  /** Every value of each variable, for 'All' without a custom all value (Grafana sends them all). */
  readonly options?: Readonly<Record<string, readonly string[]>>;
}

/** The arguments of the call whose '(' is at `open`, split at top-level commas; and where the call ends. */
function callArguments(text: string, open: number): { args: string[]; end: number } {
  let depth = 0;
  let start = open + 1;
  const args: string[] = [];
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === "'") {
      // Skip a string literal (backslash escapes, as ClickHouse reads them).
      for (i++; i < text.length && text[i] !== "'"; i++) if (text[i] === '\\') i++;
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')' && --depth === 0) {
      args.push(text.slice(start, i).trim());
      return { args, end: i + 1 };
    } else if (c === ',' && depth === 1) {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  throw new Error(`unbalanced parentheses after ${text.slice(0, open)}`);
}

function valuesOf(name: string, ctx: GrafanaQueryContext): readonly string[] {
  const v = ctx.variables[name];
  if (v === undefined) throw new Error(`the query uses $${name}, which the test does not set`);
  if (v !== 'All') return v;
  const all = ctx.options?.[name];
  if (all === undefined) throw new Error(`$${name} is All but the test gives no options for it`);
  return all;
}

/** Step 1: `$__conditionalAll(condition, $var)`, innermost last, as the plugin does. */
function conditionalAll(sql: string, ctx: GrafanaQueryContext): string {
  const macro = '$__conditionalAll(';
  for (let at = sql.lastIndexOf(macro); at !== -1; at = sql.lastIndexOf(macro)) {
    const { args, end } = callArguments(sql, at + macro.length - 1);
    if (args.length !== 2) throw new Error(`$__conditionalAll takes 2 arguments: ${sql.slice(at, end)}`);
    const name = /^\$\{?(\w+)\}?$/.exec(args[1]!)?.[1];
    if (name === undefined) throw new Error(`$__conditionalAll's second argument must be a variable: ${args[1]}`);
    const v = ctx.variables[name];
    const phrase = v === 'All' || (Array.isArray(v) && v.length === 0) ? '1=1' : args[0]!;
    sql = sql.slice(0, at) + phrase + sql.slice(end);
  }
  return sql;
}

/** Step 2: template variables. Names starting with `__` are Grafana's or the plugin's, left for step 3. */
function templateVariables(sql: string, ctx: GrafanaQueryContext): string {
  return sql.replace(/\$\{(\w+)(?::(\w+))?\}|\$(\w+)/g, (match, braced: string | undefined, format: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare)!;
    if (name.startsWith('__')) return match;
    const values = valuesOf(name, ctx);
    if (format === 'singlequote') return values.map((v) => `'${v.replace(/'/g, "\\'")}'`).join(',');
    if (format !== undefined) throw new Error(`format :${format} of $${name} is not implemented here`);
    // The plugin's formatter: lists quoted and joined, a single value as it is.
    const v = ctx.variables[name]!;
    return v === 'All' || values.length !== 1 ? `'${values.join("','")}'` : values[0]!;
  });
}

const seconds = (ms: number) => Math.floor(ms / 1000);
const dateTime = (ms: number) => `toDateTime(${seconds(ms)})`;
const dateTime64 = (ms: number) => `fromUnixTimestamp64Milli(${Math.floor(ms)})`;
const date = (ms: number) => `toDate('${new Date(ms).toISOString().slice(0, 10)}')`;

/** Step 3: the plugin's backend macros. */
function backendMacros(sql: string, ctx: GrafanaQueryContext): string {
  const intervalS = Math.max(Math.floor(ctx.intervalMs / 1000), 1);
  const intervalMs = Math.max(Math.floor(ctx.intervalMs), 1);
  const withColumn: Record<string, (column: string) => string> = {
    timeFilter: (c) => `${c} >= ${dateTime(ctx.fromMs)} AND ${c} <= ${dateTime(ctx.toMs)}`,
    timeFilter_ms: (c) => `${c} >= ${dateTime64(ctx.fromMs)} AND ${c} <= ${dateTime64(ctx.toMs)}`,
    dateFilter: (c) => `${c} >= ${date(ctx.fromMs)} AND ${c} <= ${date(ctx.toMs)}`,
    timeInterval: (c) => `toStartOfInterval(toDateTime(${c}), INTERVAL ${intervalS} second)`,
    timeInterval_ms: (c) => `toStartOfInterval(toDateTime64(${c}, 3), INTERVAL ${intervalMs} millisecond)`,
  };
  const constants: Record<string, string> = {
    fromTime: dateTime(ctx.fromMs),
    toTime: dateTime(ctx.toMs),
    fromTime_ms: dateTime64(ctx.fromMs),
    toTime_ms: dateTime64(ctx.toMs),
    interval_s: String(intervalS),
  };
  let out = '';
  let rest = sql;
  for (let m = /\$__(\w+)/.exec(rest); m !== null; m = /\$__(\w+)/.exec(rest)) {
    const name = m[1]!;
    out += rest.slice(0, m.index);
    const after = m.index + m[0].length;
    if (withColumn[name] !== undefined) {
      if (rest[after] !== '(') throw new Error(`$__${name} needs a column: $__${name}(column)`);
      const { args, end } = callArguments(rest, after);
      if (args.length !== 1) throw new Error(`$__${name} takes 1 argument, got ${args.length}`);
      out += withColumn[name](args[0]!);
      rest = rest.slice(end);
    } else if (constants[name] !== undefined) {
      out += constants[name];
      rest = rest.slice(after);
    } else {
      throw new Error(`macro $__${name} is not expanded by this test's model of the plugin`);
    }
  }
  return out + rest;
}

/** The SQL ClickHouse receives for a panel's raw SQL, in the given time range, interval and variables. */
export function expandGrafanaQuery(sql: string, ctx: GrafanaQueryContext): string {
  const expanded = backendMacros(templateVariables(conditionalAll(sql, ctx), ctx), ctx);
  const left = /\$\{?\w+/.exec(expanded);
  if (left) throw new Error(`${left[0]} is left in the expanded query`);
  return expanded;
}
