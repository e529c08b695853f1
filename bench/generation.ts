/**
 * `npm run bench:generation`: time to K = 4 candidates of up to 48 new tokens (prefill, time to
 * first token, decode tokens/s) for the tiny fixture, for models/default when it exists, and for
 * a 110M-parameter Llama config with random weights, against PyTorch on the same shape in the
 * same run (when /usr/bin/python3 has torch).
 *
 * Options: --runs N (default 7), --threads N (default 2), --skip-110m.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadGenerator } from '../src/generation';
import type { CompletionRequest } from '../src/generation/api';
import { Rng } from '../src/model/random';
import { writeSafetensorsStreaming, type LazyTensor } from '../src/model/safetensors';

const ROOT = path.join(__dirname, '..');
const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const RUNS = option('runs', 7);
const THREADS = option('threads', 2);
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
  promptTokens: number;
  firstTokenMs: number;
  totalMs: number;
  /** CPU time of this process per request (all threads): less sensitive to other load. */
  cpuMs: number;
  decodeTokS: number;
  tokens: number;
  torch?: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function benchModel(dir: string, label: string): Promise<Row> {
  const generator = await loadGenerator(dir, { threads: THREADS });
  const config = generator.runtime.model.config;
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
  };
  await generator.completeDetailed(request); // warm-up: first-run allocations
  const first: number[] = [];
  const total: number[] = [];
  const cpu: number[] = [];
  const rates: number[] = [];
  let tokens = 0;
  let promptTokens = 0;
  for (let run = 0; run < RUNS; run++) {
    const started = performance.now();
    const cpuStart = process.cpuUsage();
    const result = await generator.completeDetailed({ ...request, seed: run + 1 });
    total.push(performance.now() - started);
    const used = process.cpuUsage(cpuStart);
    cpu.push((used.user + used.system) / 1000);
    first.push(result.timings.firstTokenMs);
    const generated = result.candidates.reduce((a, c) => a + c.tokenIds.length, 0);
    tokens += generated;
    promptTokens = result.promptIds.length;
    // Decode steps after the prefill; each step produces one token per live candidate.
    rates.push((generated - COUNT) / (result.timings.decodeMs / 1000));
  }
  await generator.dispose();
  return {
    model: label,
    params: `${(countParams(config) / 1e6).toFixed(2)}M`,
    promptTokens,
    firstTokenMs: median(first),
    totalMs: median(total),
    cpuMs: median(cpu),
    decodeTokS: median(rates),
    tokens: Math.round(tokens / RUNS),
  };
}

function countParams(c: {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  tieWordEmbeddings: boolean;
}): number {
  const attention = c.hiddenSize * c.headDim * (2 * c.numHeads + 2 * c.numKvHeads);
  const mlp = 3 * c.hiddenSize * c.intermediateSize;
  const embed = c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2);
  return embed + c.numLayers * (attention + mlp + 2 * c.hiddenSize) + c.hiddenSize;
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

function torchBaseline(promptTokens: number): string {
  const script = path.join(__dirname, 'generation_torch.py');
  const result = spawnSync(
    '/usr/bin/python3',
    [
      script,
      JSON.stringify(SHAPE_110M),
      String(promptTokens),
      String(COUNT),
      String(NEW_TOKENS),
      String(THREADS),
    ],
    { encoding: 'utf8', timeout: 600_000 },
  );
  if (result.status !== 0) {
    return `unavailable (${(result.stderr || result.error?.message || '').trim().split('\n').pop()})`;
  }
  const parsed = JSON.parse(result.stdout.trim().split('\n').pop() as string);
  return `${parsed.decode_tok_s.toFixed(1)} tok/s decode, ${parsed.prefill_ms.toFixed(1)} ms prefill (torch ${parsed.torch})`;
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
    await benchModel(path.join(ROOT, 'test/fixtures/model/tiny-llama'), 'fixture tiny-llama'),
  );
  const defaultDir = path.join(ROOT, 'models/default');
  const fixtureTokenizer = path.join(ROOT, 'test/fixtures/model/tiny-llama');
  if (fs.existsSync(path.join(defaultDir, 'config.json'))) {
    rows.push(await benchModel(defaultDir, 'models/default'));
  } else {
    // Until the trained model lands, time its shape with random weights.
    const tokenizerDir = fs.existsSync(path.join(defaultDir, 'tokenizer.json'))
      ? defaultDir
      : fixtureTokenizer;
    // pretrain exports F16 weights, as here.
    const dir = randomCheckpoint('default-shape', SHAPE_DEFAULT, tokenizerDir, 'F16');
    rows.push(await benchModel(dir, 'default shape, random weights'));
  }
  if (!args.includes('--skip-110m')) {
    const dir = randomCheckpoint('llama-110m', SHAPE_110M, fixtureTokenizer);
    const row = await benchModel(dir, 'llama 110M random');
    row.torch = torchBaseline(row.promptTokens);
    rows.push(row);
  }
  const load = os.loadavg()[0].toFixed(1);
  console.log(
    `\nK=${COUNT} candidates, up to ${NEW_TOKENS} new tokens, ${THREADS} threads, median of ${RUNS} runs, load average ${load} on ${os.cpus().length} cores\n`,
  );
  console.log(
    '| model | params | prompt tok | first token ms | total ms (all K) | CPU ms | decode tok/s | tokens | PyTorch (same shape) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(
      `| ${r.model} | ${r.params} | ${r.promptTokens} | ${r.firstTokenMs.toFixed(1)} | ` +
        `${r.totalMs.toFixed(1)} | ${r.cpuMs.toFixed(0)} | ${r.decodeTokS.toFixed(1)} | ${r.tokens} | ${r.torch ?? '-'} |`,
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
