/**
 * `code-rlhf train rm|ppo|dpo`, `code-rlhf eval` and `code-rlhf demo`: the training pipeline
 * headless. Training runs the same job runners as the model host, in this process (the CLI is
 * already a process of its own), printing one fixed-format line per step; Ctrl-C cancels at the
 * next step boundary and keeps the last checkpoint for `--resume`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { compareAdapterFolders } from '../host/evaluation';
import { runTrainingJob, type TrainingEvent, type TrainingKind } from '../host/trainingHandlers';
import { createTrainingRunners } from '../host/trainingRunners';
import {
  DPO_DEFAULTS,
  DPO_SPEC,
  PPO_DEFAULTS,
  PPO_SPEC,
  RM_DEFAULTS,
  RM_SPEC,
  SAMPLING_SPEC,
  describeConfig,
  numberOutOfRange,
  type ConfigSpec,
  type NumberFieldSpec,
} from '../rlhf/config';
import { DEMO_DEFAULTS, formatDemoReport, runDemo, type DemoConfig } from '../rlhf/demo';
import { DPO_RESUME } from '../rlhf/dpo';
import {
  ADAPTER_FOLDER,
  MODEL_FOLDER,
  REWARD_MODEL_FOLDER,
  assertInputPath,
  type InputPath,
} from '../rlhf/inputPaths';
import { Oracle, resolveOracleRule } from '../rlhf/oracle';
import { PPO_RESUME } from '../rlhf/ppo';
import { GATE_DEFAULTS, GATE_SPEC } from '../rlhf/promotionGate';
import { cutPrompts, readCodeSources } from '../rlhf/prompts';
import { RM_RESUME } from '../rlhf/rewardModel';
import { directContext } from '../rlhf/trainerContext';
import { formatWinRate } from '../rlhf/winRate';
import { UsageError, parseArgs, type CliCommand, type CliIo, type ParsedArgs } from './args';

const SPECS: Record<TrainingKind, { spec: ConfigSpec<object>; defaults: object }> = {
  rm: { spec: RM_SPEC as ConfigSpec<object>, defaults: RM_DEFAULTS },
  ppo: { spec: PPO_SPEC as ConfigSpec<object>, defaults: PPO_DEFAULTS },
  dpo: { spec: DPO_SPEC as ConfigSpec<object>, defaults: DPO_DEFAULTS },
  gate: { spec: GATE_SPEC as ConfigSpec<object>, defaults: GATE_DEFAULTS },
};

const TRAIN_USAGE = [
  'usage: code-rlhf train rm|ppo|dpo --modelDir <dir> --dataFile <store.jsonl> --run-dir <dir>',
  '         [--resume] [--config <file.json>] [--<key> <value> ...]',
  '  ppo also needs --rewardModelDir <run-dir>/reward-model (from train rm).',
  '       code-rlhf train gate --modelDir <dir> --rewardModelDir <dir> --adapterDir <dir>',
  '         --run-dir <dir> [--baselineAdapterDir <dir>]',
  '  gate: the promotion gate (reward-model win rate against the base or --baselineAdapterDir',
  '  on the prompts both trainers held out, and KL); prints promote or keep, and why.',
  '  --resume (rm, ppo, dpo) continues from the last checkpoint in --run-dir, with the same',
  "  data and the checkpoint's config except these keys (any other change is refused):",
  `    rm: ${RM_RESUME.mayChange.join(', ')}`,
  `    dpo: ${DPO_RESUME.mayChange.join(', ')}`,
  `    ppo: ${PPO_RESUME.mayChange.join(', ')}`,
];

/** Every key of the trainer `kind`: name, type, help and default, from its config spec. */
function kindKeys(kind: TrainingKind): string[] {
  return [`${kind} keys:`, ...describeConfig(SPECS[kind].spec, SPECS[kind].defaults)];
}

/** `train --help`: the usage and the keys of every trainer; with `kind`, of that one only. */
function trainHelp(kind?: TrainingKind): string {
  const kinds = kind ? [kind] : (['rm', 'ppo', 'dpo', 'gate'] as const);
  return [
    'code-rlhf train: train on a preference store',
    '',
    ...TRAIN_USAGE,
    '',
    ...kinds.flatMap((k) => [...kindKeys(k), '']),
  ].join('\n');
}

const isHelp = (arg: string) => arg === '--help' || arg === '-h';

/** A decimal number: optional sign, digits with an optional point, optional exponent. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * The number given as `--name raw`. An empty value (`--count=`) is refused, not read as
 * Number("") = 0: the user left the value out, and 0 is rarely what was meant. So are the
 * spellings Number() also reads (0x10, 0b1, 0o7, Infinity): a typo is likelier than hex.
 */
function parseNumber(name: string, raw: string): number {
  const n = Number(raw);
  if (!DECIMAL.test(raw.trim()) || !Number.isFinite(n)) {
    throw new UsageError(
      `--${name} needs a number, got ${JSON.stringify(raw)}; allowed: a finite decimal number ` +
        '(such as 2, -0.5 or 1e-4)',
    );
  }
  return n;
}

function coerce(kind: TrainingKind, key: string, raw: string): unknown {
  const field = (SPECS[kind].spec as Record<string, { kind: string }>)[key];
  if (field?.kind === 'number') return parseNumber(key, raw);
  if (field?.kind === 'boolean') {
    if (raw !== 'true' && raw !== 'false')
      throw new UsageError(`--${key} needs true or false, got ${JSON.stringify(raw)}`);
    return raw === 'true';
  }
  return raw;
}

/** Refuses an input path given as a flag, before any work, as a bad command line (exit 2). */
function assertInputFlag(input: InputPath): void {
  assertInputPath(input, (message) => new UsageError(message));
}

/** What --prompts reads, for messages. */
const PROMPT_SOURCE = 'a corpus split (.jsonl of {"text": ...} lines) or a folder of code';

/** Reads a `--config` file: a JSON object of trainer keys (checked by the trainer's spec). */
function readConfigFile(file: string): Record<string, unknown> {
  assertInputFlag({
    label: '--config',
    target: file,
    kind: 'file',
    expected: 'a JSON file of config keys (such as {"epochs": 2})',
  });
  let parsed: unknown;
  try {
    // Editors on Windows may save a byte order mark, which JSON.parse refuses as a token.
    parsed = JSON.parse(fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new UsageError(`--config ${file}: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    const got = Array.isArray(parsed) ? 'an array' : JSON.stringify(parsed);
    throw new UsageError(
      `--config ${file}: expected a JSON object of config keys (such as {"epochs": 2}), ` +
        `got ${got.length > 60 ? `${got.slice(0, 60)}...` : got}`,
    );
  }
  return parsed as Record<string, unknown>;
}

/** The number given as `--name`, or undefined when the option is absent. */
function numberOption(args: ParsedArgs, name: string): number | undefined {
  const v = args.options.get(name);
  return typeof v === 'string' ? parseNumber(name, v) : undefined;
}

/** The number given as `--name` (else `fallback`), refused with `field`'s range when outside it. */
function checkedNumberOption(
  args: ParsedArgs,
  name: string,
  field: NumberFieldSpec,
  fallback: number,
): number {
  const value = numberOption(args, name) ?? fallback;
  const allowed = numberOutOfRange(value, field);
  if (allowed !== undefined) throw new UsageError(`--${name} is ${value}; allowed: ${allowed}`);
  return value;
}

/**
 * Most prompts eval compares. The win rate's 95% interval is about +-1 point at 10000 prompts
 * (1.96 x sqrt(0.25 / n)): more cannot change a verdict, and each prompt costs two samples.
 */
const MAX_EVAL_PROMPTS = 10_000;

/** eval's number flags: the trainers' ranges for the settings they share with PPO and the gate. */
const EVAL_NUMBERS: Record<string, NumberFieldSpec> = {
  // Zero prompts would report a mean KL of 0 over no completions.
  count: { kind: 'number', integer: true, min: 1, max: MAX_EVAL_PROMPTS, help: 'prompts' },
  seed: RM_SPEC.seed as NumberFieldSpec,
  temperature: SAMPLING_SPEC.temperature as NumberFieldSpec,
  'max-new-tokens': SAMPLING_SPEC.maxNewTokens as NumberFieldSpec,
  'max-lines': SAMPLING_SPEC.maxLines as NumberFieldSpec,
};

/** A trainer's log line: warnings and errors on stderr, the rest on stdout. */
function printLog(io: CliIo, level: string, message: string): void {
  (level === 'error' || level === 'warn' ? io.err : io.out)(`[${level}] ${message}`);
}

function printEvent(io: CliIo, event: TrainingEvent): void {
  if (event.type === 'train/log') {
    printLog(io, event.level, event.message);
  } else if (event.type === 'train/checkpoint') {
    io.out(`[checkpoint] step ${event.step}: ${event.path}`);
  } else if (event.type === 'train/done') {
    // Not the failure's message: runTrainingJob logged it just before, as the [error] line (with
    // the stack trace when internal or --verbose), and printed twice it reads as two failures.
    io.out(
      `[done] ${event.status}` +
        `${event.outputPath ? ` -> ${event.outputPath}` : ''}` +
        `${event.summary ? ` ${JSON.stringify(event.summary)}` : ''}`,
    );
    if (event.decision) {
      io.out(`[gate] ${event.decision.promote ? 'promote' : 'keep'}: ${event.decision.reason}`);
    }
  }
}

/** Cancels on the first Ctrl-C; returns a function that removes the handler. */
function cancelOnInterrupt(controller: AbortController, io: CliIo): () => void {
  const onSignal = () => {
    io.err('cancelling at the next step boundary (the last checkpoint is kept for --resume)');
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  return () => process.removeListener('SIGINT', onSignal);
}

export const trainCommand: CliCommand = {
  name: 'train',
  summary: 'train a reward model, or the policy with PPO or DPO, on a preference store',
  async run(argv, io) {
    const [kindArg, ...rest] = argv;
    if (kindArg === undefined || isHelp(kindArg)) {
      io.out(trainHelp());
      return kindArg === undefined ? 2 : 0;
    }
    if (!(kindArg in SPECS))
      throw new UsageError(
        `unknown trainer ${JSON.stringify(kindArg)}; allowed: rm, ppo, dpo, gate`,
      );
    const kind = kindArg as TrainingKind;
    if (rest.some(isHelp)) {
      io.out(trainHelp(kind));
      return 0;
    }
    const keys = Object.keys(SPECS[kind].spec);
    const args = parseArgs(rest, ['run-dir', 'config', ...keys], ['resume']);
    const runDir = args.options.get('run-dir');
    if (typeof runDir !== 'string') throw new UsageError('--run-dir <dir> is required');
    // path.resolve would turn "" into the current folder, and the run would write all over it.
    if (runDir.trim() === '') throw new UsageError('--run-dir is empty; name a folder for the run');
    const configFile = args.options.get('config');
    const config = typeof configFile === 'string' ? readConfigFile(configFile) : {};
    for (const key of keys) {
      const raw = args.options.get(key);
      if (typeof raw === 'string') config[key] = coerce(kind, key, raw);
    }
    const controller = new AbortController();
    const removeHandler = cancelOnInterrupt(controller, io);
    try {
      const done = await runTrainingJob(
        {
          type: 'train/start',
          jobId: `cli-${kind}`,
          kind,
          runDir: path.resolve(runDir),
          resume: args.options.has('resume'),
          config,
        },
        createTrainingRunners()[kind],
        (event) => printEvent(io, event),
        controller.signal,
        (work) => work(),
        { verbose: io.verbose },
      );
      return done.status === 'failed' ? 1 : done.status === 'cancelled' ? 130 : 0;
    } finally {
      removeHandler();
    }
  },
};

const EVAL_HELP = `code-rlhf eval: blind comparison of a tuned adapter against the base (or another
adapter)

usage: code-rlhf eval --model <dir> --adapter <peft dir> --prompts <corpus.jsonl | code dir>
         [--baseline <peft dir>] [--reward-model <dir>]
         [--oracle clean-code|short-lines|context-words|complete-line|<rule.js>]
         [--count 100] [--seed 7] [--temperature 1] [--max-new-tokens 16] [--max-lines 1]
Prints the tuned model's win rate with a 95% interval and the mean KL against the base.`;

export const evalCommand: CliCommand = {
  name: 'eval',
  summary: 'compare a tuned adapter with the base on unseen prompts (win rate, KL)',
  async run(argv, io) {
    if (argv.some(isHelp)) {
      io.out(EVAL_HELP);
      return 0;
    }
    const args = parseArgs(
      argv,
      [
        'model',
        'adapter',
        'baseline',
        'prompts',
        'oracle',
        'reward-model',
        'count',
        'seed',
        'temperature',
        'max-new-tokens',
        'max-lines',
      ],
      [],
    );
    const need = (name: string) => {
      const v = args.options.get(name);
      if (typeof v !== 'string') throw new UsageError(`--${name} is required\n\n${EVAL_HELP}`);
      return v;
    };
    const num = (name: string, fallback: number) =>
      checkedNumberOption(args, name, EVAL_NUMBERS[name], fallback);
    const modelDir = need('model');
    const adapterDir = need('adapter');
    const baselineDir = args.options.get('baseline');
    const promptSource = need('prompts');
    const rmDir = args.options.get('reward-model');
    // Before the model loads (compareAdapterFolders), and naming the flag, not a loader's file.
    const inputs: [string, string | true | undefined, InputPath['kind'], string, string?][] = [
      ['--model', modelDir, 'folder', MODEL_FOLDER, 'config.json'],
      ['--adapter', adapterDir, 'folder', ADAPTER_FOLDER, 'adapter_config.json'],
      ['--baseline', baselineDir, 'folder', ADAPTER_FOLDER, 'adapter_config.json'],
      ['--reward-model', rmDir, 'folder', REWARD_MODEL_FOLDER],
      ['--prompts', promptSource, 'file or folder', PROMPT_SOURCE],
    ];
    for (const [label, target, kind, expected, holds] of inputs) {
      if (typeof target === 'string') assertInputFlag({ label, target, kind, expected, holds });
    }
    const seed = num('seed', 7);
    const count = num('count', 100);
    const temperature = num('temperature', 1);
    const maxNewTokens = num('max-new-tokens', 16);
    const maxLines = num('max-lines', 1);
    const prompts = cutPrompts(readCodeSources(promptSource), count, seed).map((p) => p.prompt);
    const oracleName = args.options.get('oracle');
    const oracle =
      typeof oracleName === 'string'
        ? new Oracle(resolveOracleRule(oracleName), { seed })
        : undefined;
    const report = await compareAdapterFolders({
      modelDir,
      adapterDir,
      baselineAdapterDir: typeof baselineDir === 'string' ? baselineDir : undefined,
      rewardModelDir: typeof rmDir === 'string' ? rmDir : undefined,
      oracle,
      prompts,
      settings: {
        temperature,
        maxNewTokens,
        maxLines,
        maxPromptTokens: 96,
        maxCompletionTokens: maxNewTokens + 1,
        seed,
      },
      ctx: directContext({
        onLog: (level, message) => {
          if (level === 'warn' || level === 'error') io.err(`[${level}] ${message}`);
        },
      }),
    });
    io.out(`prompts: ${report.prompts}`);
    if (report.oracleWinRate)
      io.out(`oracle win rate (tuned): ${formatWinRate(report.oracleWinRate)}`);
    if (report.rewardWinRate)
      io.out(`reward-model win rate (tuned): ${formatWinRate(report.rewardWinRate)}`);
    io.out(`mean KL per completion: ${report.meanKl.toFixed(4)} nats`);
    if (!oracle && typeof rmDir !== 'string')
      io.err('no judge given: pass --oracle and/or --reward-model for a win rate');
    return 0;
  },
};

const DEMO_HELP = `code-rlhf demo: the whole loop with a simulated annotator

usage: code-rlhf demo [--model <dir>] [--prompts <corpus.jsonl | code dir>]
         [--oracle <name | rule.js>] [--noise 0.1] [--position-bias 0] [--judgments 400]
         [--eval-prompts 200] [--iterations N] [--rm-epochs N] [--work-dir <dir>] [--seed 1] [--json]
Defaults: --model models/default, --prompts .corpus/validation.jsonl (held-out code), else src/.`;

export const demoCommand: CliCommand = {
  name: 'demo',
  summary: 'run judgments -> reward model -> PPO -> blind evaluation with a simulated annotator',
  async run(argv, io) {
    if (argv.some(isHelp)) {
      io.out(DEMO_HELP);
      return 0;
    }
    const args = parseArgs(
      argv,
      [
        'model',
        'prompts',
        'oracle',
        'noise',
        'position-bias',
        'judgments',
        'eval-prompts',
        'iterations',
        'rm-epochs',
        'work-dir',
        'seed',
        'max-new-tokens',
      ],
      ['json'],
    );
    const opt = (name: string) => {
      const v = args.options.get(name);
      return typeof v === 'string' ? v : undefined;
    };
    const num = (name: string) => numberOption(args, name);
    const modelDir = opt('model') ?? 'models/default';
    assertInputFlag({
      label: opt('model') === undefined ? '--model (default)' : '--model',
      target: modelDir,
      kind: 'folder',
      expected:
        opt('model') === undefined
          ? `${MODEL_FOLDER}: is the default model trained yet? Or pass --model <folder>`
          : MODEL_FOLDER,
      holds: 'config.json',
    });
    const promptSource =
      opt('prompts') ??
      (fs.existsSync('.corpus/validation.jsonl') ? '.corpus/validation.jsonl' : 'src');
    // Before the demo makes its work dir and loads the model, which it does before reading them.
    assertInputFlag({
      label: '--prompts',
      target: promptSource,
      kind: 'file or folder',
      expected: PROMPT_SOURCE,
    });
    // path.resolve would turn "" into the current folder, and the demo would write all over it.
    if (opt('work-dir')?.trim() === '') {
      throw new UsageError(
        '--work-dir is empty; name a folder for the run (left out, each run gets a new one)',
      );
    }
    const iterations = num('iterations');
    const rmEpochs = num('rm-epochs');
    const config: DemoConfig = {
      ...DEMO_DEFAULTS,
      modelDir,
      promptSource,
      workDir: path.resolve(opt('work-dir') ?? path.join('.demo', `run-${Date.now()}`)),
      oracle: opt('oracle') ?? DEMO_DEFAULTS.oracle,
      labelNoise: num('noise') ?? DEMO_DEFAULTS.labelNoise,
      positionBias: num('position-bias') ?? DEMO_DEFAULTS.positionBias,
      judgments: num('judgments') ?? DEMO_DEFAULTS.judgments,
      evalPrompts: num('eval-prompts') ?? DEMO_DEFAULTS.evalPrompts,
      seed: num('seed') ?? DEMO_DEFAULTS.seed,
      maxNewTokens: num('max-new-tokens') ?? DEMO_DEFAULTS.maxNewTokens,
      rm: { ...DEMO_DEFAULTS.rm, ...(rmEpochs !== undefined ? { epochs: rmEpochs } : {}) },
      ppo: { ...DEMO_DEFAULTS.ppo, ...(iterations !== undefined ? { iterations } : {}) },
    };
    io.out(`demo: model ${modelDir}, prompts from ${promptSource}, work dir ${config.workDir}`);
    const controller = new AbortController();
    const removeHandler = cancelOnInterrupt(controller, io);
    try {
      const report = await runDemo(
        config,
        directContext({
          signal: controller.signal,
          onLog: (level, message) => printLog(io, level, message),
        }),
        (line) => io.out(line),
      );
      io.out(args.options.has('json') ? JSON.stringify(report, null, 2) : formatDemoReport(report));
      return 0;
    } finally {
      removeHandler();
    }
  },
};
