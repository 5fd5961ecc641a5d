// Sanitiser for text that reaches PostgreSQL: file paths and IP addresses inside stored strings
// (failure reasons, episode ids, family labels a sandbox reports) become keyed hashes, so the
// store can still group equal values without revealing them. Numeric features need nothing.
// The key comes from WARDEN_SANITIZER_KEY; without it a fixed key is used (hashes are then only
// pseudonyms, not secrets — say so to operators who need more).

import { createHmac } from 'node:crypto';

export interface SanitizeOptions {
  readonly paths: boolean;
  readonly ips: boolean;
  readonly key?: string;
}

const WINDOWS_PATH = /\b[A-Za-z]:\\(?:[^\\\s"'<>|:*?]+\\)*[^\\\s"'<>|:*?]*/g;
const UNC_PATH = /\\\\[^\\\s"'<>|]+(?:\\[^\\\s"'<>|]+)+/g;
const UNIX_PATH = /(?<![\w.])\/(?:[\w.-]+\/)+[\w.-]*/g;
const IPV4 = /\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b/g;
// Eight full groups, or any run with "::" (so clock times like 12:30:45 are left alone).
const IPV6 =
  /(?<![\w:])(?:(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|(?:[0-9a-fA-F]{1,4}:)*[0-9a-fA-F]{0,4}::(?:[0-9a-fA-F]{1,4}:)*[0-9a-fA-F]{0,4})(?![\w:])/g;

export function makeSanitizer(opts: SanitizeOptions): (text: string) => string {
  const key = opts.key ?? 'warden-default-sanitizer-key';
  const hash = (kind: string) => (value: string) =>
    `${kind}:${createHmac('sha256', key).update(value).digest('hex').slice(0, 16)}`;
  return (text) => {
    let out = text;
    if (opts.paths)
      out = out
        .replace(UNC_PATH, hash('path'))
        .replace(WINDOWS_PATH, hash('path'))
        .replace(UNIX_PATH, hash('path'));
    if (opts.ips) out = out.replace(IPV4, hash('ip')).replace(IPV6, hash('ip'));
    return out;
  };
}
