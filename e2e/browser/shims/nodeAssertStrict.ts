// Stands in for `node:assert/strict` in browser bundles (harness.ts `replace`): the subset our suites
// use, with Node's strict semantics (Object.is for values; deepEqual compares prototypes, own enumerable
// keys and typed-array contents).

export class AssertionError extends Error {
  override name = 'AssertionError';
}

function fail(message: string | undefined, detail: string): never {
  throw new AssertionError(message ? `${message} (${detail})` : detail);
}

function show(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (ArrayBuffer.isView(x) ? `<${x.constructor.name} ${x.byteLength} B>` : x === undefined ? '<undefined>' : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

export function isDeepStrictEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  if (a instanceof Map || a instanceof Set) {
    const x = [...a.entries()];
    const y = [...(b as Map<unknown, unknown>).entries()];
    return x.length === y.length && x.every((e, i) => isDeepStrictEqual(e, y[i]));
  }
  if (Array.isArray(a) && a.length !== (b as unknown[]).length) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!isDeepStrictEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

function ok(value: unknown, message?: string): asserts value {
  if (!value) fail(message, `expected a truthy value, got ${show(value)}`);
}

function equal(actual: unknown, expected: unknown, message?: string): void {
  if (!Object.is(actual, expected)) fail(message, `${show(actual)} !== ${show(expected)}`);
}

function notEqual(actual: unknown, expected: unknown, message?: string): void {
  if (Object.is(actual, expected)) fail(message, `expected a value other than ${show(expected)}`);
}

function deepEqual(actual: unknown, expected: unknown, message?: string): void {
  if (!isDeepStrictEqual(actual, expected)) fail(message, `not deep-equal:\n  actual   ${show(actual)}\n  expected ${show(expected)}`);
}

function notDeepEqual(actual: unknown, expected: unknown, message?: string): void {
  if (isDeepStrictEqual(actual, expected)) fail(message, `expected values to differ: ${show(actual)}`);
}

type Expected = ((err: unknown) => boolean) | (new (...a: never[]) => unknown) | RegExp | Record<string, unknown>;

function matches(err: unknown, expected: Expected | undefined, message?: string): void {
  if (expected === undefined) return;
  if (expected instanceof RegExp) {
    if (!expected.test(String((err as Error)?.message ?? err))) fail(message, `error ${show(String(err))} does not match ${expected}`);
    return;
  }
  if (typeof expected === 'function') {
    if (expected.prototype !== undefined && err instanceof (expected as new () => unknown)) return;
    if (Error.isPrototypeOf(expected) || expected === Error) fail(message, `error is not a ${expected.name}: ${show(String(err))}`);
    if ((expected as (e: unknown) => boolean)(err) !== true) fail(message, `the validator refused ${show(String(err))}`);
    return;
  }
  for (const [k, v] of Object.entries(expected)) {
    if (!isDeepStrictEqual((err as Record<string, unknown>)?.[k], v)) fail(message, `error.${k} is ${show((err as Record<string, unknown>)?.[k])}, expected ${show(v)}`);
  }
}

async function rejects(p: Promise<unknown> | (() => Promise<unknown>), expected?: Expected, message?: string): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return matches(err, expected, message);
  }
  fail(message, 'expected a rejection');
}

function throws(fn: () => unknown, expected?: Expected, message?: string): void {
  try {
    fn();
  } catch (err) {
    return matches(err, expected, message);
  }
  fail(message, 'expected an exception');
}

const assert = Object.assign((value: unknown, message?: string) => ok(value, message), {
  ok,
  equal,
  notEqual,
  deepEqual,
  notDeepEqual,
  strictEqual: equal,
  deepStrictEqual: deepEqual,
  rejects,
  throws,
  AssertionError,
});
export default assert;
export { ok, equal, notEqual, deepEqual, notDeepEqual, rejects, throws };
