// Typed arrays through JSON, which has none (a Float32Array would become {"0": …}): the DB
// writer's journal and the resume set (resume.ts) write rows and states with them.

/** A Float32Array as JSON: its bytes in base64 under this key. */
const F32 = '$f32';

/**
 * The value with its typed arrays made JSON-ready (JSON has none: a Float32Array would become
 * {"0": …}): Float32Arrays as {"$f32": base64}, other views as lists. Objects and arrays that hold
 * none are returned as they are, so a row without typed arrays is not copied.
 */
export function encodeTyped(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (ArrayBuffer.isView(value)) {
    if (value instanceof Float32Array)
      return {
        [F32]: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'),
      };
    return Array.from(value as unknown as ArrayLike<number>);
  }
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (item === null || typeof item !== 'object') continue;
      const encoded = encodeTyped(item);
      if (encoded === item) continue;
      copy ??= value.slice();
      copy[i] = encoded;
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value)) {
    if (item === null || typeof item !== 'object') continue;
    const encoded = encodeTyped(item);
    if (encoded === item) continue;
    copy ??= { ...value };
    copy[key] = encoded;
  }
  return copy ?? value;
}

/** Restores what encodeTyped wrote, in place (the value was just parsed). */
export function decodeTyped(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (item !== null && typeof item === 'object') value[i] = decodeTyped(item);
    }
    return value;
  }
  const record = value as Record<string, unknown>;
  const bytes = record[F32];
  if (typeof bytes === 'string') {
    const b = Buffer.from(bytes, 'base64');
    // A copy: the decoded Buffer may sit at an offset a Float32Array cannot start at.
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  }
  for (const key of Object.keys(record)) {
    const item = record[key];
    if (item !== null && typeof item === 'object') record[key] = decodeTyped(item);
  }
  return record;
}
