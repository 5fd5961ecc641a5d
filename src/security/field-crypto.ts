// Encryption of chosen text fields before they reach PostgreSQL or the local journal
// (security.encryption.fields). AES-256-GCM with the field name as associated data, so a value
// cannot be moved to another column. The nonce is derived from the plaintext (HMAC, a synthetic
// IV): equal values encrypt equally, which keeps idempotent keys idempotent and lets queries
// match an encrypted column — it reveals equality, as the keyed hashes of the sanitiser do, and
// nothing else. Keys come from WARDEN_ENCRYPTION_KEYS (`kid:base64-32-bytes`, comma-separated);
// the active key id is stored in every value, so after a rotation old rows still decrypt as long
// as their key is listed.
//
// Stored form: `enc:v1:<kid>:<base64url(nonce ‖ ciphertext ‖ tag)>`.

import { createCipheriv, createDecipheriv, createHmac, hkdfSync } from 'node:crypto';
import { ConfigError, WardenError } from '../runtime/errors.ts';

export const KEYS_ENV = 'WARDEN_ENCRYPTION_KEYS';
export const ENCRYPTABLE_FIELDS = [
  'episodeId',
  'failureReason',
  'attackType',
  'artifactHash',
] as const;
export type EncryptableField = (typeof ENCRYPTABLE_FIELDS)[number];

const PREFIX = 'enc:v1:';

export class DecryptionError extends WardenError {
  override readonly code = 'WARDEN_DECRYPTION';
}

interface Key {
  readonly id: string;
  readonly enc: Buffer;
  readonly nonce: Buffer;
}

export function parseKeys(text: string | undefined): Key[] {
  if (!text?.trim()) return [];
  return text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((entry, i) => {
      const sep = entry.indexOf(':');
      const id = entry.slice(0, sep);
      if (sep <= 0 || !/^[A-Za-z0-9_-]{1,32}$/.test(id))
        throw new ConfigError(
          `${KEYS_ENV} entry ${i + 1}: expected kid:base64key (kid: 1–32 of A-Za-z0-9_-)`,
        );
      const raw = Buffer.from(entry.slice(sep + 1), 'base64');
      if (raw.length !== 32)
        throw new ConfigError(
          `${KEYS_ENV} key "${id}": expected 32 bytes of base64, got ${raw.length}`,
        );
      const derive = (info: string) =>
        Buffer.from(hkdfSync('sha256', raw, Buffer.alloc(0), `warden field ${info}`, 32));
      return { id, enc: derive('encryption'), nonce: derive('nonce') };
    });
}

export class FieldCipher {
  readonly fields: ReadonlySet<EncryptableField>;
  readonly #keys: Map<string, Key>;
  readonly #active: Key | undefined;

  /** Throws a ConfigError when fields are chosen but no usable key is present. */
  constructor(
    fields: readonly EncryptableField[],
    keysText: string | undefined,
    activeId: string | null,
  ) {
    this.fields = new Set(fields);
    const keys = parseKeys(keysText);
    this.#keys = new Map(keys.map((k) => [k.id, k]));
    this.#active = activeId === null ? keys[0] : this.#keys.get(activeId);
    if (this.fields.size > 0 && !this.#active) {
      throw new ConfigError(
        activeId === null
          ? `security.encryption.fields is set but ${KEYS_ENV} holds no key`
          : `security.encryption.keyId "${activeId}" is not in ${KEYS_ENV}`,
      );
    }
  }

  static none(): FieldCipher {
    return new FieldCipher([], undefined, null);
  }

  get activeKeyId(): string | undefined {
    return this.#active?.id;
  }

  encrypts(field: EncryptableField): boolean {
    return this.fields.has(field);
  }

  #seal(key: Key, field: string, plaintext: string): string {
    const data = Buffer.from(plaintext, 'utf8');
    const nonce = createHmac('sha256', key.nonce)
      .update(field)
      .update('\0')
      .update(data)
      .digest()
      .subarray(0, 12);
    const cipher = createCipheriv('aes-256-gcm', key.enc, nonce);
    cipher.setAAD(Buffer.from(field));
    const body = Buffer.concat([nonce, cipher.update(data), cipher.final(), cipher.getAuthTag()]);
    return `${PREFIX}${key.id}:${body.toString('base64url')}`;
  }

  /** The stored form of `value` in `field`: encrypted with the active key when the field is chosen. */
  protect(field: EncryptableField, value: string): string {
    return this.#active && this.fields.has(field) ? this.#seal(this.#active, field, value) : value;
  }

  /** Every stored form `value` may have in `field` (one per key), for equality lookups. */
  lookupForms(field: EncryptableField, value: string): string[] {
    if (!this.fields.has(field)) return [value];
    return [value, ...[...this.#keys.values()].map((k) => this.#seal(k, field, value))];
  }

  /**
   * A whole document (not a stored field: runtime/resume.ts) sealed with the active key whenever
   * any field is chosen, `label` its associated data; plaintext when none is.
   */
  sealDocument(label: string, plaintext: string): string {
    return this.#active && this.fields.size > 0
      ? this.#seal(this.#active, label, plaintext)
      : plaintext;
  }

  /** The plaintext of a document sealDocument wrote (one written in plaintext passes through). */
  openDocument(label: string, stored: string): string {
    return this.#open(label, stored);
  }

  /** The plaintext of a stored value; values that were never encrypted pass through. */
  reveal(field: EncryptableField, stored: string): string {
    return this.#open(field, stored);
  }

  #open(field: string, stored: string): string {
    if (!stored.startsWith(PREFIX)) return stored;
    const rest = stored.slice(PREFIX.length);
    const sep = rest.indexOf(':');
    const key = this.#keys.get(rest.slice(0, sep));
    if (!key)
      throw new DecryptionError(`${field}: key "${rest.slice(0, sep)}" is not in ${KEYS_ENV}`);
    const body = Buffer.from(rest.slice(sep + 1), 'base64url');
    if (body.length < 28) throw new DecryptionError(`${field}: stored value is truncated`);
    const decipher = createDecipheriv('aes-256-gcm', key.enc, body.subarray(0, 12));
    decipher.setAAD(Buffer.from(field));
    decipher.setAuthTag(body.subarray(body.length - 16));
    try {
      return Buffer.concat([
        decipher.update(body.subarray(12, body.length - 16)),
        decipher.final(),
      ]).toString('utf8');
    } catch (error) {
      throw new DecryptionError(`${field}: authentication failed (tampered value or wrong key)`, {
        cause: error,
      });
    }
  }
}
