// Open work carried across a graceful restart (runtime.resumeDir). When Warden stops, the
// receivers, the adapter and the episodes actor each write what they hold of the stages still
// open — what was accepted of each (the receivers' ledgers), the running state vectors (the
// adapter), the decisions and steps so far (the episodes actor) — instead of the episodes being
// stored as partial; once every actor has stopped in time, the system seals the set with a marker.
// The next start takes the set up only when the marker is there and the state layout is the same:
// the receivers then name those stages in resume_after, the sandboxes go on with them (and send
// the outcome of one that ended meanwhile, which a restart lost before), and the episodes
// complete. A set that is not sealed (a stop cut short) or does not fit is stale: its episodes
// are stored as partial at the next start, as a stop without resumeDir stores them.

import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WardenConfig } from '../config/schema.ts';
import { FieldCipher, KEYS_ENV } from '../security/field-crypto.ts';
import type { Logger } from './logger.ts';
import { makeDirectory } from './make-directory.ts';
import { decodeTyped, encodeTyped } from './typed-json.ts';

const MARKER = 'complete.json';
export const ADAPTER_FILE = 'adapter.json';
export const EPISODES_FILE = 'episodes.json';
/** The episodes of a set not taken up: stored as partial at start. */
export const STALE_EPISODES_FILE = 'episodes.stale.json';
export const receiverFile = (sandbox: string) => `receiver-${sandbox}.json`;

interface Marker {
  readonly stoppedAt: number;
  readonly stateDim: number;
  readonly horizon: number;
}

/** The directory of the resume set, or undefined when resuming is off. */
export const resumeDirOf = (config: WardenConfig): string | undefined =>
  config.runtime.resumeDir ?? undefined;

/**
 * The parts hold episode ids and artifact hashes: with security.encryption.fields chosen, each
 * part is sealed whole (AES-256-GCM, the key from WARDEN_ENCRYPTION_KEYS), as the database and
 * the journal hold those fields.
 */
const SEAL_LABEL = 'warden resume part';
const cipherOf = (security: WardenConfig['security'] | undefined) =>
  security
    ? new FieldCipher(security.encryption.fields, process.env[KEYS_ENV], security.encryption.keyId)
    : FieldCipher.none();

/**
 * Writes one actor's part (whole or not at all: a temporary file renamed over it); its
 * Float32Arrays go as base64 of their bytes (typed-json.ts), exact.
 */
export function writeResumeFile(
  dir: string,
  name: string,
  data: unknown,
  security?: WardenConfig['security'],
): void {
  makeDirectory(dir);
  const path = join(dir, name);
  writeFileSync(
    `${path}.tmp`,
    cipherOf(security).sealDocument(SEAL_LABEL, JSON.stringify(encodeTyped(data))),
    {
      mode: 0o600,
    },
  );
  renameSync(`${path}.tmp`, path);
}

/** Reads one actor's part and removes it (taken up once); undefined when absent or unreadable. */
export function takeResumeFile(
  dir: string,
  name: string,
  log?: Logger,
  security?: WardenConfig['security'],
): unknown {
  const path = join(dir, name);
  if (!existsSync(path)) return undefined;
  try {
    return decodeTyped(
      JSON.parse(cipherOf(security).openDocument(SEAL_LABEL, readFileSync(path, 'utf8'))),
    );
  } catch (error) {
    log?.warn({ err: error, path }, 'resume file unreadable: its stages start afresh');
    return undefined;
  } finally {
    rmSync(path, { force: true });
  }
}

const sameLayout = (m: Partial<Marker>, config: WardenConfig) =>
  m.stateDim === config.telemetry.stateDim && m.horizon === config.telemetry.horizon;

/**
 * At start, before any actor: whether the set left by the last stop is taken up. A set that is
 * not (no marker: the stop was cut short; another state layout; parts missing) keeps only its
 * episodes, renamed to be stored as partial by the episodes actor.
 */
export function openResume(config: WardenConfig, log: Logger): 'resume' | 'stale' | 'none' {
  const dir = resumeDirOf(config);
  if (!dir || !existsSync(dir)) return 'none';
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  if (files.length === 0) return 'none';
  let marker: Partial<Marker> | undefined;
  try {
    marker = files.includes(MARKER)
      ? (JSON.parse(readFileSync(join(dir, MARKER), 'utf8')) as Partial<Marker>)
      : undefined;
  } catch {
    marker = undefined;
  }
  rmSync(join(dir, MARKER), { force: true });
  const why = !marker
    ? 'the last stop did not finish writing it'
    : !sameLayout(marker, config)
      ? 'telemetry.stateDim or telemetry.horizon changed since'
      : !files.includes(ADAPTER_FILE) || !files.includes(EPISODES_FILE)
        ? 'parts of it are missing'
        : undefined;
  if (why === undefined) {
    // A sandbox no longer configured: its part would outlive this start and be taken up by a
    // receiver added much later, naming stages long gone.
    const configured = new Set(config.sandboxes.map((x) => receiverFile(x.name)));
    for (const f of files)
      if (f.startsWith('receiver-') && !configured.has(f)) rmSync(join(dir, f), { force: true });
    log.info(
      { dir, stoppedAt: new Date(marker!.stoppedAt ?? 0).toISOString() },
      'open stages of the last run taken up (runtime.resumeDir): the sandboxes are asked to go on with them',
    );
    return 'resume';
  }
  for (const f of files) {
    if (f === EPISODES_FILE) renameSync(join(dir, f), join(dir, STALE_EPISODES_FILE));
    else if (f !== STALE_EPISODES_FILE) rmSync(join(dir, f), { force: true });
  }
  log.warn(
    { dir, reason: why },
    'open stages of the last run not taken up: its open episodes are stored as partial',
  );
  return 'stale';
}

/** After every actor stopped in time: the set is whole, and the next start may take it up. */
export function sealResume(config: WardenConfig): void {
  const dir = resumeDirOf(config);
  // Nothing written (no actor here holds open stages): nothing to seal.
  if (!dir || !existsSync(dir) || !readdirSync(dir).some((f) => f.endsWith('.json'))) return;
  const marker: Marker = {
    stoppedAt: Date.now(),
    stateDim: config.telemetry.stateDim,
    horizon: config.telemetry.horizon,
  };
  writeResumeFile(dir, MARKER, marker);
}
