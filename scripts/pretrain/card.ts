/**
 * Writes models/default/MODEL_CARD.md from the run's measured numbers: data sources and
 * licenses (from the corpus manifest), the exact command and config, the loss curve (from the
 * metrics JSONL), held-out evaluation and sample completions. Nothing in it is typed by hand.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { PretrainConfig } from '../pretrain';
import type { EvalResult, SamplePrompt } from './evaluate';
import type { ModelShape } from './model';

export interface CardSample extends SamplePrompt {
  completion: string;
}

export interface CardInputs {
  config: PretrainConfig;
  shape: ModelShape;
  parameters: number;
  command: string;
  metricsFile: string;
  manifestFile: string;
  trainTokensAvailable: number;
  validationTokens: number;
  leftToRight: EvalResult;
  fim: EvalResult;
  samples: CardSample[];
  steps: number;
  tokens: number;
  trainSeconds: number;
  evalSeconds: number;
  stopReason: string;
}

interface ManifestPackage {
  name: string;
  version: string;
  license: string;
  files: number;
  bytes: number;
}

interface Manifest {
  totals: Record<string, number>;
  packages: ManifestPackage[];
  rejectedPackages: { name: string; version?: string; license?: string; reason: string }[];
}

const percent = (x: number) => `${(x * 100).toFixed(2)}%`;

/** A fence longer than any backtick run in the text, so code never closes it early. */
function fenced(text: string, language = ''): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${language}\n${text}${text.endsWith('\n') ? '' : '\n'}${fence}`;
}

function lossCurve(metricsFile: string, rows: number): string {
  const train = new Map<number, number>();
  const evals = new Map<number, number>();
  for (const line of readFileSync(metricsFile, 'utf8').split('\n')) {
    if (!line) continue;
    const entry = JSON.parse(line) as {
      kind: string;
      step: number;
      loss?: number;
      valLoss?: number;
    };
    if (entry.kind === 'train' && entry.loss !== undefined) train.set(entry.step, entry.loss);
    if (entry.kind === 'eval' && entry.valLoss !== undefined) evals.set(entry.step, entry.valLoss);
  }
  const last = Math.max(0, ...train.keys());
  const every = Math.max(1, Math.ceil(last / rows));
  const lines = [
    '| step | train loss (mean of the last steps) | validation loss |',
    '| ---: | ---: | ---: |',
  ];
  for (let step = every; step <= last + every - 1; step += every) {
    const end = Math.min(step, last);
    const window = [...train].filter(([s]) => s > end - every && s <= end).map(([, l]) => l);
    const mean = window.reduce((a, b) => a + b, 0) / Math.max(window.length, 1);
    const nearestEval = [...evals.keys()].filter((s) => s <= end && s > end - every).pop();
    const val = nearestEval === undefined ? '' : (evals.get(nearestEval) as number).toFixed(4);
    lines.push(`| ${end} | ${mean.toFixed(4)} | ${val} |`);
    if (end === last) break;
  }
  return lines.join('\n');
}

export function writeModelCard(file: string, inputs: CardInputs): void {
  const manifest = JSON.parse(readFileSync(inputs.manifestFile, 'utf8')) as Manifest;
  const { config, shape, leftToRight, fim } = inputs;
  const licenses = new Map<string, number>();
  for (const p of manifest.packages) licenses.set(p.license, (licenses.get(p.license) ?? 0) + 1);
  const reached = leftToRight.accuracy >= 0.4;
  const packageRows = manifest.packages
    .filter((p) => p.files > 0)
    .map((p) => `| ${p.name} | ${p.version} | ${p.license} | ${p.files} | ${p.bytes} |`);
  const samples = inputs.samples.map((sample, i) => {
    const promptTail = sample.prefix.split('\n').slice(-6).join('\n');
    const parts = [
      `### ${i + 1}. ${sample.kind}: \`${sample.source}\``,
      '',
      'End of the prompt (prefix):',
      '',
      fenced(promptTail),
    ];
    if (sample.kind === 'fill-in-the-middle') {
      parts.push(
        '',
        'Start of the suffix:',
        '',
        fenced(sample.suffix.split('\n').slice(0, 4).join('\n')),
      );
    }
    parts.push(
      '',
      'Model completion (greedy, at most 48 tokens):',
      '',
      fenced(sample.completion === '' ? '(empty: the model ended immediately)' : sample.completion),
      '',
      'What the file actually has here:',
      '',
      fenced(sample.truth),
    );
    return parts.join('\n');
  });
  const text = `# Default model: code-rlhf-default (${(inputs.parameters / 1e6).toFixed(2)}M parameters)

A small Llama-style code model trained by this project, on its own tensor engine
(onnxruntime-node, graphs and autodiff built in TypeScript), on permissively licensed source
from npm. It ships inside the extension so completions work offline with no download.

## Quality, stated plainly

- Held-out next-token top-1 accuracy: **${percent(leftToRight.accuracy)}** (validation loss
  ${leftToRight.loss.toFixed(4)} nats/token over ${leftToRight.tokens} tokens).
- The issue's bar is top-1 >= 40%: **${reached ? 'reached' : 'not reached'}** by this run.
- Fill-in-the-middle: top-1 accuracy on the middle tokens of held-out FIM examples is
  ${percent(fim.accuracy)} (loss ${fim.loss.toFixed(4)} over ${fim.tokens} tokens).
- Training was time-boxed: ${inputs.steps} steps, ${inputs.tokens} tokens
  (${(inputs.tokens / inputs.trainTokensAvailable).toFixed(2)} passes over the training split),
  ${(inputs.trainSeconds / 60).toFixed(1)} min of training on a 2-core machine shared with other
  work; stopped because: ${inputs.stopReason}.
- A model this small, trained this briefly, is a working default for the product's loop, not a
  useful code assistant. Read the samples below before relying on it; any Hugging Face
  Llama-family model can replace it through the \`codeRlhf.modelPath\` setting.

## Files

| File | What |
| --- | --- |
| \`config.json\` | \`LlamaForCausalLM\`, tied embeddings, no biases |
| \`generation_config.json\` | EOS \`<|endoftext|>\` (id 0), PAD \`<|pad|>\` (id 4) |
| \`model.safetensors\` | weights in F16 (trained in F32) |
| \`tokenizer.json\`, \`tokenizer_config.json\` | byte-level BPE trained by \`scripts/tokenizer/main.ts\` |
| \`corpus-manifest.json\` | every package, version, license and file count of the corpus |

## Architecture

| Field | Value |
| --- | --- |
| layers | ${shape.numLayers} |
| hidden size | ${shape.hiddenSize} |
| attention heads | ${shape.numHeads} (head dim ${shape.hiddenSize / shape.numHeads}, no GQA) |
| MLP | SwiGLU, intermediate size ${shape.intermediateSize} |
| norm | RMSNorm, eps ${shape.rmsNormEps} |
| positions | RoPE, theta ${shape.ropeTheta} |
| context | ${shape.contextLength} tokens |
| vocabulary | ${shape.vocabSize} (byte-level BPE) |
| parameters | ${inputs.parameters} (embedding tied with the output head) |

## Tokenizer

Byte-level BPE with 4096 tokens trained on a ~12 MB sample of the training split: ids 0-4 are
\`<|endoftext|>\`, \`<|fim_prefix|>\`, \`<|fim_middle|>\`, \`<|fim_suffix|>\`, \`<|pad|>\`; ids 5-260 the
256 bytes; the rest are merges. Pre-tokenization keeps a newline together with the next line's
indentation and gives a word its leading space; there is no normalizer and no decode cleanup, so
text round-trips byte for byte (tabs, CRLF, runs of spaces, unicode, emoji; see
\`test/unit/tokenizerTrainer\`).

## Training data

Built by \`npm run corpus\` (\`scripts/corpus.ts\`, package list in \`scripts/corpus/packages.ts\`):
${manifest.totals.packages} npm packages fetched with \`npm pack\`; the license field of each fetched
version was checked (accepted: MIT, Apache-2.0, BSD-2-Clause, BSD-3-Clause, ISC, 0BSD, or an OR
expression with one of them). Kept: hand-written JavaScript, TypeScript and Python source; skipped:
build folders, minified, bundled, transpiled and generated files, declaration files (except
\`@types/node\`, whose declarations are hand-written), data-like files. Exact duplicates
(normalized SHA-256) and near duplicates (MinHash, Jaccard >= 0.85) were removed; files were split
train/validation by a hash of package and path.

- ${manifest.totals.files} files, ${manifest.totals.bytes} bytes; train ${manifest.totals.trainFiles} files
  (${inputs.trainTokensAvailable} tokens), validation ${manifest.totals.validationFiles} files
  (${inputs.validationTokens} tokens).
- Licenses: ${[...licenses].map(([license, count]) => `${license} (${count} packages)`).join(', ')}.
- Packages refused by the license check: ${
    manifest.rejectedPackages.length === 0
      ? 'none in this build (the list was edited to drop packages refused earlier).'
      : manifest.rejectedPackages
          .map((p) => `${p.name}@${p.version ?? '?'} (${p.license ?? p.reason})`)
          .join(', ')
  }

<details><summary>All ${packageRows.length} packages used</summary>

| package | version | license | files | bytes |
| --- | --- | --- | ---: | ---: |
${packageRows.join('\n')}

</details>

## Training

Command (after \`npm run corpus\` and \`npx tsx scripts/tokenizer/main.ts\`):

${fenced(inputs.command, 'sh')}

Config:

${fenced(JSON.stringify(config, null, 2), 'json')}

Objective: next-token cross-entropy on every position. ${percent(config.fimRate)} of rows are
fill-in-the-middle examples in PSM order (Bavarian et al. 2022): a document window is cut at two
random character positions, each moved to where an editor cursor usually stands (45% to the
start of its line, 35% out of the word it splits, 20% left where it fell; \`editorCut\` in
\`scripts/pretrain/data.ts\`), and laid out as
\`<|fim_prefix|>prefix<|fim_suffix|>suffix<|fim_middle|>middle<|endoftext|>\`; the other rows are
left-to-right windows of the concatenated training files (each followed by \`<|endoftext|>\`).
AdamW (beta1 0.9, beta2 ${config.beta2}, weight decay ${config.weightDecay} on matrices), linear
warmup over ${config.warmupSteps} steps then cosine decay from ${config.learningRate} to
${config.minLearningRate} that follows the run's progress (the larger of the fraction of
${config.maxMinutes} min spent and the fraction of ${config.steps} steps done; see
\`scripts/pretrain/timedTrainer.ts\`), so it ends when the time box does; gradient-norm clip
${config.maxGradNorm};
batch ${config.batchSize} x ${config.seqLen} tokens. The run resumes from
\`${config.runDir}/checkpoint.safetensors\` when restarted with the same flags.

### Loss curve

${lossCurve(inputs.metricsFile, 24)}

## Evaluation (held-out validation files)

| Measure | Value |
| --- | --- |
| validation loss (left-to-right, all windows) | ${leftToRight.loss.toFixed(4)} nats/token |
| next-token top-1 accuracy (left-to-right) | ${percent(leftToRight.accuracy)} |
| tokens scored | ${leftToRight.tokens} |
| FIM middle loss | ${fim.loss.toFixed(4)} nats/token |
| FIM middle top-1 accuracy | ${percent(fim.accuracy)} |
| FIM tokens scored | ${fim.tokens} (128 examples, fixed seed) |
| evaluation + sampling time | ${inputs.evalSeconds.toFixed(0)} s |

## Sample completions (held-out files)

Greedy decoding, stopped at any control token or after 48 tokens. Prompts come from validation
files the model never trained on.

${samples.join('\n\n')}
`;
  writeFileSync(file, text);
}
