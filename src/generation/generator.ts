/**
 * Completion generation with a KV cache: one prefill of the prompt, the cache copied to K rows,
 * then batched decode steps for the K candidates. Finished candidates leave the batch. Each
 * candidate has its own seeded stream (seed, candidate index), so the same request gives the
 * same candidates.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadPeftAdapter, type LoraAdapter } from '../model/lora';
import { ModelRuntime, selectCacheRows } from '../model/runtime';
import { SettingError } from '../model/settingError';
import {
  MAX_COUNT,
  type AdapterSummary,
  type CompletionGenerator,
  type CompletionRequest,
  type GeneratedCandidate,
  type StopReason,
} from './api';
import { StreamingDetokenizer } from './detokenizer';
import { buildPrompt } from './prompt';
import { NonFiniteLogitsError, Rng, sampleToken, validateSampling } from './sampling';
import { checkStop, validateStopping, type StopSettings } from './stopping';

export { MAX_COUNT };

/** A candidate plus what the RLHF side needs to score it again. */
export interface DetailedCandidate extends GeneratedCandidate {
  /** The stop id that ended it, when stopReason is 'stop-token' (not part of tokenIds). */
  stopTokenId?: number;
  /** Per-token log-probabilities (same temperature as `logprob`), aligned with tokenIds. */
  tokenLogprobs: number[];
}

export interface DetailedResult {
  promptIds: number[];
  promptMode: 'left-to-right' | 'fill-in-the-middle';
  candidates: DetailedCandidate[];
  timings: GenerationTimings;
}

/** Where a request's time went, in milliseconds (performance.now() around each phase). */
export interface GenerationTimings {
  /** The prompt's forward pass. */
  prefillMs: number;
  /** From the start until every candidate has its first token. */
  firstTokenMs: number;
  /** From the first sampled token to the end. */
  decodeMs: number;
  /** Decode forward passes (each produces one token per live candidate). */
  decodeSteps: number;
  /** Of decodeMs: inside the decode forward passes (feeds, session.run, cache writes). */
  modelMs: number;
  /** Sampling, detokenizing and stop checks, prefill's first tokens included. */
  samplingMs: number;
}

export class AbortError extends Error {
  override name = 'AbortError';
  constructor() {
    super('generation was aborted');
  }
}

interface CandidateState {
  index: number;
  /** Characters of the text already streamed to the caller. */
  streamed: number;
  rng: Rng;
  detokenizer: StreamingDetokenizer;
  tokens: number[];
  logprobs: number[];
  done?: { reason: StopReason; keepChars: number; stopTokenId?: number };
}

export class LlamaGenerator implements CompletionGenerator {
  private readonly adapters = new Map<string, { version: string; adapter: LoraAdapter }>();

  constructor(
    readonly runtime: ModelRuntime,
    private readonly ownsRuntime = true,
  ) {}

  describe(): string {
    return this.runtime.model.name;
  }

  async complete(request: CompletionRequest, signal?: AbortSignal): Promise<GeneratedCandidate[]> {
    const result = await this.completeDetailed(request, signal);
    return result.candidates.map(({ text, tokenIds, logprob, stopReason }) => ({
      text,
      tokenIds,
      logprob,
      stopReason,
    }));
  }

  async loadAdapter(adapterPath: string): Promise<AdapterSummary> {
    const { config, factors } = this.adapter(adapterPath);
    return {
      rank: config.rank,
      alpha: config.alpha,
      targets: [...config.targets],
      modules: factors.size,
    };
  }

  /**
   * Like `complete`, with prompt ids, per-token log-probs and timings. `onText` streams each
   * candidate's text as it is decoded: chunks never split a UTF-8 character, never include text
   * that a stop string or line limit will cut, and concatenate to the final `text`.
   */
  async completeDetailed(
    request: CompletionRequest,
    signal?: AbortSignal,
    onText?: (candidate: number, chunk: string) => void,
  ): Promise<DetailedResult> {
    validateRequest(request);
    const { model } = this.runtime;
    const adapter = request.adapterPath ? this.adapter(request.adapterPath) : undefined;
    const budget = model.contextLength - request.maxNewTokens;
    if (budget < 1) {
      throw new SettingError(
        `maxNewTokens ${request.maxNewTokens} leaves no room for a prompt in the model's ` +
          `${model.contextLength}-token context`,
      );
    }
    const prompt = buildPrompt(model.tokenizer, request.prefix, request.suffix, budget);
    if (prompt.ids.length === 0) {
      // An empty document with no BOS: start from the document separator, as these models
      // were trained to (GPT-2 style <|endoftext|>).
      const start = model.config.bosTokenId ?? model.generation.bosTokenId ?? model.tokenizer.eosId;
      if (start === undefined) {
        throw new RangeError(
          'the prompt is empty and the model defines no bos or eos token to start from',
        );
      }
      prompt.ids.push(start);
    }
    const stop: StopSettings = {
      stopIds: model.stopIds,
      stopStrings: request.stopStrings ?? [],
      maxNewTokens: request.maxNewTokens,
      maxLines: request.maxLines,
    };
    // Padded embedding rows past the tokenizer have no text: never sample them.
    const allowed = Math.min(model.config.vocabSize, model.tokenizer.vocabSize);
    const v = model.config.vocabSize;
    const throwIfAborted = () => {
      if (signal?.aborted) throw new AbortError();
    };
    throwIfAborted();

    const started = performance.now();
    const n = prompt.ids.length;
    const prefill = await this.runtime.step(
      this.runtime.emptyCache(1, n),
      prompt.ids,
      prompt.ids.map((_, i) => i),
      { adapter },
    );
    const prefillMs = performance.now() - started;
    let firstTokenMs = 0;
    const states: CandidateState[] = Array.from({ length: request.count }, (_, index) => ({
      index,
      streamed: 0,
      rng: new Rng(request.seed, index),
      detokenizer: new StreamingDetokenizer((id) => model.tokenizer.tokenBytes(id)),
      tokens: [],
      logprobs: [],
    }));
    // Every candidate starts from the prompt's last-position logits.
    let rowLogits: Float32Array[] = states.map(() => prefill.logits);
    // Room for every token a candidate can add, so decode steps never reallocate.
    let cache = selectCacheRows(
      prefill.cache,
      new Array<number>(request.count).fill(0),
      n + request.maxNewTokens,
    );
    let active = states;
    let decodeSteps = 0;
    let modelMs = 0;
    let samplingMs = 0;
    const decodeStart = performance.now();
    for (let step = 0; ; step++) {
      const next: CandidateState[] = [];
      const nextIds: number[] = [];
      const samplingStart = performance.now();
      active.forEach((state, row) => {
        const token = sampleWeights(request.adapterPath, () =>
          sampleToken(rowLogits[row], request, state.rng, allowed),
        );
        const before = state.detokenizer.text.length;
        if (model.stopIds.has(token.id)) {
          state.done = { reason: 'stop-token', keepChars: before, stopTokenId: token.id };
          return;
        }
        state.tokens.push(token.id);
        state.logprobs.push(token.logprob);
        state.detokenizer.push(token.id);
        const decision = checkStop(
          stop,
          state.detokenizer.text,
          before,
          state.tokens.length,
          token.id,
        );
        if (decision) state.done = decision;
        else {
          next.push(state);
          nextIds.push(token.id);
        }
        if (onText) stream(state, stop.stopStrings, onText);
      });
      const sampled = performance.now();
      samplingMs += sampled - samplingStart;
      if (step === 0) firstTokenMs = sampled - started;
      if (next.length === 0) break;
      // Let an abort signal fire between steps.
      await new Promise<void>((resolve) => setImmediate(resolve));
      throwIfAborted();
      const keep = next.map((s) => active.indexOf(s));
      cache = keep.length === active.length ? cache : selectCacheRows(cache, keep);
      const positions = new Array<number>(next.length).fill(n + step);
      const stepStart = performance.now();
      const result = await this.runtime.step(cache, nextIds, positions, { adapter });
      modelMs += performance.now() - stepStart;
      decodeSteps++;
      cache = result.cache;
      rowLogits = next.map((_, row) => result.logits.subarray(row * v, (row + 1) * v));
      active = next;
    }
    // An abort that fired while the last step ran still wins: the caller no longer wants these.
    throwIfAborted();
    const candidates = states.map((state) => finish(state));
    if (onText) {
      // Candidates that stopped on a stop id emitted everything in the loop above.
      for (const state of states) stream(state, stop.stopStrings, onText);
    }
    return {
      promptIds: prompt.ids,
      promptMode: prompt.mode,
      candidates,
      timings: {
        prefillMs,
        firstTokenMs,
        decodeMs: performance.now() - decodeStart,
        decodeSteps,
        modelMs,
        samplingMs,
      },
    };
  }

  private adapter(adapterPath: string): LoraAdapter {
    const weights = path.join(adapterPath, 'adapter_model.safetensors');
    // Saves replace the file (temporary file + rename), so the inode changes even when two saves
    // land in the same clock tick; size and mtime catch in-place writes.
    let version = 'missing';
    try {
      const stat = fs.statSync(weights);
      version = `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    } catch {
      // loadPeftAdapter reports the missing file with its path.
    }
    const cached = this.adapters.get(adapterPath);
    if (cached && cached.version === version) return cached.adapter;
    const adapter = loadPeftAdapter(adapterPath, this.runtime.model);
    this.adapters.set(adapterPath, { version, adapter });
    return adapter;
  }

  async dispose(): Promise<void> {
    this.adapters.clear();
    if (this.ownsRuntime) await this.runtime.dispose();
  }
}

/**
 * Sends the part of a candidate's text that is final: everything once it is done, otherwise all
 * but a tail that could still turn out to be the start of a stop string.
 */
function stream(
  state: CandidateState,
  stopStrings: readonly string[],
  onText: (candidate: number, chunk: string) => void,
): void {
  const text = state.detokenizer.text;
  let end = state.done ? state.done.keepChars : text.length;
  if (!state.done) {
    for (const stop of stopStrings) {
      for (let length = Math.min(stop.length - 1, text.length); length > 0; length--) {
        if (text.endsWith(stop.slice(0, length))) {
          end = Math.min(end, text.length - length);
          break;
        }
      }
    }
  }
  if (end > state.streamed) {
    onText(state.index, text.slice(state.streamed, end));
    state.streamed = end;
  }
}

function finish(state: CandidateState): DetailedCandidate {
  const done = state.done!;
  const text = state.detokenizer.text.slice(0, done.keepChars);
  // Keep the fewest tokens whose text covers the kept text (a stop string or a line end can sit
  // inside a token, so text is a prefix of decode(tokenIds)). Counted in characters, not bytes:
  // an invalid byte decodes to U+FFFD, which is 3 bytes of text for 1 byte of token.
  let count = state.tokens.length;
  if (done.reason === 'stop-string' || done.reason === 'max-lines') {
    count =
      text.length === 0 ? 0 : state.detokenizer.textEnds.findIndex((end) => end >= text.length) + 1;
  }
  const tokenLogprobs = state.logprobs.slice(0, count);
  return {
    text,
    tokenIds: state.tokens.slice(0, count),
    logprob: tokenLogprobs.reduce((a, b) => a + b, 0),
    stopReason: done.reason,
    stopTokenId: done.stopTokenId,
    tokenLogprobs,
  };
}

/**
 * `sample()`, with NaN or infinite logits reported as what they almost always are: weights that
 * diverged in training (the adapter's, when one is applied), with the settings that make them
 * diverge, rather than as a fault of the sampler.
 */
function sampleWeights<T>(adapterPath: string | undefined, sample: () => T): T {
  try {
    return sample();
  } catch (error) {
    if (!(error instanceof NonFiniteLogitsError)) throw error;
    const source = adapterPath
      ? `the adapter in ${adapterPath} makes the model's logits NaN or infinite: its weights ` +
        'diverged in training. Train it again with a lower learningRate or loraAlpha (the LoRA ' +
        'scale is loraAlpha / loraRank), and in PPO klCoef, valueCoef or missingEosPenalty ' +
        'nearer their defaults, or use an adapter from an earlier checkpoint'
      : "the base model's logits are NaN or infinite: its weights hold NaN or infinite " +
        'values, or overflow float32; check the model folder (or convert the checkpoint again)';
    throw new NonFiniteLogitsError(`${source} (${error.message})`);
  }
}

function validateRequest(request: CompletionRequest): void {
  if (typeof request !== 'object' || request === null) {
    throw new TypeError(`the completion request must be an object, got ${String(request)}`);
  }
  if (typeof request.prefix !== 'string') throw new TypeError('request.prefix must be a string');
  if (typeof request.suffix !== 'string') throw new TypeError('request.suffix must be a string');
  if (!(Number.isInteger(request.count) && request.count >= 1 && request.count <= MAX_COUNT)) {
    throw new SettingError(
      `request.count must be an integer from 1 to ${MAX_COUNT}, got ${request.count}`,
    );
  }
  if (!Number.isFinite(request.seed))
    throw new SettingError(`request.seed must be a number, got ${request.seed}`);
  validateSampling(request);
  if (request.stopStrings !== undefined && !Array.isArray(request.stopStrings)) {
    throw new TypeError(
      `request.stopStrings must be an array of strings, got ${JSON.stringify(request.stopStrings)}`,
    );
  }
  validateStopping({
    stopStrings: request.stopStrings ?? [],
    maxNewTokens: request.maxNewTokens,
    maxLines: request.maxLines,
  });
}
