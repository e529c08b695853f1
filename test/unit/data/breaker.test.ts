/**
 * Defects found by attacking the preference store, the dataset formats and the `data` CLI with
 * bad input (issue 6). Each test holds the right behaviour for one defect.
 */
import * as assert from 'assert';
import { execFileSync, spawn } from 'child_process';
import { createHash } from 'crypto';
import {
  existsSync,
  lstatSync,
  realpathSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
} from 'fs';
import { promises as fsp, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isAbsolutePathLike } from '../../../src/data/paths';
import { redactText } from '../../../src/data/redact';
import { computeStats, formatStats } from '../../../src/data/stats';
import { openStore } from '../../../src/data/store';
import { importTrl } from '../../../src/data/formats/trl';
import { importRankings } from '../../../src/data/formats/rankings';
import { importArenaCsv } from '../../../src/data/formats/copilotArena';
import { importKto } from '../../../src/data/formats/kto';
import { sampleJudgment } from './helpers/records';
import { cli } from '../../support/cli';

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r) + '\n').join('');

describe('breaker: data store, formats and CLI under bad input', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-breaker-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('rejects a data subcommand named like an Object.prototype member as unknown (exit 2)', async () => {
    for (const sub of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      const result = await cli('data', sub);
      assert.strictEqual(result.code, 2, `data ${sub} gave ${String(result.code)}`);
      assert.match(result.err, new RegExp(`unknown data subcommand "${sub}"; allowed: import`));
    }
  });

  it('data <sub> -h prints the help like --help', async () => {
    const result = await cli('data', 'import', '-h');
    assert.strictEqual(result.code, 0, result.err);
    assert.match(result.out, /code-rlhf data import <file> --out/);
  });

  it('import --out refuses a file that is not a preference store, leaving it untouched', async () => {
    const input = path.join(dir, 'in.jsonl');
    writeFileSync(input, jsonl([{ prompt: 'p', chosen: 'a', rejected: 'b' }]));
    // A user's TRL dataset given as --out by mistake; its last line has no newline.
    const notStore = path.join(dir, 'dataset.jsonl');
    writeFileSync(
      notStore,
      '{"prompt":"p","chosen":"x","rejected":"y"}\n{"prompt":"q","chosen":"x"',
    );
    const before = sha(notStore);
    const result = await cli('data', 'import', input, '--out', notStore);
    assert.strictEqual(result.code, 2, result.out);
    assert.match(result.err, /dataset\.jsonl:1: .*not a preference store/);
    assert.strictEqual(sha(notStore), before);
    assert.deepStrictEqual(readdirSync(dir).sort(), ['dataset.jsonl', 'in.jsonl']);
  });

  it('import and export --out naming a folder say so and name it', async () => {
    const input = path.join(dir, 'in.jsonl');
    writeFileSync(input, jsonl([{ prompt: 'p', chosen: 'a', rejected: 'b' }]));
    const folder = path.join(dir, 'folder');
    mkdirSync(folder);
    const result = await cli('data', 'import', input, '--out', folder);
    assert.strictEqual(result.code, 2);
    assert.match(result.err, /--out .*folder is a folder/);
    const store = path.join(dir, 'store.jsonl');
    writeFileSync(store, jsonl([sampleJudgment('a')]));
    const exported = await cli(
      'data',
      'export',
      store,
      '--format',
      'trl',
      '--out',
      folder,
      '--force',
    );
    assert.strictEqual(exported.code, 2);
    assert.match(exported.err, /--out .*folder is a folder/);
  });

  it('import rejects only the records with an absolute path, naming their lines', async () => {
    const input = path.join(dir, 'records.jsonl');
    writeFileSync(
      input,
      jsonl([
        sampleJudgment('ok1'),
        sampleJudgment('abs', { file: '/home/alice/src/add.py' }),
        sampleJudgment('ok2'),
        sampleJudgment('uri', { workspace: 'file:///home/alice/app' }),
      ]),
    );
    const store = path.join(dir, 'store.jsonl');
    const result = await cli('data', 'import', input, '--out', store);
    assert.strictEqual(result.code, 0, result.err);
    assert.match(
      result.err,
      /records\.jsonl:2: key "file": absolute path "\/home\/alice\/src\/add\.py"/,
    );
    assert.match(result.err, /records\.jsonl:4: key "workspace": absolute path "file:\/\/\/home/);
    assert.match(result.out, /2 appended/);
    const ids = readFileSync(store, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: string }).id);
    assert.deepStrictEqual(ids, ['ok1', 'ok2']);
  });

  it('treats file:// and other URIs as absolute paths; the store never writes them', async () => {
    assert.ok(isAbsolutePathLike('file:///home/alice/secret.ts'));
    assert.ok(isAbsolutePathLike('vscode-remote://ssh-remote+box/home/alice/x.ts'));
    assert.ok(!isAbsolutePathLike('src/a.ts'));
    const store = await openStore(path.join(dir, 's.jsonl'));
    await assert.rejects(
      store.append(sampleJudgment('u', { file: 'file:///home/alice/secret.ts' })),
      /key "file": absolute path "file:\/\/\/home\/alice\/secret\.ts" not allowed/,
    );
    assert.ok(!existsSync(path.join(dir, 's.jsonl')));
  });

  it('export into a missing folder creates it (like import) instead of naming a temp file', async () => {
    const store = path.join(dir, 'store.jsonl');
    writeFileSync(store, jsonl([sampleJudgment('a')]));
    const out = path.join(dir, 'new', 'sub', 'trl.jsonl');
    const result = await cli('data', 'export', store, '--format', 'trl', '--out', out);
    assert.strictEqual(result.code, 0, result.err);
    assert.doesNotMatch(result.err, /\.tmp-/);
    assert.strictEqual(readFileSync(out, 'utf8').split('\n').length, 2);
  });

  it('rejects conversational TRL pairs whose completions are not assistant turns', async () => {
    const user = (content: string) => ({ role: 'user', content });
    const assistant = (content: string) => ({ role: 'assistant', content });
    const file = path.join(dir, 'conv.jsonl');
    writeFileSync(
      file,
      jsonl([
        { chosen: [user('hi'), assistant('a')], rejected: [user('hi'), assistant('b')] },
        // rejected completion is a user turn
        { chosen: [user('hi'), assistant('a')], rejected: [user('hi'), user('b')] },
        // explicit prompt, chosen completion is a user turn
        { prompt: [user('hi')], chosen: [user('a')], rejected: [assistant('b')] },
        // empty chosen completion
        { prompt: [user('hi')], chosen: [], rejected: [assistant('b')] },
        // first roles differ: nothing shared, so the user turn would become a completion
        { chosen: [user('hi'), assistant('a')], rejected: [assistant('hi'), assistant('b')] },
      ]),
    );
    const result = await importTrl(file);
    assert.strictEqual(result.records.length, 1);
    assert.deepStrictEqual(
      result.rejected.map((r) => r.line),
      [2, 3, 4, 5],
    );
    assert.match(result.rejected[0].reason, /key "rejected".* role "user"/);
    assert.match(result.rejected[1].reason, /key "chosen".* role "user"/);
    assert.match(result.rejected[2].reason, /key "chosen".* no message/);
  });

  it('counts annotators, languages and models named like Object.prototype members', () => {
    const record = sampleJudgment('p', { annotator: 'constructor', language: 'toString' });
    record.candidates[0].model = '__proto__';
    record.candidates[1].model = 'hasOwnProperty';
    const stats = computeStats([record]);
    assert.strictEqual(stats.byAnnotator.constructor, 1);
    assert.strictEqual(stats.byLanguage.toString, 1);
    assert.deepStrictEqual(Object.keys(stats.byModel).sort(), ['__proto__', 'hasOwnProperty']);
    assert.doesNotMatch(formatStats(stats), /native code/);
  });

  it('redacts the rest of a private key block that starts before the cursor', () => {
    // The cursor sits inside the key: BEGIN is in the prefix, the body and END in the suffix.
    const suffix = 'MIIEsuffixKEYBODYabc123\n-----END RSA PRIVATE KEY-----`;\nrun();\n';
    const { text } = redactText(suffix);
    assert.doesNotMatch(text, /KEYBODY/);
    assert.match(text, /\[REDACTED:private-key-block\]`;\nrun\(\);\n$/);
  });
  it('rankings files without ids: a second file never has its judgments dropped as stored', async () => {
    const first = path.join(dir, 'r1.jsonl');
    const second = path.join(dir, 'r2.jsonl');
    writeFileSync(first, jsonl([{ prompt: 'def a():', completions: ['x', 'y'], best: 0 }]));
    writeFileSync(second, jsonl([{ prompt: 'def b():', completions: ['p', 'q'], best: 1 }]));
    const store = path.join(dir, 'store.jsonl');
    assert.match((await cli('data', 'import', first, '--out', store)).out, /1 appended/);
    assert.match((await cli('data', 'import', second, '--out', store)).out, /1 appended/);
    // The same file again is still stored once.
    assert.match((await cli('data', 'import', second, '--out', store)).out, /0 appended/);
    assert.strictEqual(readFileSync(store, 'utf8').trim().split('\n').length, 2);
  });

  it('rankings import rejects a prompt of the wrong type instead of storing ""', async () => {
    const file = path.join(dir, 'r.jsonl');
    writeFileSync(
      file,
      jsonl([
        { prompt: 123, completions: ['p', 'q'], best: 0 },
        { prompt: 'ok', suffix: ['x'], completions: ['p', 'q'], best: 0 },
        { prompt: 'ok', completions: ['p', 'q'], best: 0 },
      ]),
    );
    const result = await importRankings(file);
    assert.strictEqual(result.records.length, 1);
    assert.match(result.rejected[0].reason, /key "prompt" must be a string, got 123/);
    assert.strictEqual(result.rejected[1].line, 2);
    assert.match(result.rejected[1].reason, /key "suffix" must be a string/);
  });

  it('Copilot Arena: rejects acceptedIndex spellings that only Number() reads as 0 or 1', async () => {
    const header = 'prefix,suffix,model_a,model_b,acceptedIndex,completion_a,completion_b\n';
    const row = (index: string, p: string) => `"${p}","s",ma,mb,${index},"ca","cb"\n`;
    const file = path.join(dir, 'a.csv');
    const good = ['0', '1', '0.0', '1.0', ' 1 '];
    const bad = ['0x1', '1e0', '-0', '+1', '0b1'];
    writeFileSync(file, header + [...good, ...bad].map((v, i) => row(v, `p${i}`)).join(''));
    const result = await importArenaCsv(file);
    assert.strictEqual(result.records.length, good.length);
    assert.deepStrictEqual(
      result.rejected.map((r) => r.line),
      [7, 8, 9, 10, 11],
    );
    assert.match(result.rejected[0].reason, /acceptedIndex "0x1" is not 0 or 1/);
  });

  it('Copilot Arena: a row with bytes that are not UTF-8 is reported, not imported as U+FFFD', async () => {
    const file = path.join(dir, 'latin1.csv');
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from('prefix,suffix,model_a,model_b,acceptedIndex,completion_a,completion_b\n'),
        Buffer.from('"ok","s",ma,mb,0,"ca","cb"\n'),
        Buffer.from('"caf'),
        Buffer.from([0xe9]),
        Buffer.from('","s",ma,mb,1,"ca","cb"\n'),
      ]),
    );
    const result = await importArenaCsv(file);
    assert.strictEqual(result.records.length, 1);
    assert.strictEqual(result.rejected.length, 1);
    assert.strictEqual(result.rejected[0].line, 3);
    assert.match(result.rejected[0].reason, /not valid UTF-8/);
  });
  it('redacts passwords in URLs, typed or prefixed assignments, and bearer tokens', () => {
    const cases: [string, string][] = [
      ['DB = "postgres://admin:S3cretPw@db.internal:5432/app"', 'S3cretPw'],
      ['git remote add o https://user:tok3nval@github.com/org/repo.git', 'tok3nval'],
      ['password: str = "typedsecret"', 'typedsecret'],
      ['const password: string = "tssecret";', 'tssecret'],
      ['password = f"fsecret{x}"', 'fsecret'],
      ["db_password = r'rawsecret'", 'rawsecret'],
      ['headers = {"Authorization": "Bearer abcdef0123456789abcdef0123"}', 'abcdef0123456789'],
    ];
    for (const [input, secret] of cases) {
      const { text } = redactText(input);
      assert.ok(!text.includes(secret), `${input} -> ${text}`);
      assert.match(text, /\[REDACTED:/);
    }
    // Type declarations and placeholders are not secrets and stay as they are.
    for (const input of [
      'interface U { password: string; token?: string }',
      'url = "postgres://user:${DB_PASSWORD}@localhost/db"',
      'http://localhost:8080/path',
    ]) {
      assert.strictEqual(redactText(input).text, input);
    }
  });
  it('import exits 1 and creates no store when every line is rejected (wrong --format)', async () => {
    const input = path.join(dir, 'trl.jsonl');
    writeFileSync(input, jsonl([{ prompt: 'p', chosen: 'a', rejected: 'b' }]));
    const store = path.join(dir, 'store.jsonl');
    const result = await cli('data', 'import', input, '--format', 'records', '--out', store);
    assert.strictEqual(result.code, 1);
    assert.match(result.err, /trl\.jsonl:1: key "type"/);
    assert.match(result.err, /nothing to import: all 1 lines\/rows .* rejected as records/);
    assert.ok(!existsSync(store));
  });
  it('KTO import rejects a user-turn or empty completion and a suffix of the wrong type', async () => {
    const file = path.join(dir, 'kto.jsonl');
    const user = [{ role: 'user', content: 'hi' }];
    writeFileSync(
      file,
      jsonl([
        { prompt: user, completion: [{ role: 'assistant', content: 'a' }], label: true },
        { prompt: user, completion: [{ role: 'user', content: 'b' }], label: false },
        { prompt: user, completion: [], label: true },
        { prompt: 'p', completion: 'c', suffix: 5, label: true },
      ]),
    );
    const result = await importKto(file);
    assert.strictEqual(result.records.length, 1);
    assert.deepStrictEqual(
      result.rejected.map((r) => r.line),
      [2, 3, 4],
    );
    assert.match(result.rejected[0].reason, /key "completion".* role "user"/);
    assert.match(result.rejected[1].reason, /no message/);
    assert.match(result.rejected[2].reason, /key "suffix" must be a string, got 5/);
  });
  it('export --out through a symlink: never over the store, keeps the link, writes a FIFO', async () => {
    const store = path.join(dir, 'store.jsonl');
    writeFileSync(store, jsonl([sampleJudgment('a')]));
    const before = sha(store);
    const toStore = path.join(dir, 'to-store.jsonl');
    symlinkSync(store, toStore);
    const refused = await cli(
      'data',
      'export',
      store,
      '--format',
      'trl',
      '--out',
      toStore,
      '--force',
    );
    assert.strictEqual(refused.code, 2);
    assert.match(refused.err, /--out must differ from the store file/);
    assert.strictEqual(sha(store), before);

    const real = path.join(dir, 'real.jsonl');
    writeFileSync(real, 'old\n');
    const link = path.join(dir, 'link.jsonl');
    symlinkSync(real, link);
    const viaLink = await cli('data', 'export', store, '--format', 'trl', '--out', link, '--force');
    assert.strictEqual(viaLink.code, 0, viaLink.err);
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.match(readFileSync(real, 'utf8'), /"chosen"/);

    // A named pipe (like /dev/stdout) is written as a stream, not replaced by a regular file.
    const fifo = path.join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('cat', [fifo]);
    let piped = '';
    reader.stdout.on('data', (chunk: Buffer) => (piped += chunk.toString('utf8')));
    const closed = new Promise<void>((resolve) => reader.on('close', () => resolve()));
    const timer = setTimeout(() => reader.kill('SIGKILL'), 5000);
    try {
      const toFifo = await cli('data', 'export', store, '--format', 'trl', '--out', fifo);
      assert.strictEqual(toFifo.code, 0, toFifo.err);
      assert.match(toFifo.err, /1 lines from 1 of 1 records/);
      assert.strictEqual(toFifo.out, '');
    } finally {
      if (!lstatSync(fifo).isFIFO()) reader.kill('SIGKILL');
      await closed;
      clearTimeout(timer);
    }
    assert.ok(lstatSync(fifo).isFIFO());
    assert.match(piped, /^\{"prompt":/);
  });
  it('a store opened through a symlink locks and rewrites the real file', async () => {
    const realDir = path.join(dir, 'real');
    mkdirSync(realDir);
    const file = path.join(realDir, 'store.jsonl');
    const link = path.join(dir, 'link.jsonl');
    writeFileSync(file, jsonl([sampleJudgment('a')]));
    symlinkSync(file, link);
    const viaLink = await openStore(link);
    assert.strictEqual(viaLink.path, realpathSync(file));
    await viaLink.append(sampleJudgment('b'));
    assert.strictEqual(await viaLink.rewrite((records) => records), 2);
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.strictEqual(readFileSync(file, 'utf8').trim().split('\n').length, 2);
    // A new store inside a linked folder also gets its real path.
    const linkedDir = path.join(dir, 'linked-dir');
    symlinkSync(realDir, linkedDir);
    const fresh = await openStore(path.join(linkedDir, 'new.jsonl'));
    assert.strictEqual(fresh.path, path.join(realpathSync(realDir), 'new.jsonl'));
  });
  it('a TRL, rankings or KTO line that is not UTF-8 is rejected by number; the rest import', async () => {
    const bad = Buffer.from([0x22, 0xff, 0xfe, 0x22]); // "\xff\xfe"
    const cases: [
      string,
      (f: string) => Promise<{ records: unknown[]; rejected: { line: number }[] }>,
      string,
    ][] = [
      ['trl', importTrl, '{"prompt":"p","chosen":"a","rejected":'],
      ['rankings', importRankings, '{"completions":["a","b"],"best":0,"prompt":'],
      ['kto', importKto, '{"completion":"a","label":true,"prompt":'],
    ];
    for (const [name, importer, head] of cases) {
      const good = head + '"b"}\n';
      const file = path.join(dir, `${name}.jsonl`);
      writeFileSync(
        file,
        Buffer.concat([Buffer.from(good), Buffer.from(head), bad, Buffer.from('}\n' + good)]),
      );
      const result = await importer(file);
      assert.strictEqual(result.records.length, 2, name);
      assert.deepStrictEqual(
        result.rejected.map((r) => r.line),
        [2],
        name,
      );
    }
  });
  it('an append that cannot be serialized leaves no id marked stored; the retry is written', async () => {
    const file = path.join(dir, 'store.jsonl');
    const store = await openStore(file);
    await store.append(sampleJudgment('first'));
    const bad = sampleJudgment('x', { meta: { n: BigInt(1) as unknown as number } });
    await assert.rejects(store.append(bad), /id "x" cannot be written as JSON/);
    assert.deepStrictEqual(await store.append(sampleJudgment('x')), { id: 'x', written: true });
    assert.strictEqual(readFileSync(file, 'utf8').trim().split('\n').length, 2);
    assert.strictEqual(await store.count(), 2);
  });
  it('an append whose file cannot be opened leaves no id marked stored; the retry is written', async () => {
    const file = path.join(dir, 'store.jsonl');
    const store = await openStore(file);
    await store.append(sampleJudgment('first'));
    const realOpen = fsp.open;
    let failed = 0;
    fsp.open = (async (target: string, flags?: string, mode?: number) => {
      if (target === realpathSync(file) && flags === 'a' && failed++ === 0) {
        throw Object.assign(new Error(`EACCES: permission denied, open '${target}'`), {
          code: 'EACCES',
        });
      }
      return realOpen(target, flags, mode);
    }) as typeof fsp.open;
    try {
      await assert.rejects(store.append(sampleJudgment('x')), /could not append .*EACCES/);
    } finally {
      fsp.open = realOpen;
    }
    assert.deepStrictEqual(await store.append(sampleJudgment('x')), { id: 'x', written: true });
    assert.strictEqual(readFileSync(file, 'utf8').trim().split('\n').length, 2);
  });
  it('position bias reports picks whose position is out of range instead of dropping them', () => {
    const oneBased = sampleJudgment('r');
    oneBased.candidates[0].position = 2; // picked, shown "at 2" of 2 (1-based data)
    oneBased.candidates[1].position = 1;
    const stats = computeStats([oneBased, sampleJudgment('ok')]);
    assert.strictEqual(stats.picksOutOfRange, 1);
    assert.strictEqual(stats.positionBias[0].byPosition[0].total, 1);
    assert.match(formatStats(stats), /picks left out: shown position not in 0\.\.\(shown-1\): 1/);
  });
});
