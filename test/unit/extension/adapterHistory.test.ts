import * as assert from 'assert';
import { fork } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  LOAD_FOLDER_LABEL,
  adapterChoices,
  appendAdapterEntry,
  readAdapterHistory,
  restorableAdapter,
  type AdapterEntry,
} from '../../../src/extension/adapterHistory';

const entry = (i: number, extra: Partial<AdapterEntry> = {}): AdapterEntry => ({
  runId: `run-${i}`,
  algorithm: i % 2 ? 'dpo' : 'ppo',
  time: `2026-12-04T18:0${i}:00.000Z`,
  path: `/runs/run-${i}/${i % 2 ? 'dpo' : 'ppo'}/policy`,
  modelDir: '/models/a',
  promoted: i % 2 === 0,
  reason: `reason ${i}`,
  ...extra,
});

describe('adapter history', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-history-'));
    file = path.join(dir, 'training', 'adapters.jsonl');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is empty when the file does not exist, and keeps every appended entry in order', async () => {
    assert.deepStrictEqual(await readAdapterHistory(file), { entries: [], problems: [] });
    const withNumbers = entry(0, {
      winRate: 0.8125,
      winRateLow: 0.647,
      winRateHigh: 0.911,
      comparisons: 32,
      meanKl: 1.5,
    });
    await appendAdapterEntry(file, withNumbers);
    await appendAdapterEntry(file, entry(1));
    assert.deepStrictEqual(await readAdapterHistory(file), {
      entries: [withNumbers, entry(1)],
      problems: [],
    });
    assert.ok(!fs.existsSync(`${file}.lock`), 'lock file left behind');
  });

  it('skips corrupt and invalid lines with their line numbers, never losing the others', async () => {
    await appendAdapterEntry(file, entry(0));
    fs.appendFileSync(file, '{"version":1,"runId":"run-x"\n'); // torn JSON
    fs.appendFileSync(file, `${JSON.stringify({ ...entry(5), version: 1, algorithm: 'sft' })}\n`);
    fs.appendFileSync(file, `${JSON.stringify({ ...entry(6), version: 1, path: '' })}\n`);
    fs.appendFileSync(file, `${JSON.stringify({ ...entry(7), version: 9 })}\n`);
    fs.appendFileSync(file, `${JSON.stringify({ ...entry(8), version: 1, winRate: '80%' })}\n`);
    fs.appendFileSync(file, Buffer.from([0xff, 0xfe, 0x0a])); // not UTF-8
    fs.appendFileSync(file, '\n[1,2]\n');
    await appendAdapterEntry(file, entry(2));
    const bytesBefore = fs.readFileSync(file);
    const { entries, problems } = await readAdapterHistory(file);
    assert.deepStrictEqual(entries, [entry(0), entry(2)]);
    assert.match(problems[0], /adapters\.jsonl:2: not valid JSON \(.*\); line skipped$/);
    assert.deepStrictEqual(
      problems.slice(1).map((p) => p.replace(file, 'F')),
      [
        'F:3: "algorithm" is "sft"; allowed: "ppo", "dpo", "imported"; line skipped',
        'F:4: "path" is ""; allowed: a non-empty string; line skipped',
        'F:5: "version" is 9; allowed: 1; line skipped',
        'F:6: "winRate" is "80%"; allowed: a number or absent; line skipped',
        'F:7: not valid UTF-8; line skipped',
        'F:9: expected a JSON object, got [1,2]; line skipped',
      ],
    );
    // Reading never rewrites the file: the bad lines stay for a person to look at.
    assert.deepStrictEqual(fs.readFileSync(file), bytesBefore);
  });

  it('starts a new line after a last line torn by a crash', async () => {
    await appendAdapterEntry(file, entry(0));
    fs.appendFileSync(file, '{"version":1,"runId":"run-torn","alg');
    await appendAdapterEntry(file, entry(1));
    const { entries, problems } = await readAdapterHistory(file);
    assert.deepStrictEqual(entries, [entry(0), entry(1)]);
    assert.strictEqual(problems.length, 1);
    assert.match(problems[0], /:2: not valid JSON/);
  });

  it('refuses to append an invalid entry, naming the field', async () => {
    await assert.rejects(
      appendAdapterEntry(file, { ...entry(0), algorithm: 'sft' as 'ppo' }),
      /adapter history entry: "algorithm" is "sft"; allowed: "ppo", "dpo"/,
    );
    assert.ok(!fs.existsSync(file));
  });

  it('keeps every entry when two processes append at the same time', async function () {
    this.timeout(60_000);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const script = path.join(dir, 'append.ts');
    const modulePath = path.join(__dirname, '../../../src/extension/adapterHistory.ts');
    fs.writeFileSync(
      script,
      `import { appendAdapterEntry } from ${JSON.stringify(modulePath)};
const [file, tag] = process.argv.slice(2);
(async () => {
  await Promise.all(Array.from({ length: 25 }, (_, i) => appendAdapterEntry(file, {
    runId: 'run-' + tag + '-' + i, algorithm: 'ppo', time: new Date().toISOString(),
    path: '/runs/' + tag + '/' + i + '/' + 'x'.repeat(5000), modelDir: '/m', promoted: false,
    reason: 'r',
  })));
})().catch((e) => { console.error(e); process.exit(1); });
`,
    );
    const run = (tag: string) =>
      new Promise<number>((resolve) => {
        const child = fork(script, [file, tag], { execArgv: ['--import', 'tsx'] });
        child.on('exit', (code) => resolve(code ?? 1));
      });
    assert.deepStrictEqual(await Promise.all([run('a'), run('b')]), [0, 0]);
    const { entries, problems } = await readAdapterHistory(file);
    assert.deepStrictEqual(problems, []);
    assert.strictEqual(entries.length, 50);
    assert.strictEqual(new Set(entries.map((e) => e.runId)).size, 50);
  });
});

describe('adapter choice', () => {
  const weights = (e: AdapterEntry) => path.join(e.path, 'adapter_model.safetensors');

  it('lists the base model, then this model adapters newest first, with numbers and state', () => {
    const a = entry(0, { winRate: 0.8125, winRateLow: 0.647, winRateHigh: 0.911, comparisons: 32 });
    const b = entry(1, { meanKl: 2.5 });
    const other = entry(2, { modelDir: '/models/b' });
    const present = new Set([weights(a), weights(b)]);
    const active = { name: 'run-0 ppo', path: a.path, modelDir: '/models/a' };
    const { choices, otherModels } = adapterChoices([a, b, other], '/models/a', active, (f) =>
      present.has(f),
    );
    assert.strictEqual(otherModels, 1);
    assert.deepStrictEqual(
      choices.map((c) => [c.label, c.active, c.target?.path ?? null]),
      [
        ['Base model', false, null],
        ['run-1 dpo', false, b.path],
        ['run-0 ppo', true, a.path],
        [LOAD_FOLDER_LABEL, false, null],
      ],
    );
    assert.strictEqual(choices[2].description, 'PPO · 2026-12-04 18:00:00 UTC · active');
    assert.strictEqual(
      choices[2].detail,
      'win rate 81.3% [95% CI 64.7%-91.1%], n=32 · promoted: reason 0',
    );
    assert.strictEqual(choices[1].detail, 'KL 2.500 · not promoted: reason 1');
    assert.strictEqual(choices[0].description, 'no adapter');
  });

  it('marks an adapter whose files are gone so that choosing it warns and changes nothing', () => {
    const a = entry(0);
    const { choices } = adapterChoices([a], '/models/a', undefined, () => false);
    assert.strictEqual(choices[0].active, true);
    assert.strictEqual(choices[0].description, 'no adapter · active');
    assert.match(choices[1].description, /\$\(warning\) files missing/);
    assert.strictEqual(choices[1].problem, `adapter run-0 ppo is gone (${weights(a)} is missing)`);
  });

  it('lists a run written twice once, and still offers an active adapter missing from the history', () => {
    const a = entry(0);
    const again = { ...a, promoted: false, reason: 'again' };
    const active = { name: 'old promoted', path: '/runs/old/policy', modelDir: '/models/a' };
    const { choices } = adapterChoices([a, again], '/models/a', active, () => true);
    assert.deepStrictEqual(
      choices.map((c) => c.label),
      ['Base model', 'old promoted', 'run-0 ppo', LOAD_FOLDER_LABEL],
    );
    assert.match(choices[2].detail!, /not promoted: again/);
    assert.strictEqual(choices[1].active, true);
  });
});

describe('restoring the chosen adapter after a reload', () => {
  it('restores it only for the model it was trained on and while its files exist', () => {
    const saved = { name: 'run-1 ppo', path: '/runs/run-1/ppo/policy', modelDir: '/models/a' };
    const weights = '/runs/run-1/ppo/policy/adapter_model.safetensors';
    const exists = (file: string) => file === weights;
    assert.deepStrictEqual(restorableAdapter(undefined, '/models/a', exists), {});
    assert.deepStrictEqual(restorableAdapter(saved, '/models/a', exists), { adapter: saved });
    assert.match(
      restorableAdapter(saved, '/models/b', exists).problem!,
      /run-1 ppo was trained on \/models\/a, not \/models\/b; using the base model/,
    );
    assert.match(
      restorableAdapter(saved, '/models/a', () => false).problem!,
      /is gone \(.*adapter_model\.safetensors is missing\); using the base model/,
    );
    assert.match(
      restorableAdapter({ name: 1 }, '/models/a', exists).problem!,
      /malformed saved adapter: \{"name":1\}/,
    );
  });
});
