import * as assert from 'assert';
import * as path from 'path';
import { EngineSession, Graph, gradients, nn, op, type HostTensor } from '../../../src/engine';
import { buildLlamaForward, declareLoraInputs, outputLogits } from '../../../src/model/llamaGraph';
import { loadPeftAdapter } from '../../../src/model/lora';
import { int64Tensor, ModelRuntime } from '../../../src/model/runtime';

const FIXTURES = path.join(__dirname, '../../fixtures/model');

describe('training graphs on buildLlamaForward', () => {
  it('differentiates sequence log-probs with respect to LoRA inputs (finite differences)', async () => {
    const runtime = ModelRuntime.load(path.join(FIXTURES, 'tiny-llama'), { threads: 1 });
    const model = runtime.model;
    const g = new Graph('lora-grad');
    const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
    const positions = g.input('positions', 'int64', ['B', 'T']);
    const keyMask = g.input('key_mask', 'int64', ['B', 'T']);
    const targets = g.input('targets', 'int64', ['B', 'T']);
    const lora = declareLoraInputs(g, model, ['q_proj', 'down_proj']);
    const { hidden } = buildLlamaForward(g, model, { inputIds, positions, keyMask, lora });
    const logprobs = nn.tokenLogprobs(outputLogits(g, model, hidden), targets); // [B, T]
    const total = op.reduceSum(logprobs);
    const b = lora.factors.get('model.layers.1.mlp.down_proj')!.b;
    const [dB] = gradients(total, [b]);
    g.output('total', total);
    g.output('dB', dB);
    const session = await EngineSession.create(g.build(), { threads: 1 });

    const adapter = loadPeftAdapter(path.join(FIXTURES, 'tiny-llama-lora'), model);
    adapter.config.targets = ['q_proj', 'down_proj'];
    const ids = [305, 100, 32, 101, 58, 10, 32, 32];
    const feeds = (delta: number): Record<string, HostTensor> => {
      const lf = runtime.loraFeeds(adapter);
      const key = 'lora.model.layers.1.mlp.down_proj.B';
      const data = Float32Array.from(lf[key].data as Float32Array);
      data[5] += delta;
      return {
        ...lf,
        [key]: { ...lf[key], data },
        input_ids: int64Tensor(ids, [1, ids.length]),
        positions: int64Tensor(
          ids.map((_, i) => i),
          [1, ids.length],
        ),
        key_mask: int64Tensor(
          ids.map(() => 1),
          [1, ids.length],
        ),
        targets: int64Tensor([...ids.slice(1), 0], [1, ids.length]),
      };
    };
    const base = await session.run(feeds(0));
    const analytic = (base.dB.data as Float32Array)[5];
    const eps = 1e-2;
    const plus = (await session.run(feeds(eps))).total.data[0] as number;
    const minus = (await session.run(feeds(-eps))).total.data[0] as number;
    const numeric = (plus - minus) / (2 * eps);
    assert.ok(Math.abs(analytic) > 1e-3, `gradient ${analytic} should not vanish`);
    assert.ok(
      Math.abs(analytic - numeric) < 2e-2 * Math.max(1, Math.abs(numeric)),
      `analytic ${analytic} vs numeric ${numeric}`,
    );
    await session.release();
    await runtime.dispose();
  });
});
