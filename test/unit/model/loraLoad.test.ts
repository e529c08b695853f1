// What loadPeftAdapter refuses in a PEFT folder written elsewhere: hand-edited booleans.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadPeftAdapter } from '../../../src/model/lora';
import { ModelRuntime } from '../../../src/model/runtime';

const FIXTURES = path.join(__dirname, '../../fixtures/model');
const ADAPTER = path.join(FIXTURES, 'tiny-llama-lora');
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
