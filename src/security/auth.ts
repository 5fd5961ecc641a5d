// Who may call Warden's services. A caller is authenticated by a bearer token (the
// `authorization: Bearer …` metadata; tokens come from WARDEN_AUTH_TOKENS, never from files) or by
// a verified client certificate whose common name security.auth.clientCertRoles maps to roles.
// Each method needs one role: `read` (query learned patterns) or `operate` (admin: model deploy
// and rollback, configuration update). A refused call gets UNAUTHENTICATED or PERMISSION_DENIED,
// is logged at warn (never with the token) and counted by reason.

import { createHash, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { ROLES, type Role } from '../config/schema.ts';
import { ConfigError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/logger.ts';

export const TOKENS_ENV = 'WARDEN_AUTH_TOKENS';
const MIN_TOKEN_LENGTH = 16;

export interface Principal {
  readonly name: string;
  readonly roles: ReadonlySet<Role>;
  readonly via: 'token' | 'certificate' | 'unauthenticated-allowed';
}

interface TokenEntry {
  readonly name: string;
  readonly roles: ReadonlySet<Role>;
  readonly digest: Buffer;
}

const digest = (token: string) => createHash('sha256').update(token).digest();

/**
 * Parses `name:role[+role]:token` entries separated by commas or whitespace, e.g.
 * `siem:read:6f1c…,ops:read+operate:93ab…`. Only digests are kept in memory.
 */
export function parseTokens(text: string | undefined): TokenEntry[] {
  if (!text?.trim()) return [];
  return text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((entry, i) => {
      const first = entry.indexOf(':');
      const second = entry.indexOf(':', first + 1);
      if (first <= 0 || second <= first + 1) {
        throw new ConfigError(`${TOKENS_ENV} entry ${i + 1}: expected name:role[+role]:token`);
      }
      const name = entry.slice(0, first);
      const roles = entry.slice(first + 1, second).split('+');
      const token = entry.slice(second + 1);
      for (const r of roles) {
        if (!(ROLES as readonly string[]).includes(r)) {
          throw new ConfigError(
            `${TOKENS_ENV} entry ${i + 1} (${name}): unknown role "${r}" (roles: ${ROLES.join(', ')})`,
          );
        }
      }
      if (token.length < MIN_TOKEN_LENGTH) {
        throw new ConfigError(
          `${TOKENS_ENV} entry ${i + 1} (${name}): token shorter than ${MIN_TOKEN_LENGTH} characters`,
        );
      }
      return { name, roles: new Set(roles as Role[]), digest: digest(token) };
    });
}

export type DenyReason = 'no-credentials' | 'bad-token' | 'unknown-certificate' | 'missing-role';

export interface AuthOptions {
  readonly required: boolean;
  readonly tokens: readonly TokenEntry[];
  readonly clientCertRoles: readonly { commonName: string; roles: readonly Role[] }[];
  /** Certificates are trusted only when the server verified them (mutual TLS required). */
  readonly certificatesVerified: boolean;
  readonly log: Logger;
  readonly onDenied?: (service: string, method: string, reason: DenyReason) => void;
}

export class Authenticator {
  readonly #o: AuthOptions;
  readonly #certRoles: Map<string, ReadonlySet<Role>>;

  constructor(options: AuthOptions) {
    this.#o = options;
    this.#certRoles = new Map(
      options.clientCertRoles.map((c) => [c.commonName, new Set(c.roles)] as const),
    );
  }

  /** Whether any caller can be let in at all (for a warning at start). */
  get hasCredentials(): boolean {
    return (
      !this.#o.required ||
      this.#o.tokens.length > 0 ||
      (this.#o.certificatesVerified && this.#certRoles.size > 0)
    );
  }

  authenticate(
    metadata: grpc.Metadata,
    auth: ReturnType<grpc.ServerInterceptingCallInterface['getAuthContext']> | undefined,
  ): Principal | DenyReason {
    const header = metadata.get('authorization')[0];
    if (typeof header === 'string' && header.length > 0) {
      const match = /^Bearer\s+(\S{1,4096})$/i.exec(header);
      if (!match) return 'bad-token';
      const d = digest(match[1]!);
      // Compare against every entry in constant time per entry; no early exit on a match.
      let found: TokenEntry | undefined;
      for (const t of this.#o.tokens) if (timingSafeEqual(t.digest, d)) found ??= t;
      return found ? { name: found.name, roles: found.roles, via: 'token' } : 'bad-token';
    }
    const cn = auth?.sslPeerCertificate?.subject?.CN;
    if (this.#o.certificatesVerified && typeof cn === 'string' && cn.length > 0) {
      const roles = this.#certRoles.get(cn);
      return roles ? { name: cn, roles, via: 'certificate' } : 'unknown-certificate';
    }
    if (!this.#o.required)
      return { name: 'anonymous', roles: new Set(ROLES), via: 'unauthenticated-allowed' };
    return 'no-credentials';
  }

  /**
   * A grpc-js server interceptor: every method named in `roles` (full path
   * `/package.Service/Method`) needs that role; methods not named are refused.
   */
  interceptor(roles: Readonly<Record<string, Role>>): grpc.ServerInterceptor {
    return (method, call) => {
      const path = method.path;
      const [service = '?', name = '?'] = path.slice(1).split('/');
      const listener = new grpc.ServerListenerBuilder()
        .withOnReceiveMetadata((metadata, next) => {
          const needed = roles[path];
          const who = this.authenticate(metadata, call.getAuthContext());
          const reason: DenyReason | undefined =
            typeof who === 'string'
              ? who
              : !needed || !who.roles.has(needed)
                ? 'missing-role'
                : undefined;
          if (reason === undefined) {
            next(metadata);
            return;
          }
          const peer = call.getPeer();
          this.#o.log.warn(
            {
              service,
              method: name,
              reason,
              peer,
              principal: typeof who === 'string' ? undefined : who.name,
            },
            'call denied',
          );
          this.#o.onDenied?.(service, name, reason);
          call.sendStatus({
            code:
              reason === 'missing-role'
                ? grpc.status.PERMISSION_DENIED
                : grpc.status.UNAUTHENTICATED,
            details:
              reason === 'missing-role'
                ? `${name} needs the ${needed ?? 'unknown'} role`
                : 'authentication required (bearer token or client certificate)',
            metadata: new grpc.Metadata(),
          });
        })
        .build();
      const responder = new grpc.ResponderBuilder().withStart((next) => next(listener)).build();
      return new grpc.ServerInterceptingCall(call, responder);
    };
  }
}

/**
 * Client side: metadata carrying a bearer token, sent with each call (call credentials would not
 * be sent over a plaintext loopback channel).
 */
export function bearerMetadata(token: string | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return md;
}
