import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { buildTraining, EngineSession, gradients, HostTensor, Trainer } from '../../../src/engine';
import { buildTinyLlama, parameterShapes, TinyLlamaConfig } from './tinyLlama';

// Reference values from PyTorch 1.13 (scripts/fixtures/engine.py regenerates them).
const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'engine');
const TOLERANCE = 1e-4;

interface Batch {
  ids: number[][];
  positions: number[][];
  targets: number[][];
}
interface Fixture {
  config: Record<string, number | boolean>;
  adamw: {
    lr: number;
    betas: [number, number];
    eps: number;
    weight_decay: number;
    max_grad_norm: number;
    warmup_steps: number;
    total_steps: number;
    min_lr: number;
    steps: number;
  };
  params: Record<string, { shape: number[]; data: string }>;
  batch: Batch;
  loss: number;
  grads: Record<string, string>;
  trajectory: {
    batches: Batch[];
    losses: number[];
    grad_norms: number[];
    final_params: Record<string, string>;
  };
}

const f32 = (b64: string) => {
  const bytes = Buffer.from(b64, 'base64');
  return new Float32Array(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
  );
};

function configOf(f: Fixture): TinyLlamaConfig {
  const c = f.config;
  return {
    vocab: c.vocab as number,
    hidden: c.hidden as number,
    layers: c.layers as number,
    heads: c.heads as number,
    kvHeads: c.kv_heads as number,
    headDim: c.head_dim as number,
    intermediate: c.intermediate as number,
    ropeTheta: c.rope_theta as number,
    eps: c.eps as number,
    tied: c.tied as boolean,
  };
}

function batchFeeds(b: Batch): Record<string, HostTensor> {
  const t = (rows: number[][]): HostTensor => ({
    dtype: 'int64',
    shape: [rows.length, rows[0].length],
    data: BigInt64Array.from(rows.flat().map((v) => BigInt(v))),
  });
  return { ids: t(b.ids), positions: t(b.positions), targets: t(b.targets) };
}

/** Normwise relative error: max|a - b| / max|b|. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

export const parityReport: string[] = [];

for (const variant of ['tied', 'untied']) {
  describe(`engine vs PyTorch: 2-block Llama, ${variant} head`, function () {
    this.timeout(60000);
    const fixture: Fixture = JSON.parse(
      fs.readFileSync(path.join(FIXTURES, `llama2block_${variant}.json`), 'utf8'),
    );
    const config = configOf(fixture);
    const initial = (): Record<string, HostTensor> =>
      Object.fromEntries(
        Object.entries(fixture.params).map(([k, v]) => [
          k,
          { dtype: 'float32', shape: v.shape, data: f32(v.data) },
        ]),
      );

    it('loss and every parameter gradient match within 1e-4 (fp32)', async () => {
      const { graph, loss, params } = buildTinyLlama(config);
      const names = parameterShapes(config).map(([n]) => n);
      assert.deepStrictEqual(names.sort(), Object.keys(fixture.grads).sort());
      const grads = gradients(
        loss,
        names.map((n) => params.get(n)!),
      );
      graph.output('loss', loss);
      grads.forEach((d, i) => graph.output(`d.${names[i]}`, d));
      const session = await EngineSession.create(graph.build(), { threads: 1 });
      const out = await session.run({ ...batchFeeds(fixture.batch), ...initial() });
      const lossError = Math.abs(Number(out.loss.data[0]) - fixture.loss) / Math.abs(fixture.loss);
      assert.ok(lossError <= TOLERANCE, `loss ${out.loss.data[0]} vs torch ${fixture.loss}`);
      let worst = 0;
      for (const name of names) {
        const err = relativeError(out[`d.${name}`].data as Float32Array, f32(fixture.grads[name]));
        worst = Math.max(worst, err);
        assert.ok(err <= TOLERANCE, `gradient of ${name}: relative error ${err}`);
      }
      parityReport.push(
        `${variant}: loss rel err ${lossError.toExponential(2)}, max grad rel err ${worst.toExponential(2)} over ${names.length} tensors`,
      );
      await session.release();
    });

    it('AdamW with clipping and warmup + cosine: 10-step loss trajectory within 1e-4 of torch.optim.AdamW', async () => {
      const a = fixture.adamw;
      const { loss, params } = buildTinyLlama(config);
      const training = buildTraining(loss, [...params.values()], {
        optimizer: {
          kind: 'adamw',
          learningRate: a.lr,
          beta1: a.betas[0],
          beta2: a.betas[1],
          eps: a.eps,
          weightDecay: a.weight_decay,
        },
        schedule: {
          warmupSteps: a.warmup_steps,
          totalSteps: a.total_steps,
          minLearningRate: a.min_lr,
        },
        maxGradNorm: a.max_grad_norm,
      });
      const trainer = await Trainer.create(training, initial(), { threads: 1 });
      let worstLoss = 0;
      for (let t = 0; t < a.steps; t++) {
        const m = await trainer.step([batchFeeds(fixture.trajectory.batches[t])]);
        const expected = fixture.trajectory.losses[t];
        const err = Math.abs(m.loss - expected) / Math.abs(expected);
        worstLoss = Math.max(worstLoss, err);
        assert.ok(err <= TOLERANCE, `step ${t + 1}: loss ${m.loss} vs torch ${expected}`);
        const normErr =
          Math.abs(m.gradNorm - fixture.trajectory.grad_norms[t]) /
          fixture.trajectory.grad_norms[t];
        assert.ok(
          normErr <= TOLERANCE,
          `step ${t + 1}: grad norm ${m.gradNorm} vs ${fixture.trajectory.grad_norms[t]}`,
        );
      }
      let worstParam = 0;
      for (const [name, b64] of Object.entries(fixture.trajectory.final_params)) {
        const err = relativeError(trainer.parameters[name].data as Float32Array, f32(b64));
        worstParam = Math.max(worstParam, err);
        assert.ok(err <= TOLERANCE, `final ${name}: relative error ${err}`);
      }
      parityReport.push(
        `${variant}: AdamW 10-step max loss rel err ${worstLoss.toExponential(2)}, final params max rel err ${worstParam.toExponential(2)}`,
      );
      await trainer.release();
    });

    after(() => {
      if (process.env.ENGINE_PARITY_REPORT)
        for (const line of parityReport.splice(0)) process.stdout.write(line + '\n');
    });
  });
}
