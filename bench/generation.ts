/**
 * `npm run bench:generation`: time to K = 4 candidates of up to 48 new tokens (prefill, time to
 * first token, decode tokens/s, and where the time went) for the tiny fixture, for
 * models/default when it exists, and for a 110M-parameter Llama config with random weights,
 * against PyTorch on the same shapes in the same run (when /usr/bin/python3 has torch).
 *
 * Each model gets a row with its stop ids on (what the editor sees: candidates that sample EOS
 * end early, so fewer than K x 48 tokens are generated) and a row with stop ids off, where every
 * candidate generates exactly 48 tokens; the tokens column says how many of the K x 48 asked
 * were generated. The 110M row and the PyTorch baselines always generate all K x 48. The
 * "compare request" row times what the editor's Compare command asks for in bench:ui
 * (fill-in-the-middle in sandbox/src/strings.js, top-k 40, at most 8 lines).
 *
 * Options: --runs N (default 7), --threads N (default 2), --step-threads N (default: the
 * runtime's choice for the model size), --skip-110m.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createGenerator, loadGenerator } from '../src/generation';
import type { CompletionRequest } from '../src/generation/api';
import { loadModel } from '../src/model/loader';
import { Rng } from '../src/model/random';
import { ModelRuntime, parameterCount, type RuntimeOptions } from '../src/model/runtime';
import { writeSafetensorsStreaming, type LazyTensor } from '../src/model/safetensors';

const ROOT = path.join(__dirname, '..');
const args = process.argv.slice(2);
const option = (name: string, fallback: number | undefined) => {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(args[at + 1])}`);
  }
  return value;
};
const RUNS = option('runs', 7)!;
const THREADS = option('threads', 2)!;
const STEP_THREADS = option('step-threads', undefined);
const COUNT = 4;
const NEW_TOKENS = 48;

const PROMPT = `import os
import sys


def read_lines(path):
    with open(path) as handle:
        return [line.rstrip("\\n") for line in handle]


def main():
    lines = read_lines(sys.argv[1])
    for index, line in enumerate(lines):
`;

interface Row {
  model: string;
  params: string;
  stops: 'on' | 'off';
  stepThreads: number;
  promptTokens: number;
  firstTokenMs: number;
  totalMs: number;
  /** CPU time of this process per request (all threads): less sensitive to other load. */
  cpuMs: number;
  /** Medians of the generator's own phase timers. */
  prefillMs: number;
  modelMs: number;
  samplingMs: number;
  decodeTokS: number;
  /** Mean tokens generated per request, of COUNT x NEW_TOKENS asked. */
  tokens: number;
  torch?: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The request bench:ui's "Compare completions" sends: end of line 5 of sandbox/src/strings.js. */
function compareRequest(): Partial<CompletionRequest> {
  const text = fs.readFileSync(path.join(ROOT, 'sandbox/src/strings.js'), 'utf8');
  const at = text.split('\n').slice(0, 5).join('\n').length;
  // Settings of COMPARE_SAMPLING in src/extension/config.ts.
  return { prefix: text.slice(0, at), suffix: text.slice(at), maxLines: 8, topK: 40 };
}

async function benchModel(
  dir: string,
  label: string,
  stops: 'on' | 'off',
  overrides: Partial<CompletionRequest> = {},
): Promise<Row> {
  const loaded = loadModel(dir);
  // Stops off: no stop id ends a candidate, so each one runs the full 48 decode positions.
  const model = stops === 'on' ? loaded : { ...loaded, stopIds: new Set<number>() };
  const options: RuntimeOptions = { threads: THREADS, stepThreads: STEP_THREADS };
  const runtime = ModelRuntime.fromModel(model, options);
  const generator = createGenerator(runtime);
  const config = model.config;
  const request: CompletionRequest = {
    prefix: PROMPT,
    suffix: '',
    count: COUNT,
    maxNewTokens: NEW_TOKENS,
    maxLines: 0,
    temperature: 0.8,
    topK: 0,
    topP: 0.95,
    seed: 0,
    ...overrides,
  };
  await generator.completeDetailed(request); // warm-up: session creation, first-run allocations
  const samples = {
    first: [] as number[],
    total: [] as number[],
    cpu: [] as number[],
    prefill: [] as number[],
    model: [] as number[],
    sampling: [] as number[],
    rates: [] as number[],
  };
  let tokens = 0;
  let promptTokens = 0;
  for (let run = 0; run < RUNS; run++) {
    const started = performance.now();
    const cpuStart = process.cpuUsage();
    const result = await generator.completeDetailed({ ...request, seed: run + 1 });
    samples.total.push(performance.now() - started);
    const used = process.cpuUsage(cpuStart);
    samples.cpu.push((used.user + used.system) / 1000);
    const { timings } = result;
    samples.first.push(timings.firstTokenMs);
    samples.prefill.push(timings.prefillMs);
    samples.model.push(timings.modelMs);
    samples.sampling.push(timings.samplingMs);
    // A candidate that stopped on a stop id sampled it but does not keep it: count it, since
    // its decode step was run.
    const generated = result.candidates.reduce(
      (a, c) => a + c.tokenIds.length + (c.stopReason === 'stop-token' ? 1 : 0),
      0,
    );
    tokens += generated;
    promptTokens = result.promptIds.length;
    // Decode steps after the prefill; each step produces one token per live candidate.
    samples.rates.push((generated - COUNT) / (timings.decodeMs / 1000));
  }
  const stepThreads = runtime.threadsFor('step');
  await runtime.dispose();
  return {
    model: label,
    params: `${(parameterCount(config) / 1e6).toFixed(2)}M`,
    stops,
    stepThreads,
    promptTokens,
    firstTokenMs: median(samples.first),
    totalMs: median(samples.total),
    cpuMs: median(samples.cpu),
    prefillMs: median(samples.prefill),
    modelMs: median(samples.model),
    samplingMs: median(samples.sampling),
    decodeTokS: median(samples.rates),
    tokens: tokens / RUNS,
  };
}

/** llama2.c's 110M shape: dim 768, 12 layers, 12 heads, vocab 32000, tied head. */
const SHAPE_110M = {
  architectures: ['LlamaForCausalLM'],
  vocab_size: 32000,
  hidden_size: 768,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_key_value_heads: 12,
  max_position_embeddings: 1024,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  torch_dtype: 'float32',
};

/** The shape `npm run pretrain` gives models/default by default (scripts/pretrain.ts). */
const SHAPE_DEFAULT = {
  architectures: ['LlamaForCausalLM'],
  vocab_size: 4096,
  hidden_size: 256,
  intermediate_size: 688,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  torch_dtype: 'float32',
};

type Shape = typeof SHAPE_110M;

/** Writes (once, cached in the temp folder) a random-weight checkpoint of the given shape. */
function randomCheckpoint(
  name: string,
  shape: Shape,
  tokenizerDir: string,
  dtype: 'F32' | 'F16' = 'F32',
): string {
  const dir = path.join(os.tmpdir(), `code-rlhf-bench-${name}`);
  const marker = path.join(dir, 'config.json');
  const config = JSON.stringify({ ...shape, torch_dtype: dtype === 'F16' ? 'float16' : 'float32' });
  if (fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === config) {
    return dir;
  }
  fs.mkdirSync(dir, { recursive: true });
  const rng = new Rng(110);
  const random = (n: number, std: number) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) * std * Math.sqrt(3);
    return out;
  };
  const { hidden_size: c, intermediate_size: f, vocab_size: v } = shape;
  const tensors: LazyTensor[] = [];
  const add = (name: string, dims: number[], ones = false) =>
    tensors.push({
      name,
      dtype,
      shape: dims,
      produce: () =>
        ones ? new Float32Array(dims[0]).fill(1) : random(dims[0] * (dims[1] ?? 1), 0.02),
    });
  add('model.embed_tokens.weight', [v, c]);
  for (let l = 0; l < shape.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [c], true);
    add(`${p}.post_attention_layernorm.weight`, [c], true);
    for (const m of ['q', 'k', 'v', 'o']) add(`${p}.self_attn.${m}_proj.weight`, [c, c]);
    add(`${p}.mlp.gate_proj.weight`, [f, c]);
    add(`${p}.mlp.up_proj.weight`, [f, c]);
    add(`${p}.mlp.down_proj.weight`, [c, f]);
  }
  add('model.norm.weight', [c], true);
  writeSafetensorsStreaming(path.join(dir, 'model.safetensors'), tensors);
  // Sampling is limited to the tokenizer's ids; the compute is the same whatever they are.
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
    fs.copyFileSync(path.join(tokenizerDir, file), path.join(dir, file));
  }
  fs.writeFileSync(marker, config);
  return dir;
}

/**
 * PyTorch on the same shape (random weights, prefill then K x 48 decode steps with a KV cache and
 * multinomial sampling, no stops) with the same thread count, or why it is unavailable.
 */
function torchBaseline(shape: object, promptTokens: number, threads: number): string {
  const script = path.join(__dirname, 'generation_torch.py');
  const result = spawnSync(
    '/usr/bin/python3',
    [
      script,
      JSON.stringify(shape),
      String(promptTokens),
      String(COUNT),
      String(NEW_TOKENS),
      String(threads),
    ],
    { encoding: 'utf8', timeout: 600_000 },
  );
  if (result.status !== 0) {
    return `unavailable (${(result.stderr || result.error?.message || '').trim().split('\n').pop()})`;
  }
  const parsed = JSON.parse(result.stdout.trim().split('\n').pop() as string) as {
    prefill_ms: number;
    decode_tok_s: number;
    torch: string;
  };
  // Decode of all K x 48 positions after the prefill (torch reports tokens/s over them).
  const totalMs = parsed.prefill_ms + ((COUNT * NEW_TOKENS) / parsed.decode_tok_s) * 1000;
  return (
    `${parsed.decode_tok_s.toFixed(1)} tok/s decode, ${parsed.prefill_ms.toFixed(1)} ms prefill, ` +
    `${totalMs.toFixed(0)} ms total (torch ${parsed.torch}, ${threads} threads)`
  );
}

/** Parity of the engine's forward pass with the PyTorch reference fixtures. */
async function parity(): Promise<void> {
  console.log('| fixture | max abs logits error | max abs / max abs logit | greedy ids match |');
  console.log('| --- | --- | --- | --- |');
  for (const name of ['tiny-llama', 'tiny-qwen2', 'tiny-llama3rope']) {
    const dir = path.join(ROOT, 'test/fixtures/model', name);
    const reference = JSON.parse(
      fs.readFileSync(path.join(ROOT, 'test/fixtures/model/reference', `${name}.json`), 'utf8'),
    ) as { prompts: { ids: number[]; logits: number[]; greedy: number[] }[] };
    const generator = await loadGenerator(dir, { threads: THREADS });
    const runtime = generator.runtime;
    const outputs = await runtime.logits(reference.prompts.map((p) => p.ids));
    let maxAbs = 0;
    let maxRef = 0;
    outputs.forEach((logits, i) => {
      const expected = reference.prompts[i].logits;
      for (let j = 0; j < expected.length; j++) {
        maxAbs = Math.max(maxAbs, Math.abs(logits[j] - expected[j]));
        maxRef = Math.max(maxRef, Math.abs(expected[j]));
      }
    });
    let matches = 0;
    for (const p of reference.prompts) {
      let step = await runtime.step(
        runtime.emptyCache(1),
        p.ids,
        p.ids.map((_, i) => i),
      );
      const ids: number[] = [];
      for (let s = 0; s < p.greedy.length; s++) {
        let best = 0;
        for (let v = 1; v < runtime.vocabSize; v++)
          if (step.logits[v] > step.logits[best]) best = v;
        ids.push(best);
        step = await runtime.step(step.cache, [best], [step.cache.length]);
      }
      if (ids.join() === p.greedy.join()) matches++;
    }
    await generator.dispose();
    console.log(
      `| ${name} | ${maxAbs.toExponential(2)} | ${(maxAbs / maxRef).toExponential(2)} | ` +
        `${matches}/${reference.prompts.length} prompts x ${reference.prompts[0].greedy.length} tokens |`,
    );
  }
  console.log('');
}

async function main(): Promise<void> {
  await parity();
  const rows: Row[] = [];
  rows.push(
    await benchModel(path.join(ROOT, 'test/fixtures/model/tiny-llama'), 'fixture tiny-llama', 'on'),
  );
  const defaultDir = path.join(ROOT, 'models/default');
  const fixtureTokenizer = path.join(ROOT, 'test/fixtures/model/tiny-llama');
  let dir = defaultDir;
  let label = 'models/default';
  if (!fs.existsSync(path.join(defaultDir, 'config.json'))) {
    // Until the trained model lands, time its shape with random weights.
    const tokenizerDir = fs.existsSync(path.join(defaultDir, 'tokenizer.json'))
      ? defaultDir
      : fixtureTokenizer;
    // pretrain exports F16 weights, as here.
    dir = randomCheckpoint('default-shape', SHAPE_DEFAULT, tokenizerDir, 'F16');
    label = 'default shape, random weights';
  }
  rows.push(await benchModel(dir, label, 'on'));
  rows.push(await benchModel(dir, `${label}, compare request (FIM)`, 'on', compareRequest()));
  const full = await benchModel(dir, label, 'off');
  const shape = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as object;
  full.torch = torchBaseline(shape, full.promptTokens, full.stepThreads);
  rows.push(full);
  if (!args.includes('--skip-110m')) {
    const row = await benchModel(
      randomCheckpoint('llama-110m', SHAPE_110M, fixtureTokenizer),
      'llama 110M random',
      'off',
    );
    row.torch = torchBaseline(SHAPE_110M, row.promptTokens, row.stepThreads);
    rows.push(row);
  }
  const load = os.loadavg().map((x) => x.toFixed(2));
  console.log(
    `\nK=${COUNT} candidates, up to ${NEW_TOKENS} new tokens, temperature 0.8, top-p 0.95, ` +
      `median of ${RUNS} runs after a warm-up; load average ${load.join(' ')} (1/5/15 min) on ` +
      `${os.cpus().length} cores at the end\n`,
  );
  console.log(
    '| model | params | stops | step threads | prompt tok | first token ms | total ms (all K) | ' +
      'CPU ms | prefill ms | model ms | sampling ms | decode tok/s | tokens of K x 48 | ' +
      'PyTorch (same shape) |',
  );
  console.log('|' + ' --- |'.repeat(14));
  for (const r of rows) {
    console.log(
      `| ${r.model} | ${r.params} | ${r.stops} | ${r.stepThreads} | ${r.promptTokens} | ` +
        `${r.firstTokenMs.toFixed(1)} | ${r.totalMs.toFixed(1)} | ${r.cpuMs.toFixed(0)} | ` +
        `${r.prefillMs.toFixed(1)} | ${r.modelMs.toFixed(1)} | ${r.samplingMs.toFixed(1)} | ` +
        `${r.decodeTokS.toFixed(1)} | ${r.tokens.toFixed(1)} / ${COUNT * NEW_TOKENS} | ` +
        `${r.torch ?? '-'} |`,
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
