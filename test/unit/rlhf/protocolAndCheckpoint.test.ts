import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseTrainingCommand, parseTrainingEvent } from '../../../src/protocol/training';
import {
  assertCheckpointsFolderFree,
  loadLatestCheckpoint,
  writeCheckpoint,
  writeFileAtomic,
} from '../../../src/rlhf/checkpoint';
import {
  HeadNotFoundError,
  decodeHead,
  encodeHead,
  headDigest,
  loadHead,
  saveHead,
} from '../../../src/rlhf/heads';
import { MetricsWriter, formatMetricLine, PPO_METRICS } from '../../../src/rlhf/metrics';
import { packTensors, unpackParams } from '../../../src/rlhf/tensorPack';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-'));

describe('rlhf training protocol, checkpoints, heads (R5), metrics', () => {
  it('validates commands and names the bad field', () => {
    const start = {
      type: 'train/start',
      jobId: 'j1',
      kind: 'ppo',
      runDir: '/r',
      resume: false,
      config: { lr: 1e-4 },
    };
    assert.deepStrictEqual(parseTrainingCommand(start), start);
    assert.deepStrictEqual(parseTrainingCommand({ type: 'train/cancel', jobId: 'j1' }), {
      type: 'train/cancel',
      jobId: 'j1',
    });
    assert.throws(
      () => parseTrainingCommand({ ...start, kind: 'sft' }),
      /"kind" is "sft"; allowed: "rm", "ppo", "dpo"/,
    );
    assert.throws(
      () => parseTrainingCommand({ ...start, resume: 'yes' }),
      /"resume" must be a boolean/,
    );
    assert.throws(
      () => parseTrainingCommand({ ...start, jobId: '' }),
      /"jobId" must be a non-empty string/,
    );
    assert.throws(
      () => parseTrainingCommand({ type: 'train/pause', jobId: 'j' }),
      /unknown type "train\/pause"/,
    );
    assert.throws(() => parseTrainingCommand([]), /must be an object/);
  });

  it('validates events; NaN metrics arrive as null and are kept as NaN', () => {
    const m = parseTrainingEvent(
      JSON.parse(
        JSON.stringify({
          type: 'train/metrics',
          jobId: 'j',
          step: 3,
          metrics: { 'objective/kl': 0.1, 'loss/value_avg': Number.NaN },
        }),
      ),
    );
    assert.ok(
      m.type === 'train/metrics' &&
        Number.isNaN(m.metrics['loss/value_avg']) &&
        m.metrics['objective/kl'] === 0.1,
    );
    assert.throws(
      () => parseTrainingEvent({ type: 'train/metrics', jobId: 'j', step: 3, metrics: { a: 'x' } }),
      /"metrics.a" must be a number/,
    );
    assert.throws(
      () =>
        parseTrainingEvent({
          type: 'train/progress',
          jobId: 'j',
          phase: 'rollout',
          step: -1,
          totalSteps: 3,
        }),
      /"step" must be a non-negative integer, got -1/,
    );
    assert.throws(
      () => parseTrainingEvent({ type: 'train/done', jobId: 'j', status: 'failed' }),
      /needs an "error"/,
    );
    assert.throws(
      () =>
        parseTrainingEvent({
          type: 'train/log',
          jobId: 'j',
          level: 'loud',
          message: 'x',
          time: 't',
        }),
      /"level" is "loud"/,
    );
    const done = parseTrainingEvent({
      type: 'train/done',
      jobId: 'j',
      status: 'cancelled',
      summary: { step: 4 },
    });
    assert.deepStrictEqual(done, {
      type: 'train/done',
      jobId: 'j',
      status: 'cancelled',
      summary: { step: 4 },
    });
  });

  it('writes files atomically and leaves no temp files', () => {
    const dir = tmp();
    const file = path.join(dir, 'active.json');
    writeFileAtomic(file, '{"a":1}');
    writeFileAtomic(file, '{"a":2}');
    assert.strictEqual(fs.readFileSync(file, 'utf8'), '{"a":2}');
    assert.deepStrictEqual(fs.readdirSync(dir), ['active.json']);
  });

  it('checkpoints: saved parameters must match the trainer parameters by name and length', () => {
    const params = new Map([
      ['a.lora_A', new Float32Array([1, 2, 3, 4])],
      ['a.lora_B', new Float32Array([5, 6])],
    ]);
    const bytes = packTensors({ 'a.lora_A': new Float32Array(4), 'a.lora_B': new Float32Array(2) });
    assert.deepStrictEqual(Object.keys(unpackParams(bytes, 'ck/params.bin', params)), [
      'a.lora_A',
      'a.lora_B',
    ]);
    // A shorter tensor (another LoRA rank) and a missing one are named, not copied in part.
    const shorter = packTensors({
      'a.lora_A': new Float32Array(2),
      'a.lora_B': new Float32Array(2),
    });
    assert.throws(
      () => unpackParams(shorter, 'ck/params.bin', params),
      (e: Error) =>
        e.message.startsWith('ck/params.bin: parameter "a.lora_A" needs 4 values') &&
        e.message.includes('the checkpoint has 2'),
    );
    const missing = packTensors({ 'a.lora_A': new Float32Array(4) });
    assert.throws(
      () => unpackParams(missing, 'ck/best.bin', params),
      /ck\/best\.bin: parameter "a\.lora_B" needs 2 values and the checkpoint has none/,
    );
  });

  it('checkpoints: latest pointer, verification, pruning, damaged file is an error', () => {
    const dir = tmp();
    assert.strictEqual(loadLatestCheckpoint(dir), undefined);
    writeCheckpoint(dir, 1, { 'a.bin': new Uint8Array([1, 2]) }, { klCoef: 0.1 });
    writeCheckpoint(dir, 2, { 'a.bin': new Uint8Array([3, 4]) }, { klCoef: 0.2 });
    writeCheckpoint(dir, 3, { 'a.bin': new Uint8Array([5, 6]) }, { klCoef: 0.3 });
    const ck = loadLatestCheckpoint(dir)!;
    assert.strictEqual(ck.manifest.step, 3);
    assert.deepStrictEqual([...ck.read('a.bin')], [5, 6]);
    assert.deepStrictEqual(ck.manifest.state, { klCoef: 0.3 });
    assert.deepStrictEqual(fs.readdirSync(dir).sort(), ['latest', 'step-0000002', 'step-0000003']);
    // a half-written temp folder from a crash is ignored
    fs.mkdirSync(path.join(dir, 'step-0000004.999.tmp'));
    assert.strictEqual(loadLatestCheckpoint(dir)!.manifest.step, 3);
    fs.writeFileSync(path.join(dir, 'step-0000003', 'a.bin'), new Uint8Array([5, 7]));
    assert.throws(() => loadLatestCheckpoint(dir), /a\.bin does not match its manifest/);
    assert.throws(() => ck.read('b.bin'), /has no file "b.bin"/);
  });

  it('checkpoints: never written beside step folders without a pointer, which stay as they were', () => {
    const dir = tmp();
    writeCheckpoint(dir, 2, { 'a.bin': 'earlier run, step 2' }, {});
    writeCheckpoint(dir, 4, { 'a.bin': 'earlier run, step 4' }, {});
    fs.rmSync(path.join(dir, 'latest'));
    const manifests = () =>
      ['step-0000002', 'step-0000004'].map((n) =>
        fs.readFileSync(path.join(dir, n, 'manifest.json'), 'utf8'),
      );
    const before = manifests();
    // A new run's steps: below, at and above the earlier ones.
    for (const step of [1, 2, 5]) {
      assert.throws(
        () => writeCheckpoint(dir, step, { 'a.bin': 'new run' }, {}),
        new RegExp(
          `^Error: ${dir} holds 2 step folders \\(step-0000002, step-0000004\\) but no "latest" ` +
            'pointer: checkpoints this run did not write, and it will not replace or prune them; ' +
            `to resume from one, write its name into ${dir}/latest; or start the run in another ` +
            'folder$',
        ),
      );
    }
    assert.deepStrictEqual(fs.readdirSync(dir).sort(), ['step-0000002', 'step-0000004']);
    assert.deepStrictEqual(manifests(), before);
  });

  it('checkpoints: a run may start only where it continues every step folder', () => {
    const dir = path.join(tmp(), 'checkpoints', 'policy');
    // The caller's words for what to do (the CLI's flags, the editor's command).
    const advice = { fresh: 'do X', noPointer: (pointer: string) => `fix ${pointer}` };
    // Nothing there yet (the folder does not even exist): fresh and resumed runs start.
    assertCheckpointsFolderFree(dir, false, advice);
    assertCheckpointsFolderFree(dir, true, advice);
    writeCheckpoint(dir, 3, { 'a.bin': 'x' }, {});
    assert.throws(
      () => assertCheckpointsFolderFree(dir, false, advice),
      new RegExp(
        `^Error: ${dir} already holds 1 step folder \\(step-0000003\\) of an earlier run, which a ` +
          'fresh run there would replace and prune; do X$',
      ),
    );
    assertCheckpointsFolderFree(dir, true, advice);
    fs.rmSync(path.join(dir, 'latest'));
    assert.throws(
      () => assertCheckpointsFolderFree(dir, true, advice),
      new RegExp(
        `^Error: ${dir} holds 1 step folder \\(step-0000003\\) but no "latest" pointer, so a ` +
          `resumed run would start from scratch and prune them; fix ${dir}/latest$`,
      ),
    );
    // A fresh run is refused too, and told what works without a pointer, not to resume (which
    // the check above refuses).
    assert.throws(
      () => assertCheckpointsFolderFree(dir, false, advice),
      new RegExp(
        `^Error: ${dir} already holds 1 step folder \\(step-0000003\\) of an earlier run \\(and ` +
          `no "latest" pointer\\), which a fresh run there would replace and prune; fix ` +
          `${dir}/latest$`,
      ),
    );
    for (let step = 4; step <= 8; step++) fs.mkdirSync(path.join(dir, `step-000000${step}`));
    assert.throws(
      () => assertCheckpointsFolderFree(dir, false, advice),
      /6 step folders \(step-0000003, step-0000004, \.\.\., step-0000008\)/,
    );
  });

  it('checkpoints: a damaged manifest names the file, the key, what is allowed and what to do', () => {
    const dir = tmp();
    writeCheckpoint(dir, 5, { 'a.bin': new Uint8Array([1, 2]) }, { klCoef: 0.1 });
    const manifest = path.join(dir, 'step-0000005', 'manifest.json');
    const good = JSON.parse(fs.readFileSync(manifest, 'utf8'));
    const fix = `write the name of an older step-\\* folder into ${dir}/latest, or train from the start in another run folder`;
    const cases: [string, RegExp][] = [
      ['{"step": 5,', /manifest\.json: not valid JSON \(.*\); checkpoint step-0000005 is damaged/],
      ['[1]', /manifest\.json: "\(top level\)" is \[1\]; allowed: a JSON object/],
      [JSON.stringify({ ...good, step: 4 }), /"step" is 4; allowed: 5 \(the folder's step\)/],
      [JSON.stringify({ ...good, state: null }), /"state" is null; allowed: a JSON object/],
      [JSON.stringify({ ...good, files: undefined }), /"files" is undefined; allowed: an object/],
      [
        JSON.stringify({ ...good, files: { '../../x': good.files['a.bin'] } }),
        /"files" is "\.\.\/\.\.\/x"; allowed: plain file names in the checkpoint folder/,
      ],
      [
        JSON.stringify({ ...good, files: { 'a.bin': { bytes: '2', sha256: 'x' } } }),
        /"files\.a\.bin" is \{"bytes":"2","sha256":"x"\}; allowed: \{"bytes": a non-negative/,
      ],
    ];
    for (const [text, error] of cases) {
      fs.writeFileSync(manifest, text);
      assert.throws(() => loadLatestCheckpoint(dir), error);
      assert.throws(() => loadLatestCheckpoint(dir), new RegExp(fix.replace(/\//g, '\\/')));
    }
    fs.writeFileSync(manifest, JSON.stringify(good));
    assert.deepStrictEqual(loadLatestCheckpoint(dir)!.manifest.state, { klCoef: 0.1 });
    assert.throws(
      () => writeCheckpoint(dir, 6, { '..': 'x' }, {}),
      /checkpoint file name "\.\." is not allowed; allowed: plain file names/,
    );
  });

  it('R5: heads round-trip bitwise (SHA-256) and a missing head is loud', () => {
    const dir = tmp();
    const weight = new Float32Array([0.1, -2.5e-8, 3.4028234e38, Math.PI, -0]);
    const head = { weight, bias: new Float32Array([1e-7]) };
    saveHead(dir, 'value', head);
    const loaded = loadHead(dir, 'value', 5);
    assert.strictEqual(headDigest(loaded.head), headDigest(head));
    assert.ok(Object.is(loaded.head.weight[4], -0));
    // The advice is something the user can do: no option allows a fresh head.
    assert.throws(
      () => loadHead(dir, 'reward', 5),
      (e: Error) =>
        e instanceof HeadNotFoundError &&
        e.message ===
          `reward head not found at ${dir}/reward_head.safetensors; refusing to continue with a ` +
            `freshly initialized head: ${dir} is not a complete reward model: point at the ` +
            'output folder of a reward model run (the "reward-model" folder in its run folder) ' +
            'with all its files, or train the reward model again',
    );
    fs.rmSync(path.join(dir, 'value_head.safetensors'));
    assert.throws(
      () => loadHead(dir, 'value', 5),
      new RegExp(
        `^Error: value head not found at ${dir}/value_head\\.safetensors; .*: the checkpoint ` +
          `${dir} holds no value head, so PPO cannot continue from it; start PPO again in a ` +
          'new run folder$',
      ),
    );
    saveHead(dir, 'value', head);
    assert.throws(() => loadHead(dir, 'value', 6), /hidden size is 6/);
    const bytes = encodeHead(head, 'value');
    bytes[bytes.length - 1] ^= 1;
    assert.throws(() => decodeHead(bytes, 'x'), /do not match the stored sha256/);
    assert.throws(
      () =>
        decodeHead(new TextEncoder().encode('version https://git-lfs.github.com/spec/v1\n'), 'lfs'),
      /header length .* exceeds file size/,
    );
  });

  it('metrics: fixed-format line and JSONL that keeps NaN as null and survives a torn tail', () => {
    const line = formatMetricLine(
      4,
      { 'loss/value_avg': 0.5, 'objective/kl': 0.01234, extra: 2 },
      PPO_METRICS,
    );
    assert.strictEqual(line, 'step 4 | objective/kl 0.0123 | loss/value_avg 0.5000 | extra 2.0000');
    const file = path.join(tmp(), 'metrics.jsonl');
    const w = new MetricsWriter(file);
    w.append(1, { a: 1 });
    w.append(2, { a: Number.NaN });
    fs.appendFileSync(file, '{"step":3,"a"');
    const rows = MetricsWriter.read(file);
    assert.strictEqual(rows.length, 2);
    assert.strictEqual(rows[1].a, null);
  });
});
