// Strict parsing of what clients and operators type as numbers and times: one helper for every query parameter,
// body time and API setting. Only plain decimal numbers (no `Infinity`, hex, exponents, signs where none make
// sense, or blanks) and real calendar times (no 2026-02-30, no 24:00) pass; anything else is an error that
// names the parameter and says what was expected.
//
//   app.register(strictParamsPlugin)   // (services/api/app.ts) after the security plugin, before the routes: checks every route's
//                                      // integer/number query parameters before the schema coerces them
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { BadParameter } from './errors.js';

const INTEGER = /^-?(?:0|[1-9][0-9]*)$/;
const DECIMAL = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$/;

export interface NumberRule {
  /** Whole numbers only (default true). */
  integer?: boolean;
  min?: number;
  max?: number;
}

/** The reason `text` is not a number by `rule`, or undefined when it is one. */
export function numberProblem(text: string, rule: NumberRule = {}): string | undefined {
  const integer = rule.integer ?? true;
  const shape = integer ? INTEGER : DECIMAL;
  const what = integer ? 'a decimal integer' : 'a decimal number';
  const range = rule.min !== undefined && rule.max !== undefined ? ` from ${rule.min} to ${rule.max}`
    : rule.min !== undefined ? ` of at least ${rule.min}` : rule.max !== undefined ? ` of at most ${rule.max}` : '';
  if (text.length > 40 || !shape.test(text)) return `must be ${what}${range}, got ${JSON.stringify(text.slice(0, 60))}`;
  const n = Number(text);
  if (integer && !Number.isSafeInteger(n)) return `must be ${what}${range}, got ${text} (too large)`;
  if ((rule.min !== undefined && n < rule.min) || (rule.max !== undefined && n > rule.max)) return `must be ${what}${range}, got ${text}`;
  return undefined;
}

/** Parse a client's number (`name` as the client wrote it, e.g. querystring/limit) or throw BadParameter (400). */
export function parseNumber(name: string, text: string, rule: NumberRule = {}): number {
  const problem = numberProblem(text, rule);
  if (problem) throw new BadParameter(`${name} ${problem}`);
  return Number(text);
}

/** The last millisecond a DateTime64(9) column holds (2^63 − 1 ns after the epoch: 2262-04-11T23:47:16.854Z). */
export const MAX_TIME_MS = 9_223_372_036_854;

const RFC3339 = /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?([Zz]|([+-])([0-9]{2}):([0-9]{2}))$/;
const daysIn = (y: number, m: number): number => (m === 2 ? ((y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28)
  : [4, 6, 9, 11].includes(m) ? 30 : 31);

/** Milliseconds since the epoch of an RFC 3339 date-time that names a real moment, or undefined. */
export function rfc3339Ms(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i]));
  if (mo! < 1 || mo! > 12 || d! < 1 || d! > daysIn(y!, mo!) || h! > 23 || mi! > 59 || s! > 59) return undefined;
  let offsetMin = 0;
  if (m[9]) {
    const oh = Number(m[10]), om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const frac = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000 + 1e-9) : 0;
  const utc = new Date(0);
  utc.setUTCFullYear(y!, mo! - 1, d!); // (Date.UTC maps years 0–99 to 1900–1999)
  utc.setUTCHours(h!, mi!, s!, frac);
  return utc.getTime() - offsetMin * 60_000;
}

/** A client's time: RFC 3339 date-time or integer milliseconds since the epoch, within what the store holds. */
export function parseTime(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const ms = INTEGER.test(v) && !v.startsWith('-') ? Number(v) : rfc3339Ms(v);
  if (ms === undefined || !Number.isFinite(ms)) {
    throw new BadParameter(`${name} is not a valid time: ${JSON.stringify(v.slice(0, 60))} (RFC 3339, e.g. 2026-03-01T12:00:00Z, or milliseconds since the epoch)`);
  }
  if (ms < 0 || ms > MAX_TIME_MS) {
    throw new BadParameter(`${name} is out of range: ${v} (times from 1970-01-01T00:00:00Z to ${new Date(MAX_TIME_MS).toISOString()})`);
  }
  return ms;
}

type SchemaNode = { type?: string | string[]; items?: SchemaNode; minimum?: number; maximum?: number };

/** The number rule a JSON Schema property asks for, when it is a number or integer (or an array of them). */
function numberRuleOf(p: SchemaNode | undefined): NumberRule | undefined {
  if (!p) return undefined;
  const types = Array.isArray(p.type) ? p.type : [p.type];
  if (types.includes('array')) return numberRuleOf(p.items);
  if (types.includes('integer')) return { integer: true, min: p.minimum, max: p.maximum };
  if (types.includes('number')) return { integer: false, min: p.minimum, max: p.maximum };
  return undefined;
}

/** Every route's integer and number query parameters must be plain decimals in range before the schema's
 * coercion sees them (it would turn "Infinity", "0x10", "1e3" or " 7" into numbers). */
async function strictParams(app: FastifyInstance): Promise<void> {
  app.addHook('onRoute', (route: RouteOptions) => {
    const props = ((route.schema as { querystring?: { properties?: Record<string, SchemaNode> } } | undefined)?.querystring?.properties) ?? {};
    const rules = Object.entries(props).flatMap(([name, p]) => {
      const rule = numberRuleOf(p);
      return rule ? [[name, rule] as const] : [];
    });
    if (rules.length === 0) return;
    const check = async (req: FastifyRequest): Promise<void> => {
      const q = req.query as Record<string, unknown>;
      for (const [name, rule] of rules) {
        const v = q[name];
        if (v === undefined) continue;
        for (const text of Array.isArray(v) ? v : [v]) {
          if (typeof text !== 'string') continue;
          const problem = numberProblem(text, rule);
          if (problem) throw new BadParameter(`querystring/${name} ${problem}`);
        }
      }
    };
    const existing = route.preValidation;
    route.preValidation = existing === undefined ? [check] : [check, ...(Array.isArray(existing) ? existing : [existing])];
  });
}
export const strictParamsPlugin = fp(strictParams, { name: 'revokescope-params', fastify: '5.x', dependencies: ['revokescope-errors'] });
