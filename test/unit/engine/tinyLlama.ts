/**
 * A Llama-style decoder built on the engine, parameter for parameter the model of
 * scripts/fixtures/engine.py (which computes the PyTorch reference). Shared by the parity test
 * and bench/engine.ts; the product's Llama graphs live in src/model.
 */
import { DType, Graph, nn, op, Tensor } from '../../../src/engine';

export interface TinyLlamaConfig {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  ropeTheta: number;
  eps: number;
  tied: boolean;
}

/** Parameter names and shapes in the fixture's order (HF layout: linear weights are [out, in]). */
export function parameterShapes(c: TinyLlamaConfig): [string, number[]][] {
  const shapes: [string, number[]][] = [['embed', [c.vocab, c.hidden]]];
  for (let i = 0; i < c.layers; i++) {
    const p = `layers.${i}.`;
    shapes.push(
      [p + 'input_norm', [c.hidden]],
      [p + 'q', [c.heads * c.headDim, c.hidden]],
      [p + 'k', [c.kvHeads * c.headDim, c.hidden]],
      [p + 'v', [c.kvHeads * c.headDim, c.hidden]],
      [p + 'o', [c.hidden, c.heads * c.headDim]],
      [p + 'post_norm', [c.hidden]],
      [p + 'gate', [c.intermediate, c.hidden]],
      [p + 'up', [c.intermediate, c.hidden]],
      [p + 'down', [c.hidden, c.intermediate]],
    );
  }
  shapes.push(['norm', [c.hidden]]);
  if (!c.tied) shapes.push(['lm_head', [c.vocab, c.hidden]]);
  return shapes;
}

/** Multiply-adds of one forward token through the matmuls (for GFLOP/s accounting). */
export function matmulFlopsPerToken(c: TinyLlamaConfig, seq: number): number {
  const attnProj = c.hidden * (2 * c.heads * c.headDim + 2 * c.kvHeads * c.headDim);
  const mlp = 3 * c.hidden * c.intermediate;
  // Scores and weighted values: causal, so on average seq/2 keys per query (full T counted,
  // as the kernels compute the whole square).
  const attention = 2 * c.heads * c.headDim * seq;
  return 2 * (c.layers * (attnProj + mlp + attention) + c.hidden * c.vocab);
}

export function buildTinyLlama(c: TinyLlamaConfig, dtype: DType = 'float32') {
  const g = new Graph(`tiny-llama-${c.tied ? 'tied' : 'untied'}`);
  const ids = g.input('ids', 'int64', ['B', 'T']);
  const positions = g.input('positions', 'int64', ['B', 'T']);
  const targets = g.input('targets', 'int64', ['B', 'T']);
  const params = new Map<string, Tensor>();
  for (const [name, shape] of parameterShapes(c)) params.set(name, g.input(name, dtype, shape));
  const p = (name: string) => params.get(name)!;
  const { heads: H, kvHeads: KV, headDim: D } = c;

  let x = nn.embedding(p('embed'), ids); // [B, T, C]
  const rope = nn.ropeTables(positions, D, { theta: c.ropeTheta, dtype });
  const heads = (t: Tensor, n: number) =>
    op.transpose(op.reshape(t, ['B', 'T', n, D]), [0, 2, 1, 3]); // [B, n, T, D]
  for (let i = 0; i < c.layers; i++) {
    const l = `layers.${i}.`;
    const h = nn.rmsNorm(x, p(l + 'input_norm'), c.eps);
    const q = nn.applyRope(heads(nn.linear(h, p(l + 'q')), H), rope);
    const k = nn.applyRope(heads(nn.linear(h, p(l + 'k')), KV), rope);
    const v = heads(nn.linear(h, p(l + 'v')), KV);
    const attn = nn.attention(q, k, v, { causal: true }); // [B, H, T, D]
    const merged = op.reshape(op.transpose(attn, [0, 2, 1, 3]), ['B', 'T', H * D]); // [B, T, H*D]
    x = op.add(x, nn.linear(merged, p(l + 'o')));
    const h2 = nn.rmsNorm(x, p(l + 'post_norm'), c.eps);
    const mlp = nn.swiGlu(nn.linear(h2, p(l + 'gate')), nn.linear(h2, p(l + 'up')));
    x = op.add(x, nn.linear(mlp, p(l + 'down')));
  }
  x = nn.rmsNorm(x, p('norm'), c.eps);
  const logits = nn.linear(x, c.tied ? p('embed') : p('lm_head')); // [B, T, V]
  const loss = nn.crossEntropy(logits, targets, { ignoreIndex: -100 });
  return { graph: g, loss, params, logits };
}
