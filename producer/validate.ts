/**
 * The check `log()` runs on every event, on the caller's thread: compiled once from the Avro schema's fields
 * (so it follows the schema, not a second hand-kept list), cheap enough for the hot path (no allocation on the
 * accepting path), and stricter than Avro where the pipeline needs it: `event_id` must be a UUID, integers must
 * be safe integers in range, an event must fit `maxEventBytes`.
 *
 * `validate` returns the event's estimated size in bytes (>= 0) when it is valid; otherwise a negative
 * number, with the reason and field left in `lastReason` / `lastField` (read them before the next call).
 */
import { LATEST_SCHEMA_VERSION, apiCallSchema } from '../schemas/apiCall.ts';

export type RejectReason =
  | 'not_an_object'
  | 'missing_field'
  | 'wrong_type'
  | 'out_of_range'
  | 'bad_uuid'
  | 'oversized'
  | 'unreadable'
  | 'closed';

export const REJECT_REASONS: readonly RejectReason[] = [
  'not_an_object', 'missing_field', 'wrong_type', 'out_of_range', 'bad_uuid', 'oversized', 'unreadable', 'closed',
];

const enum Kind {
  String,
  NullableString,
  Int,
  Long,
  NullableLong,
  StringMap,
  Uuid,
}

interface FieldCheck {
  readonly name: string;
  readonly kind: Kind;
  /** May be absent: the SDK fills it (event_id, ts) or Avro has a default. */
  readonly optional: boolean;
}

interface AvroField {
  name: string;
  type: unknown;
  default?: unknown;
}

/** Fields the SDK fills when the caller leaves them out. */
const FILLED_BY_SDK = new Set(['event_id', 'ts']);

function kindOf(field: AvroField): Kind {
  const t = field.type;
  if (t === 'string') return Kind.String;
  if (t === 'int') return Kind.Int;
  if (t === 'long') return Kind.Long;
  if (Array.isArray(t) && t.length === 2 && t[0] === 'null' && t[1] === 'string') return Kind.NullableString;
  if (Array.isArray(t) && t.length === 2 && t[0] === 'null' && t[1] === 'long') return Kind.NullableLong;
  if (typeof t === 'object' && t !== null) {
    const o = t as { type?: unknown; logicalType?: unknown; values?: unknown };
    if (o.type === 'string' && o.logicalType === 'uuid') return Kind.Uuid;
    if (o.type === 'string') return Kind.String;
    if (o.type === 'long') return Kind.Long;
    if (o.type === 'int') return Kind.Int;
    if (o.type === 'map' && o.values === 'string') return Kind.StringMap;
  }
  throw new Error(`validate.ts cannot check field ${field.name} of type ${JSON.stringify(t)}: teach kindOf about it`);
}

/** The checks for a record schema, in field order. */
export function compileChecks(schemaText: string): FieldCheck[] {
  const schema = JSON.parse(schemaText) as { fields: AvroField[] };
  return schema.fields.map((f) => ({
    name: f.name,
    kind: kindOf(f),
    optional: FILLED_BY_SDK.has(f.name) || f.default !== undefined,
  }));
}

const INT_MAX = 2 ** 31 - 1;
/** Bytes counted for a number field in the size estimate (a long is at most 10 bytes in Avro). */
const NUMBER_BYTES = 10;

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

/** 8-4-4-4-12 hex digits. */
export function isUuid(s: string): boolean {
  if (s.length !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (!isHex(c)) return false;
  }
  return true;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The field checks as one generated function with a named property read per field (as avsc does for its
 * writers): a loop over field names would make every read a megamorphic keyed load, about twice as slow.
 * Field names come from the schema and are checked to be plain identifiers before they are spliced in.
 */
function compileFieldChecks(checks: readonly FieldCheck[]): (record: Record<string, unknown>, v: EventValidator) => number {
  const lines: string[] = ['let chars = 0, value;'];
  for (const c of checks) {
    if (!IDENTIFIER.test(c.name)) throw new Error(`validate.ts: field name ${JSON.stringify(c.name)} is not a plain identifier`);
    const name = JSON.stringify(c.name);
    const fail = (reason: RejectReason) => `return v.reportFailure('${reason}', ${name});`;
    lines.push(`value = r.${c.name};`);
    lines.push(`if (value === undefined) { ${c.optional ? '' : fail('missing_field')} } else {`);
    switch (c.kind) {
      case Kind.String:
        lines.push(`if (typeof value !== 'string') ${fail('wrong_type')} chars += value.length;`);
        break;
      case Kind.NullableString:
        lines.push(`if (value !== null) { if (typeof value !== 'string') ${fail('wrong_type')} chars += value.length; }`);
        break;
      case Kind.Uuid:
        lines.push(`if (typeof value !== 'string') ${fail('wrong_type')} if (!isUuid(value)) ${fail('bad_uuid')} chars += 36;`);
        break;
      case Kind.Int:
        lines.push(`if (typeof value !== 'number') ${fail('wrong_type')} if (!Number.isInteger(value) || value < 0 || value > ${INT_MAX}) ${fail('out_of_range')}`);
        break;
      case Kind.Long:
        lines.push(`if (typeof value !== 'number') ${fail('wrong_type')} if (!Number.isSafeInteger(value) || value < 0) ${fail('out_of_range')}`);
        break;
      case Kind.NullableLong:
        lines.push(`if (value !== null) { if (typeof value !== 'number') ${fail('wrong_type')} if (!Number.isSafeInteger(value) || value < 0) ${fail('out_of_range')} }`);
        break;
      case Kind.StringMap:
        lines.push(`const n = v.checkMap(value, ${name}); if (n < 0) return -1; chars += n;`);
        break;
    }
    lines.push('}');
  }
  lines.push('return chars;');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from the schema's field list, see above
  const factory = new Function('isUuid', `return function checkFields(r, v) {\n${lines.join('\n')}\n};`) as (
    uuid: typeof isUuid,
  ) => (record: Record<string, unknown>, v: EventValidator) => number;
  return factory(isUuid);
}

export interface ValidatorLimits {
  /** Largest event accepted, in UTF-8 bytes of its strings plus 10 per number. @default 65536 */
  readonly maxEventBytes?: number;
  /** Most attributes on one event. @default 64 */
  readonly maxAttributes?: number;
}

export class EventValidator {
  lastReason: RejectReason = 'not_an_object';
  lastField = '';
  private readonly checks: FieldCheck[];
  private readonly maxEventBytes: number;
  private readonly maxAttributes: number;

  constructor(limits: ValidatorLimits = {}, schemaText: string = apiCallSchema(LATEST_SCHEMA_VERSION).text) {
    this.checks = compileChecks(schemaText);
    this.maxEventBytes = limits.maxEventBytes ?? 65_536;
    this.maxAttributes = limits.maxAttributes ?? 64;
    this.checkFields = compileFieldChecks(this.checks);
    this.numberBytes = this.checks.filter((c) => c.kind === Kind.Int || c.kind === Kind.Long || c.kind === Kind.NullableLong).length * NUMBER_BYTES;
  }

  private readonly checkFields: (record: Record<string, unknown>, v: EventValidator) => number;
  /** Numbers counted at their largest encoding, optional ones included: an estimate, not a measure. */
  private readonly numberBytes: number;

  private fail(reason: RejectReason, field: string): number {
    this.lastReason = reason;
    this.lastField = field;
    return -1;
  }

  /** Estimated size (>= 0) when valid; -1 with lastReason/lastField when not. May throw on hostile objects. */
  validate(event: unknown): number {
    if (typeof event !== 'object' || event === null || Array.isArray(event)) return this.fail('not_an_object', '');
    const record = event as Record<string, unknown>;
    // Characters, not bytes: a UTF-8 byte count is taken only when 3 bytes per character could exceed the limit.
    const chars = this.checkFields(record, this);
    if (chars < 0) return -1;
    const estimate = chars + this.numberBytes;
    if (chars * 3 + this.numberBytes > this.maxEventBytes && this.exactBytes(record) > this.maxEventBytes) {
      return this.fail('oversized', '');
    }
    return estimate;
  }

  /** Called by the compiled field checks. */
  reportFailure(reason: RejectReason, field: string): number {
    return this.fail(reason, field);
  }

  /** Checks a string map (attributes); returns its characters or -1. */
  checkMap(value: unknown, name: string): number {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return this.fail('wrong_type', name);
    const map = value as Record<string, unknown>;
    let n = 0;
    let chars = 0;
    for (const key in map) {
      if (!Object.prototype.hasOwnProperty.call(map, key)) continue;
      const v = map[key];
      if (typeof v !== 'string') return this.fail('wrong_type', `${name}.${key}`);
      if (++n > this.maxAttributes) return this.fail('oversized', name);
      chars += key.length + v.length;
    }
    return chars;
  }

  /** UTF-8 size of the event's strings plus 10 per number: the slow, exact count for big events. */
  private exactBytes(record: Record<string, unknown>): number {
    let bytes = 0;
    for (const check of this.checks) {
      const value = record[check.name];
      if (typeof value === 'string') bytes += Buffer.byteLength(value, 'utf8');
      else if (typeof value === 'number') bytes += NUMBER_BYTES;
      else if (check.kind === Kind.StringMap && typeof value === 'object' && value !== null) {
        for (const [k, v] of Object.entries(value as Record<string, string>)) bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
      }
    }
    return bytes;
  }
}
