// Test double of the generation contract (tests only): deterministic candidates derived from the
// prompt, a controllable delay, and counters for load/dispose.
import type {
  AdapterSummary,
  CompletionGenerator,
  CompletionRequest,
  GeneratedCandidate,
} from '../../../src/generation/api';

export interface FakeGeneratorOptions {
  name?: string;
  /** Returns the candidate texts for a request; default: "<i>" suffixes of the prefix tail. */
  texts?: (request: CompletionRequest, signal?: AbortSignal) => string[] | Promise<string[]>;
  delayMs?: number;
  /** What `loadAdapter` answers (or throws) for a folder; default: a rank-8 q_proj adapter. */
  adapter?: (adapterPath: string) => AdapterSummary;
}

export class FakeGenerator implements CompletionGenerator {
  disposed = 0;
  calls: CompletionRequest[] = [];
  adapterCalls: string[] = [];
  /** Resolvers of calls waiting on `hold()`. */
  private held: Array<() => void> = [];
  private holding = false;

  constructor(private readonly options: FakeGeneratorOptions = {}) {}

  /** Makes the next calls wait until `release()`. */
  hold(): void {
    this.holding = true;
  }

  release(): void {
    this.holding = false;
    for (const resolve of this.held.splice(0)) resolve();
  }

  async complete(request: CompletionRequest, signal?: AbortSignal): Promise<GeneratedCandidate[]> {
    this.calls.push(request);
    if (this.holding) await new Promise<void>((resolve) => this.held.push(resolve));
    if (this.options.delayMs) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, this.options.delayMs);
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          const error = new Error('aborted');
          error.name = 'AbortError';
          reject(error);
        });
      });
    }
    const texts =
      (await this.options.texts?.(request, signal)) ??
      Array.from({ length: request.count }, (_, i) => ` candidate${i}\n`);
    return texts.map((text, i) => ({
      text,
      tokenIds: [...Buffer.from(text)].map((b) => b + i),
      logprob: -1 - i,
      stopReason: 'max-lines' as const,
    }));
  }

  async loadAdapter(adapterPath: string): Promise<AdapterSummary> {
    this.adapterCalls.push(adapterPath);
    return (
      this.options.adapter?.(adapterPath) ?? { rank: 8, alpha: 16, targets: ['q_proj'], modules: 1 }
    );
  }

  describe(): string {
    return this.options.name ?? 'fake';
  }

  async dispose(): Promise<void> {
    this.disposed++;
  }
}
