// The one train/test split every command shares: seeded, by distinct API-call sequence, so that
// identical sequences never fall on both sides (the Oliveira set repeats many sequences).
// A sequence goes to test when hash(seed, sequenceHash) falls under the test share: the split is
// stable under reordering and adding data.

import { fnv1a } from '../actors/adapter/state-vector.ts';
import type { RecordedTrace } from '../messages/recorded.ts';

export const DEFAULT_SPLIT_SEED = 20_190_101;
export const DEFAULT_TEST_SHARE = 0.25;

export type SplitPart = 'train' | 'test' | 'all';

export function isTest(
  trace: RecordedTrace,
  seed = DEFAULT_SPLIT_SEED,
  testShare = DEFAULT_TEST_SHARE,
): boolean {
  const key = trace.episode.sequenceHash || trace.episode.episodeId;
  return fnv1a(`${seed}:${key}`) / 2 ** 32 < testShare;
}

export function splitTraces(
  traces: readonly RecordedTrace[],
  part: SplitPart,
  seed = DEFAULT_SPLIT_SEED,
  testShare = DEFAULT_TEST_SHARE,
): RecordedTrace[] {
  if (part === 'all') return [...traces];
  return traces.filter((t) => isTest(t, seed, testShare) === (part === 'test'));
}
