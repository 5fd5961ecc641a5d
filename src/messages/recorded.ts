// Recorded telemetry (JSON Lines): what the importers write, the trainer and reference sandbox
// read, and `warden validate` checks. Each line is one record; an episode's header comes before
// its events. The format is documented in docs/telemetry-format.md.

import type { Label } from './episode.ts';
import type { ArtifactType, TelemetryEvent } from './telemetry.ts';

export interface RecordedEpisode {
  readonly type: 'episode';
  readonly episodeId: string;
  readonly label: Label;
  /** Family or signature label when the source names one. */
  readonly family: string | null;
  readonly artifactHash: string;
  readonly artifactType: ArtifactType;
  /** Where the episode came from (file name and row or report). */
  readonly source: string;
  /** sha256 of the API-call sequence: identical sequences share it (split and duplicate checks). */
  readonly sequenceHash: string;
  readonly events: number;
}

export type RecordedLine = RecordedEpisode | TelemetryEvent;

/** An episode read back with its events, in seq order. */
export interface RecordedTrace {
  readonly episode: RecordedEpisode;
  readonly events: readonly TelemetryEvent[];
}
