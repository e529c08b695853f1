// What loadPeftAdapter refuses in a PEFT folder written elsewhere: a scale no trainer would
// produce, factors that are not finite, two tensors for one factor, and hand-edited booleans.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadPeftAdapter, loraScale, MAX_LORA_SCALE } from '../../../src/model/lora';
import { ModelRuntime } from '../../../src/model/runtime';
import {
  readSafetensorsHeader,
  readTensorF32,
  writeSafetensors,
  type TensorToWrite,
} from '../../../src/model/safetensors';

const FIXTURES = path.join(__dirname, '../../fixtures/model');
const ADAPTER = path.join(FIXTURES, 'tiny-llama-lora');
const Q_A = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('loading a PEFT adapter: values the trainers would never write', () => {
  let runtime: ModelRuntime;
  let root: string;
  let n = 0;
  before(() => {
    runtime = ModelRuntime.load(path.join(FIXTURES, 'tiny-llama'), { threads: 1 });
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'lora-load-'));
  });
  after(async () => {
    await runtime.dispose();
    fs.rmSync(root, { recursive: true, force: true });
  });

  /** A copy of the fixture adapter (r = 4) with `configText` as its adapter_config.json. */
  const withConfig = (configText: string) => {
    const dir = path.join(root, `config-${n++}`);
    fs.cpSync(ADAPTER, dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'adapter_config.json'), configText);
    return dir;
  };
  const config = (changes: Record<string, unknown>) => {
    const base = JSON.parse(fs.readFileSync(path.join(ADAPTER, 'adapter_config.json'), 'utf8'));
    return withConfig(JSON.stringify({ ...base, ...changes }));
  };
  /** A copy of the fixture adapter whose tensors `edit` rewrites. */
  const withTensors = (
    edit: (t: Record<string, TensorToWrite>) => Record<string, TensorToWrite>,
  ) => {
    const dir = path.join(root, `tensors-${n++}`);
    fs.cpSync(ADAPTER, dir, { recursive: true });
    const header = readSafetensorsHeader(path.join(ADAPTER, 'adapter_model.safetensors'));
    const tensors: Record<string, TensorToWrite> = {};
    for (const [key, entry] of header.tensors) {
      tensors[key] = { dtype: 'F32', shape: entry.shape, data: readTensorF32(header, key) };
    }
    writeSafetensors(path.join(dir, 'adapter_model.safetensors'), edit(tensors));
    return dir;
  };

  it("refuses a lora_alpha whose scale is past the trainers' limit, naming the range", () => {
    assert.strictEqual(MAX_LORA_SCALE, 1024);
    for (const alpha of [1e30, 1e6, 4097]) {
      const dir = config({ lora_alpha: alpha });
      assert.throws(
        () => loadPeftAdapter(dir, runtime.model),
        (error: Error) => {
          assert.strictEqual(
            error.message,
            `${path.join(dir, 'adapter_config.json')}: "lora_alpha" is ${alpha}, a LoRA scale ` +
              `of ${alpha / 4} (lora_alpha / r) with r = 4; allowed: a scale above 0 and at ` +
              'most 1024, i.e. lora_alpha in (0, 4096] for this r',
          );
          return true;
        },
      );
    }
    // rsLoRA divides by sqrt(r) = 2: lora_alpha 2048 is the limit.
    assert.throws(
      () => loadPeftAdapter(config({ lora_alpha: 2049, use_rslora: true }), runtime.model),
      /"lora_alpha" is 2049, a LoRA scale of 1024\.5 \(lora_alpha \/ sqrt\(r\), use_rslora\) with r = 4; allowed: .*lora_alpha in \(0, 2048\] for this r/,
    );
    // JSON's 1e999 parses to Infinity.
    assert.throws(
      () =>
        loadPeftAdapter(
          withConfig('{"peft_type": "LORA", "r": 4, "lora_alpha": 1e999}'),
          runtime.model,
        ),
      /adapter_config\.json: "lora_alpha" is Infinity, a LoRA scale of Infinity/,
    );
    // Usual PEFT settings and the limit itself load, with the scale they say.
    for (const [alpha, rslora, scale] of [
      [16, false, 4],
      [512, false, 128],
      [4096, false, 1024],
      [2048, true, 1024],
    ] as const) {
      const adapter = loadPeftAdapter(
        config({ lora_alpha: alpha, use_rslora: rslora }),
        runtime.model,
      );
      assert.strictEqual(loraScale(adapter.config), scale);
    }
  });

  it('refuses a factor holding NaN or Infinity, naming the tensor', () => {
    for (const bad of [NaN, Infinity]) {
      const dir = withTensors((t) => {
        const data = Float32Array.from(t[Q_A].data as Float32Array);
        data[5] = bad;
        return { ...t, [Q_A]: { ...t[Q_A], data } };
      });
      assert.throws(
        () => loadPeftAdapter(dir, runtime.model),
        new RegExp(`tensor "${escape(Q_A)}" holds ${bad} at \\[5\\]; LoRA factors must be finite`),
      );
    }
  });

  it('refuses two tensors for one module and factor, naming both keys', () => {
    const twoNames = withTensors((t) => {
      const out: Record<string, TensorToWrite> = {};
      for (const [key, tensor] of Object.entries(t)) {
        out[key.replace(/\.weight$/, '.default.weight')] = tensor;
        out[key.replace(/\.weight$/, '.other.weight')] = tensor;
      }
      return out;
    });
    assert.throws(
      () => loadPeftAdapter(twoNames, runtime.model),
      /tensors "base_model\.model\.model\.layers\.0\.mlp\.down_proj\.lora_A\.default\.weight" and "base_model\.model\.model\.layers\.0\.mlp\.down_proj\.lora_A\.other\.weight" are both lora_A of model\.layers\.0\.mlp\.down_proj; allowed: one tensor per module and factor/,
    );
    const twoPrefixes = withTensors((t) => ({ ...t, [`base_model.model.${Q_A}`]: t[Q_A] }));
    assert.throws(
      () => loadPeftAdapter(twoPrefixes, runtime.model),
      new RegExp(
        `tensors "(base_model\\.model\\.)?${escape(Q_A)}" and ` +
          `"(base_model\\.model\\.)?${escape(Q_A)}" are both lora_A of ` +
          'model\\.layers\\.0\\.self_attn\\.q_proj;',
      ),
    );
  });

  it('reads use_rslora, use_dora, fan_in_fan_out and lora_bias as JSON booleans only', () => {
    for (const [key, value] of [
      ['use_rslora', 'true'],
      ['use_rslora', 1],
      ['fan_in_fan_out', 'true'],
      ['use_dora', 'yes'],
      ['lora_bias', 'false'],
    ] as const) {
      assert.throws(
        () => loadPeftAdapter(config({ [key]: value }), runtime.model),
        (error: Error) => {
          assert.match(
            error.message,
            new RegExp(
              `adapter_config\\.json: "${key}" is ${escape(JSON.stringify(value))}; ` +
                'allowed: true, false or null \\(a JSON boolean, not a string or number\\)$',
            ),
          );
          return true;
        },
      );
    }
    // Absent and null are PEFT's default, false.
    const nulls = loadPeftAdapter(
      config({ use_rslora: null, use_dora: null, fan_in_fan_out: null, lora_bias: null }),
      runtime.model,
    );
    assert.strictEqual(nulls.config.useRslora, false);
    assert.strictEqual(
      loadPeftAdapter(config({ use_rslora: true }), runtime.model).config.useRslora,
      true,
    );
  });
});
