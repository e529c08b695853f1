// Loading an adapter folder trained elsewhere through "Select adapter": the history entry of kind
// "imported", its row in the list, and the refusals of the real check (the model host's
// `checkAdapter` over the tiny Llama fixture, with the loader completions use).
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  LOAD_FOLDER_LABEL,
  appendAdapterEntry,
  adapterChoices,
  parseAdapterEntry,
  readAdapterHistory,
  type AdapterEntry,
} from '../../../src/extension/adapterHistory';
import { modelFingerprint } from '../../../src/data/modelFingerprint';
import {
  adapterFolderPath,
  describeLoadedEntry,
  importAdapter,
  type ImportDeps,
} from '../../../src/extension/adapterImport';
import type { Logger } from '../../../src/extension/log';
import { ModelHostError, type ModelHostClient } from '../../../src/extension/modelHostClient';
import { ModelService } from '../../../src/extension/modelService';
import { createGenerator } from '../../../src/generation';
import { createModelHost } from '../../../src/host/modelHost';
import type { HostTransport } from '../../../src/host/loop';
import { ModelRuntime } from '../../../src/model/runtime';
import { writeSafetensors } from '../../../src/model/safetensors';
import type { CheckAdapterResult, TypedMessage } from '../../../src/protocol/modelHost';

const FIXTURES = path.join(__dirname, '../../fixtures/model');

const imported = (extra: Partial<AdapterEntry> = {}): AdapterEntry => ({
  runId: 'cluster-dpo-7',
  algorithm: 'imported',
  time: '2026-12-05T09:30:00.000Z',
  path: '/team/adapters/cluster-dpo-7',
  modelDir: '/models/a',
  modelFingerprint: 'f00d',
  promoted: false,
  reason: 'LoRA r=4, alpha 8, q_proj (2 modules); imported, not gated',
  ...extra,
});

describe('adapter history: imported adapters', () => {
  it('reads an imported line next to the trained lines written before it existed', () => {
    const trained = {
      version: 1,
      runId: 'run-1',
      algorithm: 'ppo',
      time: '2026-12-04T18:00:00.000Z',
      path: '/runs/run-1/ppo/policy',
      modelDir: '/models/a',
      promoted: true,
      reason: 'won',
    };
    const { version: _version, ...fields } = trained;
    assert.deepStrictEqual(parseAdapterEntry(trained), fields);
    const line = { version: 1, ...imported() };
    assert.deepStrictEqual(parseAdapterEntry(line), imported());
  });

  it('refuses an imported line marked promoted, and names every allowed algorithm', () => {
    assert.strictEqual(
      parseAdapterEntry({ version: 1, ...imported(), promoted: true }),
      '"promoted" is true for an imported adapter; allowed: false (the gate never saw it)',
    );
    assert.strictEqual(
      parseAdapterEntry({ version: 1, ...imported(), algorithm: 'sft' }),
      '"algorithm" is "sft"; allowed: "ppo", "dpo", "imported"',
    );
  });

  it('lists an imported adapter with its path, as imported and not gated, before "Load…"', () => {
    const trained: AdapterEntry = {
      ...imported(),
      runId: 'run-1',
      algorithm: 'dpo',
      path: '/runs/run-1/dpo/policy',
      promoted: true,
      reason: 'won',
      time: '2026-12-04T18:00:00.000Z',
    };
    const entry = imported();
    const active = { name: 'cluster-dpo-7 imported', path: entry.path, modelDir: '/models/a' };
    const { choices } = adapterChoices([trained, entry], '/models/a', active, () => true, 'f00d');
    assert.deepStrictEqual(
      choices.map((c) => [c.label, c.active, c.target?.path ?? null, c.loadFolder ?? false]),
      [
        ['Base model', false, null, false],
        ['cluster-dpo-7 imported', true, entry.path, false],
        ['run-1 dpo', false, trained.path, false],
        [LOAD_FOLDER_LABEL, false, null, true],
      ],
    );
    assert.strictEqual(
      choices[1].description,
      'imported, not gated · 2026-12-05 09:30:00 UTC · active',
    );
    assert.strictEqual(choices[1].detail, `${entry.path} · ${entry.reason}`);
    assert.deepStrictEqual(choices[1].target, { ...active, modelFingerprint: 'f00d' });
    // Checked against other weights in the same folder: listed, but refused when chosen.
    const stale = adapterChoices([entry], '/models/a', undefined, () => true, 'beef').choices[1];
    assert.match(stale.description, /\$\(warning\) checked against earlier weights/);
    assert.match(stale.problem!, /was checked against earlier weights in \/models\/a/);
  });
});

/** A model host in this process with the real generator over `modelDir`'s weights. */
function realHost() {
  let listener: (raw: unknown) => void = () => {};
  const waiting = new Map<number, (message: TypedMessage) => void>();
  const transport: HostTransport = {
    send: (message) => {
      if (message.type === 'response') waiting.get(message.id as number)?.(message);
    },
    onMessage: (l) => (listener = l),
  };
  const generators: Array<ReturnType<typeof createGenerator>> = [];
  createModelHost(transport, async (dir) => {
    const generator = createGenerator(ModelRuntime.load(dir, { threads: 1 }));
    generators.push(generator);
    return generator;
  });
  let nextId = 1;
  const request = (method: string, params: unknown) =>
    new Promise<unknown>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, (message) => {
        if (message.ok) resolve(message.result);
        else {
          // As ModelHostClient does: the error keeps the model host's class name.
          const { name, message: text } = message.error as { name: string; message: string };
          reject(new ModelHostError(name, text));
        }
      });
      listener({ type: 'request', id, method, params });
    });
  return {
    request,
    check: (adapterPath: string, modelDir: string) =>
      request('checkAdapter', { modelDir, adapterPath }) as Promise<CheckAdapterResult>,
    dispose: async () => {
      for (const g of generators) await g.runtime.dispose();
    },
  };
}

describe('loading an adapter folder (model host check)', () => {
  let root: string;
  let model: string;
  let historyFile: string;
  let host: ReturnType<typeof realHost>;
  let deps: ImportDeps;
  before(async () => {
    // Real path: entries record the folder with symlinks resolved (os.tmpdir() may hold one).
    root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-import-')));
    model = path.join(root, 'tiny-llama');
    fs.cpSync(path.join(FIXTURES, 'tiny-llama'), model, { recursive: true });
    host = realHost();
    await host.request('load', { modelDir: model });
  });
  after(async () => {
    await host.dispose();
    fs.rmSync(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    historyFile = path.join(fs.mkdtempSync(path.join(root, 'storage-')), 'adapters.jsonl');
    deps = {
      historyFile,
      modelDir: () => model,
      check: (dir, modelDir) => host.check(dir, modelDir),
      fingerprint: modelFingerprint,
      now: () => new Date('2026-12-05T09:30:00.000Z'),
    };
  });

  /** A copy of the fixture adapter (r = 4, all seven projections of both layers), changed. */
  const adapterCopy = (name: string, change?: (dir: string) => void) => {
    const dir = path.join(root, name);
    fs.cpSync(path.join(FIXTURES, 'tiny-llama-lora'), dir, { recursive: true });
    change?.(dir);
    return dir;
  };
  const editConfig = (dir: string, edit: (config: Record<string, unknown>) => void) => {
    const file = path.join(dir, 'adapter_config.json');
    const config = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    edit(config);
    fs.writeFileSync(file, JSON.stringify(config));
  };
  const refused = async (dir: string, pattern: RegExp) => {
    const result = await importAdapter(dir, deps);
    assert.ok('problem' in result, `expected a refusal, got ${JSON.stringify(result)}`);
    assert.match(result.problem, pattern);
    assert.ok(!fs.existsSync(historyFile), 'a refusal must not write the history');
  };

  it('records a fitting folder as imported, not promoted, with the weights fingerprint', async () => {
    const dir = adapterCopy('cluster-dpo-7');
    const result = await importAdapter(`${dir}${path.sep}`, deps);
    assert.ok('entry' in result, JSON.stringify(result));
    const expected: AdapterEntry = {
      runId: 'cluster-dpo-7',
      algorithm: 'imported',
      time: '2026-12-05T09:30:00.000Z',
      path: dir,
      modelDir: model,
      modelFingerprint: modelFingerprint(model)!,
      promoted: false,
      reason:
        'LoRA r=4, alpha 8, q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj ' +
        '(14 modules); imported, not gated',
    };
    assert.deepStrictEqual(result.entry, expected);
    assert.deepStrictEqual(await readAdapterHistory(historyFile), {
      entries: [expected],
      problems: [],
    });
  });

  it('does not list a folder twice: a trained run or an earlier import is switched on as it is', async () => {
    const dir = adapterCopy('run-20261205T080000 ppo');
    const trained: AdapterEntry = {
      runId: 'run-20261205T080000',
      algorithm: 'ppo',
      time: '2026-12-05T08:00:00.000Z',
      path: dir,
      modelDir: model,
      modelFingerprint: modelFingerprint(model)!,
      promoted: true,
      reason: 'beat the previous policy',
      winRate: 0.71,
    };
    await appendAdapterEntry(historyFile, trained);
    const again = await importAdapter(dir, deps);
    assert.ok('entry' in again, JSON.stringify(again));
    assert.deepStrictEqual(again.entry, trained);
    // Said as what it is: a gated run's adapter, not an import.
    assert.strictEqual(
      describeLoadedEntry(again.entry),
      'trained by run-20261205T080000 (PPO), promoted by the promotion gate',
    );
    assert.strictEqual(
      describeLoadedEntry({ ...trained, promoted: false }),
      'trained by run-20261205T080000 (PPO), not promoted by the gate',
    );
    const imported = await importAdapter(adapterCopy('cluster-dpo-8'), deps);
    assert.ok('entry' in imported, JSON.stringify(imported));
    const twice = await importAdapter(imported.entry.path, deps);
    assert.ok('entry' in twice, JSON.stringify(twice));
    assert.deepStrictEqual(twice.entry, imported.entry);
    assert.strictEqual(describeLoadedEntry(twice.entry), 'imported, not gated');
    assert.deepStrictEqual((await readAdapterHistory(historyFile)).entries, [
      trained,
      imported.entry,
    ]);
  });

  it('does not list a folder twice through a symlink: the real path is checked and recorded', async () => {
    const dir = adapterCopy('dpo-7');
    const first = await importAdapter(dir, deps);
    assert.ok('entry' in first, JSON.stringify(first));
    const link = path.join(root, 'latest-link');
    fs.symlinkSync(dir, link);
    const viaLink = await importAdapter(link, deps);
    assert.ok('entry' in viaLink, JSON.stringify(viaLink));
    assert.deepStrictEqual(viaLink.entry, first.entry);
    assert.deepStrictEqual((await readAdapterHistory(historyFile)).entries, [first.entry]);

    // A link imported first is recorded as the folder it points to, so loading that folder
    // later, or the link once it points elsewhere, does not reuse or rename the entry.
    const other = adapterCopy('dpo-8');
    const otherLink = path.join(root, 'next-link');
    fs.symlinkSync(other, otherLink);
    const linked = await importAdapter(`${otherLink}${path.sep}`, deps);
    assert.ok('entry' in linked, JSON.stringify(linked));
    assert.strictEqual(linked.entry.path, other);
    assert.strictEqual(linked.entry.runId, 'dpo-8');
    const direct = await importAdapter(other, deps);
    assert.ok('entry' in direct, JSON.stringify(direct));
    assert.deepStrictEqual(direct.entry, linked.entry);
    assert.strictEqual((await readAdapterHistory(historyFile)).entries.length, 2);
  });

  it('takes a file: URI string (a keybinding argument), decoding its escapes', async () => {
    const dir = adapterCopy('with space ü 😀');
    const uri = `file://${dir.split(path.sep).map(encodeURIComponent).join('/')}`;
    assert.match(uri, /with%20space%20%C3%BC%20%F0%9F%98%80$/);
    assert.strictEqual(adapterFolderPath(uri), dir);
    assert.strictEqual(adapterFolderPath(dir), dir);
    const result = await importAdapter(uri, deps);
    assert.ok('entry' in result, JSON.stringify(result));
    assert.strictEqual(result.entry.path, dir);
    assert.strictEqual(result.entry.runId, 'with space ü 😀');
    const again = await importAdapter(`FILE://${dir.split(path.sep).join('/')}`, deps);
    assert.ok('entry' in again, JSON.stringify(again));
    assert.deepStrictEqual(again.entry, result.entry);
    assert.strictEqual((await readAdapterHistory(historyFile)).entries.length, 1);
    fs.rmSync(historyFile);
    if (process.platform !== 'win32') {
      await refused(
        'file://server/team/adapters/dpo-7',
        /^adapter folder "file:\/\/server\/team\/adapters\/dpo-7" is not a file: URI of a folder on this machine \(.+\); allowed: an absolute path or a file: URI \(e\.g\. file:\/\/\/team\/adapters\/dpo-7\)$/,
      );
    }
    await refused(
      'adapters/dpo-7',
      /^adapter folder "adapters\/dpo-7" is not an absolute path; allowed: an absolute path or a file: URI \(e\.g\. file:\/\/\/team\/adapters\/dpo-7\)$/,
    );
  });

  it('refuses a folder without adapter_model.safetensors or adapter_config.json', async () => {
    await refused(
      adapterCopy('no-weights', (d) => {
        fs.renameSync(path.join(d, 'adapter_model.safetensors'), path.join(d, 'adapter_model.bin'));
      }),
      /no-weights has no adapter_model\.safetensors; a PEFT adapter folder holds adapter_config\.json and adapter_model\.safetensors \(adapter_model\.bin is not read/,
    );
    await refused(
      adapterCopy('no-config', (d) => fs.rmSync(path.join(d, 'adapter_config.json'))),
      /no-config has no adapter_config\.json; a PEFT adapter folder holds/,
    );
    await refused(path.join(root, 'nowhere'), /adapter folder .*nowhere cannot be read/);
    await refused(
      path.join(adapterCopy('a-file'), 'adapter_config.json'),
      /adapter_config\.json is not a folder; allowed: a PEFT adapter folder/,
    );
    await refused('relative/adapter', /"relative\/adapter" is not an absolute path/);
  });

  it('refuses a config with unsupported PEFT features, naming the file and the key', async () => {
    const cases: Array<[string, (c: Record<string, unknown>) => void, RegExp]> = [
      [
        'dora',
        (c) => (c.use_dora = true),
        /adapter_config\.json: "use_dora" = true is not supported/,
      ],
      [
        'save',
        (c) => (c.modules_to_save = ['lm_head']),
        /adapter_config\.json: "modules_to_save" is \["lm_head"\]; full copies of modules are not supported \(allowed: null or \[\]/,
      ],
      [
        'bias',
        (c) => (c.lora_bias = true),
        /"lora_bias" = true is not supported \(allowed: false\)/,
      ],
      ['rank', (c) => (c.r = 0), /"r" must be a positive integer, got 0/],
      ['type', (c) => (c.peft_type = 'IA3'), /"peft_type" is "IA3"; only "LORA"/],
    ];
    for (const [name, edit, pattern] of cases) {
      await refused(
        adapterCopy(`config-${name}`, (d) => editConfig(d, edit)),
        new RegExp(`cannot be used with the model .*tiny-llama: .*${pattern.source}`),
      );
    }
  });

  it('refuses tensors whose shapes do not fit the model, naming the tensor', async () => {
    // r in the config differs from the tensors' rank.
    await refused(
      adapterCopy('rank-8', (d) => editConfig(d, (c) => (c.r = 8))),
      /tensor "base_model\.model\.model\.layers\.0\.mlp\.down_proj\.lora_A\.weight" has shape \[4,64\], expected \[8,64\] \(r = 8\)/,
    );
    // Trained for a model with another hidden size (48, not 32).
    await refused(
      adapterCopy('hidden-48', (d) =>
        writeSafetensors(path.join(d, 'adapter_model.safetensors'), {
          'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': {
            dtype: 'F32',
            shape: [4, 48],
            data: new Float32Array(4 * 48),
          },
          'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': {
            dtype: 'F32',
            shape: [32, 4],
            data: new Float32Array(32 * 4),
          },
        }),
      ),
      /q_proj\.lora_A\.weight" has shape \[4,48\], expected \[4,32\]/,
    );
    // A module the model does not have (a third layer).
    await refused(
      adapterCopy('layer-2', (d) =>
        writeSafetensors(path.join(d, 'adapter_model.safetensors'), {
          'base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight': {
            dtype: 'F32',
            shape: [4, 32],
            data: new Float32Array(4 * 32),
          },
        }),
      ),
      /tensor "base_model\.model\.model\.layers\.2\.self_attn\.q_proj\.lora_A\.weight" matches no LoRA module/,
    );
  });

  it('refuses when another model is loaded, or the model changes during the check', async () => {
    const dir = adapterCopy('elsewhere');
    const other = path.join(root, 'other-model');
    fs.cpSync(model, other, { recursive: true });
    // The editor switched to `other` while the model host still has tiny-llama loaded (its
    // "load" has not arrived): the host refuses, and the service says the adapter was not
    // checked rather than that it does not fit.
    const client = {
      resetCrashCount: () => undefined,
      request: (method: string, params: unknown) =>
        method === 'load'
          ? Promise.resolve({ model: 'other-model' })
          : host.request(method, params),
    } as unknown as ModelHostClient;
    const service = new ModelService(client, { error: () => undefined } as unknown as Logger);
    await service.use(other);
    deps.modelDir = () => other;
    deps.check = (adapterDir, modelDir) => service.checkAdapter(adapterDir, modelDir);
    await refused(
      dir,
      /^adapter .*elsewhere was not checked: checkAdapter: model .*other-model is not loaded \(.*tiny-llama is\)/,
    );
    let current = model;
    deps.modelDir = () => current;
    deps.check = async (adapterDir, modelDir) => {
      const summary = await host.check(adapterDir, modelDir);
      current = other;
      return summary;
    };
    await refused(dir, /the model changed to .*other-model while adapter .*elsewhere was checked/);
  });

  it('says the model failed to load, not that the adapter does not fit it', async () => {
    const broken = path.join(root, 'broken-model');
    fs.cpSync(model, broken, { recursive: true });
    const weights = path.join(broken, 'model.safetensors');
    fs.writeFileSync(weights, fs.readFileSync(weights).subarray(0, 100));
    const client = {
      resetCrashCount: () => undefined,
      request: (method: string, params: unknown) => host.request(method, params),
    } as unknown as ModelHostClient;
    const service = new ModelService(client, { error: () => undefined } as unknown as Logger);
    await assert.rejects(service.use(broken));
    deps.modelDir = () => broken;
    deps.check = (adapterDir, modelDir) => service.checkAdapter(adapterDir, modelDir);
    const result = await importAdapter(adapterCopy('fine-adapter'), deps);
    assert.ok('problem' in result, JSON.stringify(result));
    assert.match(
      result.problem,
      /^adapter .*fine-adapter was not checked: the model .*broken-model failed to load: /,
    );
    assert.doesNotMatch(result.problem, /cannot be used with/);
    assert.ok(!fs.existsSync(historyFile));
  });
});
