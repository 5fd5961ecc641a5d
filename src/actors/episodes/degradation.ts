// Degradation watch (requirement 7.4, property 32): rolling detection accuracy and average reward
// per model version, over the last `window` scored stage-1 verdicts. When the version in service
// has at least `minEpisodes` and falls more than `maxAccuracyDrop` below the version before it (or
// its average reward more than `maxRewardDrop` below), one alert is raised for that version.

export interface DegradationOptions {
  readonly window: number;
  readonly minEpisodes: number;
  readonly maxAccuracyDrop: number;
  readonly maxRewardDrop: number;
}

export interface DegradationAlert {
  readonly type: 'model-degraded';
  readonly version: string;
  readonly previousVersion: string;
  readonly accuracy: number;
  readonly previousAccuracy: number;
  readonly averageReward: number;
  readonly previousAverageReward: number;
  readonly episodes: number;
  /** live: scored stage-1 verdicts per version; held-out: the learner's fixed evaluation set. */
  readonly source?: 'live' | 'held-out';
}

interface Window {
  readonly correct: number[];
  readonly rewards: number[];
}

const mean = (xs: readonly number[]) =>
  xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;

export class DegradationMonitor {
  readonly #o: DegradationOptions;
  readonly #windows = new Map<string, Window>();
  readonly #order: string[] = [];
  readonly #alerted = new Set<string>();

  constructor(options: DegradationOptions) {
    this.#o = options;
  }

  /** Scores one verdict of `version`; returns an alert the first time the version degrades. */
  record(version: string, correct: boolean, reward: number): DegradationAlert | undefined {
    let w = this.#windows.get(version);
    if (!w) {
      w = { correct: [], rewards: [] };
      this.#windows.set(version, w);
      this.#order.push(version);
    }
    w.correct.push(correct ? 1 : 0);
    w.rewards.push(reward);
    if (w.correct.length > this.#o.window) {
      w.correct.shift();
      w.rewards.shift();
    }
    const i = this.#order.indexOf(version);
    const previous = i > 0 ? this.#order[i - 1]! : undefined;
    if (!previous || this.#alerted.has(version) || w.correct.length < this.#o.minEpisodes)
      return undefined;
    const p = this.#windows.get(previous)!;
    if (p.correct.length < this.#o.minEpisodes) return undefined;
    const accuracy = mean(w.correct);
    const previousAccuracy = mean(p.correct);
    const averageReward = mean(w.rewards);
    const previousAverageReward = mean(p.rewards);
    if (
      previousAccuracy - accuracy <= this.#o.maxAccuracyDrop &&
      previousAverageReward - averageReward <= this.#o.maxRewardDrop
    )
      return undefined;
    this.#alerted.add(version);
    return {
      type: 'model-degraded',
      version,
      previousVersion: previous,
      accuracy,
      previousAccuracy,
      averageReward,
      previousAverageReward,
      episodes: w.correct.length,
    };
  }

  get alerts(): number {
    return this.#alerted.size;
  }
}
