// The measurement tasks both workers understand (bench/model-worker.ts for tfjs,
// bench/torch/worker.py for PyTorch), and what they report.
import type { BakaConfig } from '@baka/model';

export type WorkerTask =
  | { kind: 'checkpoint'; config: BakaConfig; seed: number; dir: string; threads: number }
  | {
      kind: 'train';
      checkpoint: string;
      ids: string;
      batch: number;
      window: number;
      warmup: number;
      steps: number;
      offset?: number;
      threads: number;
    }
  | {
      kind: 'eval';
      checkpoint: string;
      ids: string;
      lengths: number[];
      warmup: number;
      reps: number;
      threads: number;
    }
  | {
      kind: 'generate';
      checkpoint: string;
      ids: string;
      tokens: number;
      check?: boolean;
      threads: number;
    }
  | {
      /** Time to the first token: `prompt` ids through a fresh decoder in one call, `reps` times. */
      kind: 'first-token';
      checkpoint: string;
      ids: string;
      prompt: number;
      reps: number;
      check?: boolean;
      threads: number;
    }
  | {
      /** Batched sampling (tfjs only): `samples` continuations of one prompt side by side. */
      kind: 'generate-samples';
      checkpoint: string;
      ids: string;
      prompt: number;
      tokens: number;
      samples: number;
      threads: number;
    }
  | { kind: 'matmul'; size: number; warmup: number; reps: number; threads: number }
  | {
      kind: 'leak';
      config: Partial<BakaConfig>;
      batch: number;
      window: number;
      steps: number;
      evalSteps: number;
      generateTokens: number;
      threads: number;
    };

export type Side = 'tfjs' | 'torch';

/** Fields every worker result carries. */
export interface WorkerResult {
  side: Side;
  kind: WorkerTask['kind'];
  threads: number | null;
  version: string;
  /** Peak resident memory of the process so far (exact for the first task of a child). */
  peakRssBytes: number;
  /** Resident memory once the runtime and libraries were loaded, before any task. */
  startRssBytes: number;
  wallSeconds: number;
  [field: string]: unknown;
}

export interface TensorCounters {
  numTensors: number;
  numBytes: number;
}

export interface TrainResult extends WorkerResult {
  seconds: number[];
  losses: number[];
  gradNorms: number[];
  tokensPerStep: number;
  tensors?: { before: TensorCounters; after: TensorCounters };
}

export interface EvalResult extends WorkerResult {
  lengths: { length: number; seconds: number[]; losses: number[] }[];
  tensors?: { before: TensorCounters; after: TensorCounters };
}

export interface GenerateResult extends WorkerResult {
  seconds: number[];
  lastArgmax: number;
  lastLogitSum: number;
  maxAbsDifference?: number;
  tensors?: { before: TensorCounters; after: TensorCounters };
}

export interface FirstTokenResult extends WorkerResult {
  /** Seconds per prompt, in order (the first is the process's first). */
  seconds: number[];
  argmax: number;
  maxAbsDifference?: number;
}

export interface SamplesResult extends WorkerResult {
  samples: number;
  /** Seconds per step after the prompt (each step adds one token to every sample). */
  seconds: number[];
  /** Seconds from the start until the first new token of every sample. */
  firstTokenSeconds: number;
}

export interface MatmulResult extends WorkerResult {
  seconds: number[];
  gflops: number;
}

export interface LeakResult extends WorkerResult {
  samples: { step: number; numTensors: number; numBytes: number }[];
  trainSeconds: number;
  eval: { before: TensorCounters; after: TensorCounters };
  generate: { tokens: number; after: TensorCounters };
  afterDispose: TensorCounters;
}
