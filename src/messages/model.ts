// Model artefacts (DESIGN §3): metadata beside each ONNX file, and registry announcements.

export interface HyperParameters {
  readonly learningRate: number;
  readonly gamma: number;
  readonly epsilonStart: number;
  readonly epsilonEnd: number;
  readonly epsilonDecay: number;
  readonly batchSize: number;
  readonly minReplay: number;
  readonly targetSyncEvery: number;
  readonly tau: number;
  readonly loss: 'mse' | 'huber';
  readonly doubleDqn: boolean;
  readonly dueling: boolean;
  readonly gradClip: number;
  readonly hiddenUnits: readonly number[];
}

export interface ModelMetrics {
  readonly finalLoss: number;
  readonly averageReward: number;
  readonly detectionAccuracy: number;
  readonly falsePositiveRate: number;
  readonly falseNegativeRate: number;
}

export interface ModelMetadata {
  /** `v{timestamp}`; timestamps strictly increase (property 14). */
  readonly version: string;
  readonly timestamp: number;
  readonly stateDim: number;
  readonly actionCount: number;
  readonly inputName: string;
  readonly outputName: string;
  readonly hyperParameters: HyperParameters;
  readonly trainingEpisodes: number;
  readonly metrics: ModelMetrics;
  /** Hex sha256 of the ONNX file. */
  readonly sha256: string;
  /** Base64 Ed25519 signature over the ONNX bytes, when the exporter holds a key. */
  readonly signature: string | null;
  readonly engine: string;
}

export interface ModelPublished {
  readonly type: 'model-published';
  readonly metadata: ModelMetadata;
  readonly path: string;
}

export interface ModelActivated {
  readonly type: 'model-activated';
  readonly version: string;
  readonly previousVersion: string | null;
  readonly reason: 'start' | 'hot-reload' | 'rollback';
}

/** A published or deployed version the inference pool would not serve (the current one stays). */
export interface ModelRefused {
  readonly type: 'model-refused';
  readonly version: string;
  readonly reason: string;
}

export type ModelMessage = ModelPublished | ModelActivated | ModelRefused;
