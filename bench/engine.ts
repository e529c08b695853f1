/**
 * `npm run bench:engine`: trains the same Llama-style model (RMSNorm, RoPE, grouped-query
 * attention, SwiGLU, untied head) on the same tokens with the same thread count in this engine
 * and in PyTorch (Debian python3-torch), and prints tokens/s, their ratio, peak RSS, and the
 * achieved matmul GFLOP/s against the machine's MatMul peak measured in this run.
 *
 * Options (env): BENCH_THREADS (2), BENCH_STEPS (8), BENCH_WARMUP (2), BENCH_ROUNDS (2),
 * BENCH_LAYERS (4), BENCH_HIDDEN (256), BENCH_BATCH (8), BENCH_SEQ (128), PYTHON (/usr/bin/python3),
 * BENCH_SPIN (1; 0 turns off spin-waiting in both: onnxruntime allow_spinning=0 and
 * OMP_WAIT_POLICY=PASSIVE for PyTorch, which is fairer when other processes share the cores).
 *
 * Besides wall-clock tokens/s it prints tokens per CPU-second (all threads of the process),
 * which says how much work each side does per token even when other load skews wall time.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildTraining, EngineSession, Graph, HostTensor, op, Rng, Trainer } from '../src/engine';
import {
  buildTinyLlama,
  matmulFlopsPerToken,
  parameterShapes,
  TinyLlamaConfig,
} from '../test/unit/engine/tinyLlama';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const threads = env('BENCH_THREADS', 2);
const steps = env('BENCH_STEPS', 8);
const warmup = env('BENCH_WARMUP', 2);
const rounds = env('BENCH_ROUNDS', 2);
const batch = env('BENCH_BATCH', 8);
const seq = env('BENCH_SEQ', 128);
const hidden = env('BENCH_HIDDEN', 256);
const config: TinyLlamaConfig = {
  vocab: 4096,
  hidden,
  layers: env('BENCH_LAYERS', 4),
  heads: 4,
  kvHeads: 2,
  headDim: hidden / 4,
  intermediate: Math.round((hidden * 8) / 3 / 16) * 16,
  ropeTheta: 10000,
  eps: 1e-5,
  tied: false,
};
const python = process.env.PYTHON ?? '/usr/bin/python3';
const spinWait = process.env.BENCH_SPIN !== '0';

/** fp32 MatMul GFLOP/s in onnxruntime for the model's shapes; the best is the practical peak. */
async function matmulPeak(): Promise<{ gflops: number; shape: string }> {
  const rows = batch * seq;
  const shapes: [number, number][] = [
    [hidden, config.vocab],
    [hidden, config.intermediate],
    [config.intermediate, hidden],
    [hidden, hidden],
  ];
  let best = { gflops: 0, shape: '' };
  const rng = new Rng(1);
  for (const [k, n] of shapes) {
    const g = new Graph('matmul-peak');
    const x = g.input('x', 'float32', [rows, k]);
    const w = g.input('w', 'float32', [k, n]);
    g.output('y', op.matMul(x, w));
    const session = await EngineSession.create(g.build(), { threads, spinWait });
    const feeds: Record<string, HostTensor> = {
      x: { dtype: 'float32', shape: [rows, k], data: rng.normalArray(rows * k) },
      w: { dtype: 'float32', shape: [k, n], data: rng.normalArray(k * n) },
    };
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const reps = Math.max(5, Math.round(4e9 / (2 * rows * k * n)));
    const start = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) await session.run(feeds);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const gflops = (2 * rows * k * n * reps) / seconds / 1e9;
    if (gflops > best.gflops) best = { gflops, shape: `[${rows}x${k}]@[${k}x${n}]` };
    await session.release();
  }
  return best;
}

/** A learnable token stream: mostly x[i+1] = (5 x[i] + 3) mod V, with 10% noise. */
function makeTokens(count: number): BigInt64Array {
  const rng = new Rng(42);
  const out = new BigInt64Array(count * batch * (seq + 1));
  for (let r = 0; r < count * batch; r++) {
    let t = rng.int(config.vocab);
    for (let i = 0; i <= seq; i++) {
      out[r * (seq + 1) + i] = BigInt(t);
      t = rng.uniform() < 0.1 ? rng.int(config.vocab) : (5 * t + 3) % config.vocab;
    }
  }
  return out;
}

function batchFeeds(tokens: BigInt64Array, index: number): Record<string, HostTensor> {
  const ids = new BigInt64Array(batch * seq);
  const targets = new BigInt64Array(batch * seq);
  const positions = new BigInt64Array(batch * seq);
  const base = index * batch * (seq + 1);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < seq; i++) {
      ids[b * seq + i] = tokens[base + b * (seq + 1) + i];
      targets[b * seq + i] = tokens[base + b * (seq + 1) + i + 1];
      positions[b * seq + i] = BigInt(i);
    }
  }
  const shape = [batch, seq];
  return {
    ids: { dtype: 'int64', shape, data: ids },
    targets: { dtype: 'int64', shape, data: targets },
    positions: { dtype: 'int64', shape, data: positions },
  };
}

interface SideResult {
  tokensPerSecond: number;
  tokensPerCpuSecond: number;
  firstLoss: number;
  lastLoss: number;
}

async function engineRun(
  tokens: BigInt64Array,
  batches: number,
): Promise<SideResult & { setupSeconds: number }> {
  const setup = process.hrtime.bigint();
  const { loss, params } = buildTinyLlama(config);
  const training = buildTraining(loss, [...params.values()], {
    optimizer: { kind: 'adamw', learningRate: 1e-3, beta1: 0.9, beta2: 0.95, weightDecay: 0.1 },
    maxGradNorm: 1,
  });
  const rng = new Rng(0);
  const initial: Record<string, HostTensor> = {};
  for (const [name, shape] of parameterShapes(config)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data =
      shape.length === 1
        ? Float32Array.from({ length: size }, () => 1 + 0.1 * rng.normal())
        : rng.normalArray(size, 0.02);
    initial[name] = { dtype: 'float32', shape, data };
  }
  const trainer = await Trainer.create(training, initial, { threads, spinWait }, undefined, {
    reuseBuffers: true,
  });
  const setupSeconds = Number(process.hrtime.bigint() - setup) / 1e9;
  for (let i = 0; i < warmup; i++) await trainer.step([batchFeeds(tokens, i % batches)]);
  const losses: number[] = [];
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < steps; i++)
    losses.push((await trainer.step([batchFeeds(tokens, (warmup + i) % batches)])).loss);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  await trainer.release();
  return {
    tokensPerSecond: (batch * seq * steps) / seconds,
    tokensPerCpuSecond: (batch * seq * steps) / ((cpu.user + cpu.system) / 1e6),
    firstLoss: losses[0],
    lastLoss: losses[losses.length - 1],
    setupSeconds,
  };
}

function torchAvailable(): string | null {
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], {
    encoding: 'utf8',
  });
  return r.status === 0 ? r.stdout.trim() : null;
}

function torchRun(dir: string): SideResult & { peakRssMb: number } {
  const out = execFileSync(
    python,
    [
      path.join(__dirname, 'engine_torch.py'),
      path.join(dir, 'config.json'),
      path.join(dir, 'tokens.bin'),
      String(threads),
      String(warmup),
      String(steps),
    ],
    {
      encoding: 'utf8',
      env: {
        ...process.env,
        OMP_NUM_THREADS: String(threads),
        ...(spinWait ? {} : { OMP_WAIT_POLICY: 'PASSIVE' }),
      },
    },
  );
  const r = JSON.parse(out.trim().split('\n').pop()!);
  return {
    tokensPerSecond: r.tokens_per_second,
    tokensPerCpuSecond: r.tokens_per_cpu_second,
    firstLoss: r.first_loss,
    lastLoss: r.last_loss,
    peakRssMb: r.peak_rss_mb,
  };
}

async function main(): Promise<void> {
  const params = parameterShapes(config).reduce(
    (s, [, shape]) => s + shape.reduce((a, b) => a * b, 1),
    0,
  );
  console.log(
    `bench:engine  d_model ${config.hidden}, ${config.layers} blocks, heads ${config.heads}/${config.kvHeads} (GQA), ` +
      `mlp ${config.intermediate}, vocab ${config.vocab}, ${(params / 1e6).toFixed(2)}M params, batch ${batch} x ${seq}, ` +
      `${threads} threads, ${steps} timed steps after ${warmup} warmup, best of ${rounds} rounds`,
  );
  console.log(
    `machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  let peak = await matmulPeak();
  const batches = warmup + steps;
  const tokens = makeTokens(batches);
  const torchVersion = torchAvailable();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-engine-'));
  if (torchVersion) {
    fs.writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({
        vocab: config.vocab,
        hidden: config.hidden,
        layers: config.layers,
        heads: config.heads,
        kv_heads: config.kvHeads,
        head_dim: config.headDim,
        intermediate: config.intermediate,
        rope_theta: config.ropeTheta,
        eps: config.eps,
        batch,
        seq,
        ignore_index: -100,
        tied: config.tied,
      }),
    );
    fs.writeFileSync(path.join(dir, 'tokens.bin'), Buffer.from(tokens.buffer));
  } else {
    console.log(
      `PyTorch not found for ${python}: install it with "sudo apt-get install python3-torch libopenblas0-openmp" (Debian), or set PYTHON.`,
    );
  }
  let engine: Awaited<ReturnType<typeof engineRun>> | null = null;
  let torch: ReturnType<typeof torchRun> | null = null;
  for (let r = 0; r < rounds; r++) {
    const e = await engineRun(tokens, batches);
    if (!engine || e.tokensPerSecond > engine.tokensPerSecond) engine = e;
    let line = `round ${r + 1}: engine ${e.tokensPerSecond.toFixed(0)} tok/s (${e.tokensPerCpuSecond.toFixed(0)} per CPU-s)`;
    if (torchVersion) {
      const t = torchRun(dir);
      if (!torch || t.tokensPerSecond > torch.tokensPerSecond) torch = t;
      line += `, torch ${t.tokensPerSecond.toFixed(0)} tok/s (${t.tokensPerCpuSecond.toFixed(0)} per CPU-s)`;
      line += `, ratio ${(e.tokensPerSecond / t.tokensPerSecond).toFixed(2)}`;
    }
    console.log(line);
  }
  fs.rmSync(dir, { recursive: true });
  // Measured again after training: under shared load the best of both is the fairer peak.
  const peakAfter = await matmulPeak();
  if (peakAfter.gflops > peak.gflops) peak = peakAfter;
  const e = engine!;
  const flopsPerToken = 3 * matmulFlopsPerToken(config, seq); // forward + backward (2x)
  const gflops = (tokensPerSecond: number) => {
    const achieved = (flopsPerToken * tokensPerSecond) / 1e9;
    return `${achieved.toFixed(1)} (${((100 * achieved) / peak.gflops).toFixed(0)}% of peak)`;
  };
  const engineRssMb = process.resourceUsage().maxRSS / 1024;
  const rows: string[][] = [
    [
      '',
      'engine (onnxruntime-node)',
      torchVersion ? `PyTorch ${torchVersion}` : 'PyTorch (not installed)',
    ],
    [
      'tokens/s (best round)',
      e.tokensPerSecond.toFixed(0),
      torch ? torch.tokensPerSecond.toFixed(0) : '-',
    ],
    [
      'ratio engine / torch',
      torch ? (e.tokensPerSecond / torch.tokensPerSecond).toFixed(2) : '-',
      '',
    ],
    [
      'tokens per CPU-second',
      e.tokensPerCpuSecond.toFixed(0),
      torch ? torch.tokensPerCpuSecond.toFixed(0) : '-',
    ],
    ['peak RSS (MB)', engineRssMb.toFixed(0), torch ? torch.peakRssMb.toFixed(0) : '-'],
    [
      'achieved matmul GFLOP/s',
      gflops(e.tokensPerSecond),
      torch ? gflops(torch.tokensPerSecond) : '-',
    ],
    [
      'loss at first -> last timed step',
      `${e.firstLoss.toFixed(3)} -> ${e.lastLoss.toFixed(3)}`,
      torch ? `${torch.firstLoss.toFixed(3)} -> ${torch.lastLoss.toFixed(3)}` : '-',
    ],
    ['graph build + session setup (s)', e.setupSeconds.toFixed(2), ''],
  ];
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)));
  console.log(
    `MatMul peak measured now (onnxruntime fp32, ${threads} threads, best of the model's shapes): ` +
      `${peak.gflops.toFixed(1)} GFLOP/s at ${peak.shape}; spin-wait ${spinWait ? 'on' : 'off'}`,
  );
  for (const r of rows)
    console.log(`| ${r.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`);
  const load = os.loadavg()[0];
  if (load > os.cpus().length) {
    console.log(
      `warning: load average ${load.toFixed(1)} on ${os.cpus().length} cores: other processes share the CPU, so ` +
        'wall-clock figures depend on scheduling (spinning thread pools suffer most); compare tokens per ' +
        'CPU-second, run with BENCH_SPIN=0, or rerun on an idle machine.',
    );
  }
  console.log(
    'GFLOP/s counts model matmuls only (3x forward per token: forward + backward). Engine RSS is the ' +
      'whole bench process (tsx, the MatMul probe, all rounds); torch RSS is its own process.',
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
