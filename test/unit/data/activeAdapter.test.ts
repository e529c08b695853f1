import * as assert from 'assert';
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  ADAPTER_POINTER_FILE,
  AdapterPointerFile,
  formatAdapterPointer,
  MAX_POINTER_BYTES,
  parseAdapterPointer,
  type AdapterPointer,
} from '../../../src/data/activeAdapter';

const adapter = (i: number): AdapterPointer => ({
  name: `run-${i} ppo`,
  path: path.resolve(`/runs/run-${i}/ppo/policy`),
  modelDir: path.resolve('/models/a'),
  modelFingerprint: `fp${i}`,
});

const MODULE = path.resolve(__dirname, '../../../src/data/activeAdapter.ts');

const CLOCK = new Date('2026-12-04T18:15:00.123Z');
const STAMP = '20261204T181500123Z';

describe('active adapter pointer', () => {
  let dir: string;
  let file: string;
  const handle = () => new AdapterPointerFile(file, () => CLOCK);
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'active-adapter-'));
    file = path.join(dir, 'training', ADAPTER_POINTER_FILE);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('means the base model when the file is missing', () => {
    assert.deepStrictEqual(handle().open(), { read: { kind: 'missing', adapter: null } });
    assert.ok(!fs.existsSync(path.dirname(file)), 'reading created files');
  });

  it('round-trips an adapter and the base model, leaving no temporary files', async () => {
    const writer = handle();
    writer.open();
    await writer.write(adapter(1));
    assert.deepStrictEqual(handle().open().read, { kind: 'ok', adapter: adapter(1) });
    const { modelFingerprint: _unknown, ...older } = adapter(2);
    await writer.write(older);
    assert.deepStrictEqual(handle().open().read, { kind: 'ok', adapter: older });
    await writer.write(null);
    assert.deepStrictEqual(handle().open().read, { kind: 'ok', adapter: null });
    assert.deepStrictEqual(JSON.parse(fs.readFileSync(file, 'utf8')), {
      version: 1,
      adapter: null,
    });
    assert.deepStrictEqual(fs.readdirSync(path.dirname(file)), [ADAPTER_POINTER_FILE]);
  });

  it('refuses to write an adapter it could not read back', async () => {
    const bad = { ...adapter(1), path: 'relative/policy' };
    await assert.rejects(handle().write(bad), /"path" is "relative\/policy"; allowed: an absolute/);
    assert.ok(!fs.existsSync(file));
  });

  const corruptions: [string, string | Buffer, RegExp][] = [
    ['torn JSON', '{"version":1,"adapter":{"name":"run-1', /is not valid JSON/],
    ['an empty file', '', /is empty/],
    [
      'an unknown version',
      JSON.stringify({ version: 2, adapter: null }),
      /"version" 2; allowed: 1/,
    ],
    ['no adapter field', JSON.stringify({ version: 1 }), /has no "adapter"/],
    [
      'a wrong field',
      JSON.stringify({ version: 1, adapter: { ...adapter(1), modelDir: 7 } }),
      /bad "adapter": "modelDir" is 7; allowed: an absolute path/,
    ],
    ['an array', '[1]', /holds \[1\]; allowed: a JSON object/],
    ['bytes that are not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /is not valid UTF-8/],
  ];
  for (const [what, content, reason] of corruptions) {
    it(`moves a pointer with ${what} aside, says why, and uses the base model`, () => {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, content);
      const { read } = handle().open();
      assert.strictEqual(read.kind, 'corrupt');
      assert.strictEqual(read.adapter, null);
      const aside = `${file}.corrupt-${STAMP}`;
      const problem = (read as { problem: string }).problem;
      assert.ok(problem.startsWith(`the active adapter pointer ${file} `), problem);
      assert.match(problem, reason);
      assert.ok(problem.includes(`it is kept as ${aside}; using the base model`), problem);
      assert.ok(!fs.existsSync(file), 'the corrupt pointer stayed in place');
      assert.deepStrictEqual(fs.readFileSync(aside), Buffer.from(content));
    });
  }

  it('never overwrites an earlier corrupt copy, and reports one that appears later', async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'first');
    const window = handle();
    assert.strictEqual(window.open().read.kind, 'corrupt');
    fs.writeFileSync(file, 'second');
    const again = await window.refresh();
    assert.strictEqual(again?.kind, 'corrupt');
    assert.match(
      (again as { problem: string }).problem,
      /kept as .*corrupt-20261204T181500123Z-1;/,
    );
    assert.strictEqual(fs.readFileSync(`${file}.corrupt-${STAMP}`, 'utf8'), 'first');
    assert.strictEqual(fs.readFileSync(`${file}.corrupt-${STAMP}-1`, 'utf8'), 'second');
    assert.strictEqual(await window.refresh(), undefined);
  });

  it('moves an oversized pointer aside intact without reading it whole', async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // Valid JSON, so only the size check can tell it is not a pointer.
    const content = JSON.stringify({ version: 1, adapter: null, pad: 'x'.repeat(2 << 20) });
    fs.writeFileSync(file, content);
    const window = handle();
    const { read } = window.open();
    assert.strictEqual(read.kind, 'corrupt');
    const problem = (read as { problem: string }).problem;
    assert.match(
      problem,
      new RegExp(`is ${content.length} bytes; allowed: at most ${MAX_POINTER_BYTES}`),
    );
    assert.ok(problem.includes(`it is kept as ${file}.corrupt-${STAMP};`), problem);
    assert.strictEqual(fs.readFileSync(`${file}.corrupt-${STAMP}`, 'utf8'), content);
    assert.strictEqual(await window.refresh(), undefined);
  });

  it('reads a pointer of the largest allowed size', () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const text = formatAdapterPointer(adapter(1));
    fs.writeFileSync(file, text + ' '.repeat(MAX_POINTER_BYTES - Buffer.byteLength(text)));
    assert.deepStrictEqual(handle().open().read, { kind: 'ok', adapter: adapter(1) });
  });

  // A named pipe or a device never ends (or blocks the open): reading it would hang the window's
  // start. Run in a child process so that the old, blocking read fails the test by timing out.
  for (const [what, make, reason] of [
    ['a named pipe', (f: string) => execFileSync('mkfifo', [f]), /it is a named pipe/],
    ['a link to /dev/zero', (f: string) => fs.symlinkSync('/dev/zero', f), /it is a device/],
  ] as const) {
    (process.platform === 'win32' ? it.skip : it)(
      `leaves ${what} in place without blocking on it`,
      () => {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        make(file);
        const script =
          `const { AdapterPointerFile } = require(${JSON.stringify(MODULE)});` +
          `const p = new AdapterPointerFile(${JSON.stringify(file)});` +
          'process.stdout.write(JSON.stringify(p.open().read));';
        const child = spawnSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], {
          encoding: 'utf8',
          timeout: 30000,
        });
        assert.strictEqual(child.error, undefined, `the read blocked: ${child.error?.message}`);
        assert.strictEqual(child.status, 0, child.stderr);
        const read = JSON.parse(child.stdout) as { kind: string; problem: string };
        assert.strictEqual(read.kind, 'unreadable');
        assert.match(read.problem, reason);
        assert.match(read.problem, /left as it is; using the base model/);
        assert.ok(fs.lstatSync(file), 'the special file was removed');
      },
    );
  }

  it('leaves a pointer it cannot read in place', async () => {
    fs.mkdirSync(file, { recursive: true });
    const window = handle();
    const { read } = window.open();
    assert.strictEqual(read.kind, 'unreadable');
    assert.match((read as { problem: string }).problem, /cannot be read .*left as it is/);
    assert.ok(fs.statSync(file).isDirectory());
    // Reported once, not at every re-read.
    assert.strictEqual(await window.refresh(), undefined);
  });

  describe('two windows', () => {
    it('lets the last writer win and tells the other window once', async () => {
      const a = handle();
      const b = handle();
      a.open();
      b.open();
      assert.strictEqual(await a.refresh(), undefined);
      await b.write(adapter(1));
      assert.deepStrictEqual(await a.refresh(), { kind: 'ok', adapter: adapter(1) });
      assert.strictEqual(await a.refresh(), undefined);
      await a.write(null);
      // A window's own write is not news to it.
      assert.strictEqual(await a.refresh(), undefined);
      assert.deepStrictEqual(await b.refresh(), { kind: 'ok', adapter: null });
      await Promise.all([a.write(adapter(2)), b.write(adapter(3))]);
      const last = handle().open().read;
      assert.ok(
        [2, 3].some((i) => JSON.stringify(last.adapter) === JSON.stringify(adapter(i))),
        JSON.stringify(last),
      );
      assert.deepStrictEqual(fs.readdirSync(path.dirname(file)), [ADAPTER_POINTER_FILE]);
    });
  });

  describe('migrating the choice an earlier version kept in global state', () => {
    it('writes it to the pointer once when there is no pointer', async () => {
      const window = handle();
      const { read, migration } = window.open(adapter(1));
      // Used at once, before the write lands.
      assert.deepStrictEqual(read, { kind: 'ok', adapter: adapter(1) });
      assert.deepStrictEqual(await migration, { done: true });
      assert.deepStrictEqual(parseAdapterPointer(fs.readFileSync(file, 'utf8')), {
        adapter: adapter(1),
      });
      assert.strictEqual(await window.refresh(), undefined);
    });

    it('keeps an existing pointer, the newer record', async () => {
      await handle().write(null);
      const before = fs.readFileSync(file, 'utf8');
      const { read, migration } = handle().open(adapter(1));
      assert.deepStrictEqual(read, { kind: 'ok', adapter: null });
      assert.deepStrictEqual(await migration, { done: true });
      assert.strictEqual(fs.readFileSync(file, 'utf8'), before);
    });

    it('does not overwrite a pointer another window wrote while it was migrating', async () => {
      const window = handle();
      const { migration } = window.open(adapter(1));
      // Another window's write lands after this one read "missing" and before it writes.
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, formatAdapterPointer(adapter(2)));
      assert.deepStrictEqual(await migration, { done: true });
      assert.deepStrictEqual(handle().open().read.adapter, adapter(2));
      assert.deepStrictEqual(await window.refresh(), { kind: 'ok', adapter: adapter(2) });
    });

    it('reports a malformed saved choice and writes nothing', async () => {
      const { read, migration } = handle().open({ name: 1 });
      assert.deepStrictEqual(read, { kind: 'missing', adapter: null });
      const result = await migration!;
      assert.strictEqual(result.done, true);
      assert.match(result.problem!, /earlier version \("name" is 1; allowed: a non-empty string\)/);
      assert.ok(!fs.existsSync(file));
    });

    it('keeps the saved choice when the pointer cannot be written', async () => {
      fs.writeFileSync(path.join(dir, 'training'), 'a file where the folder should be');
      const { read, migration } = handle().open(adapter(1));
      assert.deepStrictEqual(read.adapter, adapter(1));
      const result = await migration!;
      assert.strictEqual(result.done, false);
      assert.match(result.problem!, /could not write .* used in this window only/);
    });
  });
});
