/**
 * Held-out evaluation and sample completions for the model card.
 *
 * Validation loss and next-token top-1 accuracy are measured on the validation files (never
 * trained on): left-to-right windows of the validation stream, and separately the middle
 * tokens of fill-in-the-middle examples cut from the same files.
 */
import { EngineSession, hostTensor, type HostTensor } from '../../src/engine';
import { Rng } from '../../src/model/random';
import type { CorpusRecord } from '../corpus';
import {
  EOT,
  FIM_MIDDLE,
  FIM_PREFIX,
  FIM_SUFFIX,
  IGNORE,
  PAD,
  fimExample,
  type TextCodec,
  type TokenStream,
} from './data';

export interface EvalResult {
  /** Mean negative log-likelihood per predicted token (nats). */
  loss: number;
  /** Fraction of positions whose arg-max token is the target. */
  accuracy: number;
  tokens: number;
}

type Params = Readonly<Record<string, HostTensor>>;

function positionsFor(batch: number, seqLen: number): HostTensor {
  const positions = new BigInt64Array(batch * seqLen);
  for (let i = 0; i < positions.length; i++) positions[i] = BigInt(i % seqLen);
  return hostTensor('int64', [batch, seqLen], positions);
}

/** Runs the eval graph over rows and sums nll/correct where `count(row, t)` is true. */
async function scoreRows(
  session: EngineSession,
  params: Params,
  rows: number[][],
  seqLen: number,
  batchSize: number,
  count: (row: number[], t: number) => boolean,
): Promise<EvalResult> {
  let nll = 0;
  let correct = 0;
  let tokens = 0;
  for (let first = 0; first < rows.length; first += batchSize) {
    const chunk = rows.slice(first, first + batchSize);
    const inputs = new BigInt64Array(chunk.length * seqLen);
    const targets = new BigInt64Array(chunk.length * seqLen);
    chunk.forEach((row, r) => {
      for (let t = 0; t < seqLen; t++) {
        inputs[r * seqLen + t] = BigInt(t < row.length ? row[t] : PAD);
        const target = t + 1 < row.length && count(row, t) ? row[t + 1] : IGNORE;
        targets[r * seqLen + t] = BigInt(target);
      }
    });
    const out = await session.run({
      ...params,
      input_ids: hostTensor('int64', [chunk.length, seqLen], inputs),
      positions: positionsFor(chunk.length, seqLen),
      targets: hostTensor('int64', [chunk.length, seqLen], targets),
    });
    const rowNll = out.nll.data as Float32Array;
    const rowCorrect = out.correct.data as Float32Array;
    for (let i = 0; i < targets.length; i++) {
      if (targets[i] === BigInt(IGNORE)) continue;
      nll += rowNll[i];
      correct += rowCorrect[i];
      tokens++;
    }
  }
  return { loss: nll / Math.max(tokens, 1), accuracy: correct / Math.max(tokens, 1), tokens };
}

/** Non-overlapping left-to-right windows of `seqLen + 1` tokens, at most `maxWindows`. */
export function validationWindows(
  stream: TokenStream,
  seqLen: number,
  maxWindows: number,
): number[][] {
  const rows: number[][] = [];
  for (let start = 0; start + seqLen + 1 <= stream.tokens.length; start += seqLen) {
    if (rows.length >= maxWindows) break;
    rows.push(Array.from(stream.tokens.subarray(start, start + seqLen + 1)));
  }
  return rows;
}

export async function evaluateLeftToRight(
  session: EngineSession,
  params: Params,
  rows: number[][],
  seqLen: number,
  batchSize: number,
): Promise<EvalResult> {
  return scoreRows(session, params, rows, seqLen, batchSize, () => true);
}

/** FIM rows cut from validation documents with a fixed seed: the same rows on every run. */
export function validationFimRows(
  stream: TokenStream,
  codec: TextCodec,
  seqLen: number,
  count: number,
): number[][] {
  const rng = new Rng(20261204, 7);
  const rows: number[][] = [];
  for (let attempt = 0; rows.length < count && attempt < count * 4; attempt++) {
    const position = Math.floor(rng.next() * stream.tokens.length);
    const row = fimExample(stream, codec, position, seqLen + 1, rng);
    if (row) rows.push(row);
  }
  return rows;
}

/** Scores only the middle (and its closing EOT): the tokens a FIM completion produces. */
export async function evaluateFimMiddle(
  session: EngineSession,
  params: Params,
  rows: number[][],
  seqLen: number,
  batchSize: number,
): Promise<EvalResult> {
  return scoreRows(session, params, rows, seqLen, batchSize, (row, t) => {
    const middle = row.indexOf(FIM_MIDDLE);
    return middle !== -1 && t >= middle;
  });
}

/** Greedy decoding with the last-position logits graph, stopping at any special token. */
export async function greedyComplete(
  session: EngineSession,
  params: Params,
  prompt: number[],
  maxNewTokens: number,
  contextLength: number,
): Promise<number[]> {
  const generated: number[] = [];
  for (let i = 0; i < maxNewTokens; i++) {
    const context = [...prompt, ...generated].slice(-contextLength);
    const ids = BigInt64Array.from(context, (id) => BigInt(id));
    const out = await session.run({
      ...params,
      input_ids: hostTensor('int64', [1, context.length], ids),
      positions: positionsFor(1, context.length),
    });
    const logits = out.logits.data as Float32Array;
    let best = 0;
    for (let v = 1; v < logits.length; v++) if (logits[v] > logits[best]) best = v;
    if (best <= PAD) break; // EOT, FIM controls and PAD end a completion.
    generated.push(best);
  }
  return generated;
}

export interface SamplePrompt {
  kind: 'left-to-right' | 'fill-in-the-middle';
  source: string;
  prefix: string;
  suffix: string;
  /** What the file actually contains at the cursor (the held-out truth). */
  truth: string;
}

/**
 * Picks held-out prompts: for left-to-right, a file's text up to the end of a line; for FIM,
 * one non-blank line removed from the middle of a file's opening.
 */
export function samplePrompts(records: readonly CorpusRecord[], perKind: number): SamplePrompt[] {
  const candidates = records.filter(
    (r) =>
      r.text.split('\n').length > 20 &&
      (r.language === 'javascript' || r.language === 'typescript'),
  );
  const rng = new Rng(20261204, 11);
  const picked: CorpusRecord[] = [];
  const used = new Set<string>();
  for (let attempt = 0; picked.length < perKind * 2 && attempt < 1000; attempt++) {
    const record = candidates[Math.floor(rng.next() * candidates.length)];
    if (!record || used.has(record.package)) continue;
    used.add(record.package);
    picked.push(record);
  }
  return picked.map((record, i) => {
    const lines = record.text.split('\n');
    const source = `${record.package}@${record.version}/${record.path}`;
    // A cut after line `at` (1-based count of whole lines kept), past the file's header.
    let at = Math.min(
      lines.length - 4,
      8 + Math.floor(rng.next() * Math.min(30, lines.length - 12)),
    );
    while (at < lines.length - 2 && lines[at].trim() === '') at++;
    const before = lines.slice(0, at).join('\n') + '\n';
    if (i < perKind) {
      const truth = lines.slice(at, at + 4).join('\n');
      return { kind: 'left-to-right', source, prefix: before.slice(-600), suffix: '', truth };
    }
    const after = '\n' + lines.slice(at + 1).join('\n');
    return {
      kind: 'fill-in-the-middle',
      source,
      prefix: before.slice(-400),
      suffix: after.slice(0, 150),
      truth: lines[at],
    };
  });
}

/** Token ids of a prompt in the layout used in training. */
export function promptIds(codec: TextCodec, prompt: SamplePrompt): number[] {
  if (prompt.kind === 'left-to-right') return codec.encode(prompt.prefix);
  return [
    FIM_PREFIX,
    ...codec.encode(prompt.prefix),
    FIM_SUFFIX,
    ...codec.encode(prompt.suffix),
    FIM_MIDDLE,
  ];
}

export { EOT };
