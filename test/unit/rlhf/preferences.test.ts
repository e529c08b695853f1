import * as assert from 'assert';
import { importedCandidate, importedJudgment } from '../../../src/data/recordFactory';
import {
  PPO_DEFAULTS,
  PPO_SPEC,
  RM_DEFAULTS,
  RM_SPEC,
  parseConfig,
} from '../../../src/rlhf/config';
import { Oracle, shortLinesRule } from '../../../src/rlhf/oracle';
import { oracleRankingRecord, oracleRecord, pairsFromRecords } from '../../../src/rlhf/preferences';

describe('rlhf preferences and configs', () => {
  it('D3: a ranking A > B = C > D gives 5 strict pairs and 1 tie with target 0.5', () => {
    const record = importedJudgment({
      id: 'r1',
      origin: 'test',
      annotator: 't',
      prefix: 'x = ',
      candidates: ['A', 'B', 'C', 'D'].map((t, i) => importedCandidate(`c${i}`, t)),
      judgment: { kind: 'ranking', groups: [['c0'], ['c1', 'c2'], ['c3']] },
      meta: { margin: 0.5 },
    });
    const s = pairsFromRecords([record]);
    assert.strictEqual(s.strictPairs, 5);
    assert.strictEqual(s.tiePairs, 1);
    const strict = s.pairs
      .filter((p) => p.target === 1)
      .map((p) => p.chosen + p.rejected)
      .sort();
    assert.deepStrictEqual(strict, ['AB', 'AC', 'AD', 'BD', 'CD']);
    assert.ok(s.pairs.every((p) => p.prompt === 'x = '));
    assert.strictEqual(s.pairs.find((p) => p.target === 1)!.margin, 0.5);
    assert.strictEqual(s.pairs.find((p) => p.target === 0.5)!.margin, 0);
  });

  it('pairs carry the suffix of the context they were judged in', () => {
    const record = importedJudgment({
      id: 'r2',
      origin: 'test',
      annotator: 't',
      prefix: 'f(',
      suffix: ');\n',
      candidates: ['a', 'b', 'c'].map((t, i) => importedCandidate(`c${i}`, t)),
      judgment: { kind: 'ranking', groups: [['c0'], ['c1', 'c2']] },
    });
    const s = pairsFromRecords([record]);
    assert.strictEqual(s.pairs.length, 3);
    assert.ok(s.pairs.every((p) => p.prompt === 'f(' && p.suffix === ');\n'));
  });

  it('oracle verdicts become store records: pick, and a tie as a one-group ranking', () => {
    const oracle = new Oracle(shortLinesRule);
    const win = oracleRecord(oracle, 'p', 'a', 'a\n', { model: 'm', index: 0 });
    assert.deepStrictEqual(win.record.judgment, { kind: 'pick', best: 'c1' });
    assert.strictEqual(win.record.origin, 'oracle:short-lines');
    const tie = oracleRecord(oracle, 'p', 'ab\n', 'cd\n', { model: 'm', index: 1 });
    const s = pairsFromRecords([win.record, tie.record]);
    assert.strictEqual(s.strictPairs, 1);
    assert.strictEqual(s.tiePairs, 1);
    assert.deepStrictEqual([s.pairs[0].chosen, s.pairs[0].rejected], ['a\n', 'a']);
    // identical texts carry no information (D1)
    const same = oracleRecord(oracle, 'p', 'x\n', 'x\n', { model: 'm', index: 2 });
    assert.strictEqual(pairsFromRecords([same.record]).degenerate, 1);
  });

  it('configs reject unknown keys and bad values by name', () => {
    const c = parseConfig({ epochs: 5 }, RM_SPEC, RM_DEFAULTS, 'rm config');
    assert.strictEqual(c.epochs, 5);
    assert.strictEqual(c.batchSize, RM_DEFAULTS.batchSize);
    assert.throws(
      () => parseConfig({ epoch: 5 }, RM_SPEC, RM_DEFAULTS, 'rm config'),
      /rm config: unknown key "epoch"; allowed: .*epochs/,
    );
    assert.throws(
      () => parseConfig({ epochs: 1.5 }, RM_SPEC, RM_DEFAULTS),
      /"epochs" is 1.5; allowed: an integer/,
    );
    assert.throws(
      () => parseConfig({ missingEosConvention: 'drop' }, PPO_SPEC, PPO_DEFAULTS),
      /allowed: "subtract", "replace"/,
    );
    assert.throws(() => parseConfig({ clipRange: 2 }, PPO_SPEC, PPO_DEFAULTS), /<= 1/);
  });
});

describe('rlhf oracle ranking records', () => {
  it('a ranking of 4 expands to its pairs and ties; duplicate texts are shown once', () => {
    const r = oracleRankingRecord(
      new Oracle(shortLinesRule),
      'p',
      ['a\n', 'aaaa\n', 'b\n', 'a\n', 'aaaa'],
      { model: 'm', index: 0 },
    );
    assert.deepStrictEqual(r.shown, ['a\n', 'aaaa\n', 'b\n', 'aaaa']);
    assert.deepStrictEqual(r.record.judgment, {
      kind: 'ranking',
      groups: [['c0', 'c2'], ['c1'], ['c3']],
    });
    const s = pairsFromRecords([r.record]);
    assert.strictEqual(s.strictPairs, 5); // (a,aaaa\n) (a,aaaa) (b,aaaa\n) (b,aaaa) (aaaa\n,aaaa)
    assert.strictEqual(s.tiePairs, 1);
  });
});
