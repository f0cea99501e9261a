import { toBase32, utf8 } from '../encoding';
import { sha256 } from './hash';

/**
 * Domain-separation tags (SPEC.md S1). A signature made for one purpose can never verify for another,
 * because each purpose's bytes start with a different tag.
 */
export const SigningPurpose = {
  login: 'login',
  post: 'post',
  envelope: 'envelope',
  attachment: 'attachment',
} as const;
export type SigningPurpose = (typeof SigningPurpose)[keyof typeof SigningPurpose];

export type CanonicalField = string | number | boolean | null;

/**
 * The one canonical byte encoding of a signed payload (SPEC.md S2):
 * UTF-8 of `peerchat:v1:<purpose>\n` followed by the JSON array of the fields in their fixed order.
 * JSON.stringify of strings, integers, booleans and null is fully specified by ECMAScript, so every
 * runtime produces the same bytes.
 */
export function signingBytes(
  purpose: SigningPurpose,
  fields: readonly CanonicalField[],
  /** UTF-8 encoder (a batch passes `utf8Batch()`'s). @default utf8 */
  encode: (text: string) => Uint8Array = utf8,
): Uint8Array {
  for (const f of fields) {
    if (typeof f === 'number' && !Number.isSafeInteger(f)) throw new Error('canonical numbers are safe integers');
  }
  return encode(`peerchat:v1:${purpose}\n${JSON.stringify(fields)}`);
}

/**
 * Human-checkable key fingerprint (SPEC.md L6): the first 40 bits of SHA-256(key) in Crockford base32,
 * as `XXXX-XXXX`. Display names are not unique; the UI always shows this beside them.
 */
export function fingerprint(publicKey: Uint8Array): string {
  const b32 = toBase32(sha256(publicKey).subarray(0, 5));
  return `${b32.slice(0, 4)}-${b32.slice(4, 8)}`;
}
