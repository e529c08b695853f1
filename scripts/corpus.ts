/**
 * `npm run corpus`: builds the training corpus of the embedded default model.
 *
 * 1. `npm pack` every package of scripts/corpus/packages.ts (4 at a time).
 * 2. Check the license field of the fetched version; skip packages that are not permissive.
 * 3. Keep hand-written source files (see scripts/corpus/filter.ts).
 * 4. Drop exact and near duplicates across the whole corpus (scripts/corpus/dedup.ts).
 * 5. Split train/validation by file, write JSONL, and write the manifest of every package,
 *    version and license used, with counts of every skip reason.
 *
 * Usage: npm run corpus -- [--out .corpus] [--manifest models/default/corpus-manifest.json]
 *          [--jobs 4] [--max-package-bytes 3000000] [--validation-fraction 0.02] [--only a,b]
 */
import { mkdirSync, readFileSync, writeFileSync, createWriteStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Deduplicator, DEFAULT_DEDUP } from './corpus/dedup';
import { mapLimit, packPackage } from './corpus/fetch';
import { classifyContent, classifyPath, CONTENT_LIMITS } from './corpus/filter';
import { declaredLicense, isAllowedLicense } from './corpus/license';
import { ALLOWED_LICENSES, PACKAGES, PackageSpec } from './corpus/packages';
import { readTarGz } from './corpus/tar';

interface CorpusConfig {
  /** Folder for tarballs and the JSONL splits (gitignored). */
  out: string;
  /** Where the manifest is written. */
  manifest: string;
  /** Parallel `npm pack` processes (at most 4: the machine is shared). */
  jobs: number;
  /** Source bytes kept per package, so no single package dominates. */
  maxPackageBytes: number;
  /** Fraction of files held out for validation, chosen by a hash of package and path. */
  validationFraction: number;
  /** Restrict to these package names (for quick checks). */
  only?: Set<string>;
}

/** One source file as written to train.jsonl / validation.jsonl. */
export interface CorpusRecord {
  package: string;
  version: string;
  path: string;
  language: string;
  text: string;
}

interface PackageReport {
  name: string;
  spec: string;
  version: string;
  license: string;
  files: number;
  bytes: number;
  trainFiles: number;
  validationFiles: number;
  languages: Record<string, number>;
  skipped: Record<string, number>;
}

interface RejectedPackage {
  name: string;
  spec: string;
  version?: string;
  license?: string;
  reason: string;
}

function parseArgs(argv: string[]): CorpusConfig {
  const config: CorpusConfig = {
    out: '.corpus',
    manifest: 'models/default/corpus-manifest.json',
    jobs: 4,
    maxPackageBytes: 3_000_000,
    validationFraction: 0.02,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`corpus: ${flag} needs a value`);
    i++;
    const number = Number(value);
    switch (flag) {
      case '--out':
        config.out = value;
        break;
      case '--manifest':
        config.manifest = value;
        break;
      case '--jobs':
        if (!Number.isInteger(number) || number < 1 || number > 4) {
          throw new Error(`corpus: --jobs ${value} must be an integer from 1 to 4`);
        }
        config.jobs = number;
        break;
      case '--max-package-bytes':
        if (!(number > 0)) throw new Error(`corpus: --max-package-bytes ${value} must be > 0`);
        config.maxPackageBytes = number;
        break;
      case '--validation-fraction':
        if (!(number > 0 && number < 0.5)) {
          throw new Error(`corpus: --validation-fraction ${value} must be in (0, 0.5)`);
        }
        config.validationFraction = number;
        break;
      case '--only':
        config.only = new Set(value.split(','));
        break;
      default:
        throw new Error(
          `corpus: unknown flag ${flag}; allowed: --out, --manifest, --jobs, ` +
            '--max-package-bytes, --validation-fraction, --only',
        );
    }
  }
  return config;
}

/** FNV-1a of the key mapped to [0, 1): a split that is stable across runs and machines. */
export function splitFraction(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 15;
  hash = Math.imul(hash, 0x2c1b3c6d);
  hash ^= hash >>> 12;
  return (hash >>> 0) / 2 ** 32;
}

function selectedPath(spec: PackageSpec, path: string): string | undefined {
  const prefixes = spec.include ?? [''];
  if (spec.exclude?.some((prefix) => path.startsWith(prefix))) return undefined;
  for (const prefix of prefixes) {
    if (prefix === '' || path === prefix || (prefix.endsWith('/') && path.startsWith(prefix))) {
      return path.slice(prefix.endsWith('/') ? prefix.length : 0) || path;
    }
  }
  return undefined;
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

async function main(): Promise<void> {
  const config = parseArgs(process.argv.slice(2));
  const tarballs = resolve(config.out, 'tarballs');
  mkdirSync(tarballs, { recursive: true });
  const specs = PACKAGES.filter((spec) => !config.only || config.only.has(spec.name));
  if (config.only && specs.length !== config.only.size) {
    const known = new Set(PACKAGES.map((spec) => spec.name));
    const unknown = [...config.only].filter((name) => !known.has(name));
    throw new Error(
      `corpus: --only names not in scripts/corpus/packages.ts: ${unknown.join(', ')}`,
    );
  }

  const started = Date.now();
  const packed = await mapLimit(specs, config.jobs, async (spec) => {
    try {
      const tarball = await packPackage(spec.name, spec.spec, tarballs);
      process.stdout.write(`fetched ${tarball.id}\n`);
      return tarball;
    } catch (error) {
      process.stdout.write(`FAILED ${spec.name}@${spec.spec}: ${(error as Error).message}\n`);
      return error as Error;
    }
  });
  process.stdout.write(`fetched ${specs.length} packages in ${(Date.now() - started) / 1000}s\n`);

  const dedup = new Deduplicator();
  const reports: PackageReport[] = [];
  const rejected: RejectedPackage[] = [];
  const trainPath = join(config.out, 'train.jsonl');
  const validationPath = join(config.out, 'validation.jsonl');
  const train = createWriteStream(trainPath);
  const validation = createWriteStream(validationPath);
  let nextId = 0;
  const totals = {
    files: 0,
    bytes: 0,
    trainFiles: 0,
    trainBytes: 0,
    validationFiles: 0,
    validationBytes: 0,
  };
  const skippedTotals: Record<string, number> = {};

  specs.forEach((spec, index) => {
    const tarball = packed[index];
    if (tarball instanceof Error) {
      rejected.push({ name: spec.name, spec: spec.spec, reason: tarball.message });
      return;
    }
    const entries = readTarGz(readFileSync(tarball.file), tarball.file);
    const packageJson = entries.find((entry) => entry.path === 'package.json');
    if (!packageJson) {
      rejected.push({ name: spec.name, spec: spec.spec, reason: 'tarball has no package.json' });
      return;
    }
    const manifest = JSON.parse(packageJson.data.toString('utf8')) as Record<string, unknown>;
    const version = String(manifest.version);
    const license = declaredLicense(manifest);
    if (license === undefined || !isAllowedLicense(license)) {
      rejected.push({
        name: spec.name,
        spec: spec.spec,
        version,
        license: license ?? '(none)',
        reason: `license ${license ?? '(none)'} is not one of ${[...ALLOWED_LICENSES].join(', ')}`,
      });
      return;
    }
    const report: PackageReport = {
      name: spec.name,
      spec: spec.spec,
      version,
      license,
      files: 0,
      bytes: 0,
      trainFiles: 0,
      validationFiles: 0,
      languages: {},
      skipped: {},
    };
    const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    for (const entry of sorted) {
      const relative = selectedPath(spec, entry.path);
      if (relative === undefined) continue;
      const byPath = classifyPath(relative, spec.keepDeclarations ?? false);
      if (!byPath.keep) {
        bump(report.skipped, byPath.reason);
        continue;
      }
      const byContent = classifyContent(entry.data);
      if (!('text' in byContent)) {
        bump(report.skipped, byContent.keep ? 'unknown' : byContent.reason);
        continue;
      }
      if (report.bytes + entry.data.length > config.maxPackageBytes) {
        bump(report.skipped, 'package byte cap');
        continue;
      }
      const id = nextId++;
      const verdict = dedup.check(byContent.text, id);
      if (verdict.duplicate) {
        bump(report.skipped, verdict.kind);
        continue;
      }
      const record: CorpusRecord = {
        package: spec.name,
        version,
        path: entry.path,
        language: byPath.language,
        text: byContent.text,
      };
      const isValidation = splitFraction(`${spec.name}/${entry.path}`) < config.validationFraction;
      (isValidation ? validation : train).write(JSON.stringify(record) + '\n');
      report.files++;
      report.bytes += entry.data.length;
      bump(report.languages, byPath.language);
      if (isValidation) {
        report.validationFiles++;
        totals.validationFiles++;
        totals.validationBytes += entry.data.length;
      } else {
        report.trainFiles++;
        totals.trainFiles++;
        totals.trainBytes += entry.data.length;
      }
    }
    totals.files += report.files;
    totals.bytes += report.bytes;
    for (const [reason, count] of Object.entries(report.skipped))
      skippedTotals[reason] = (skippedTotals[reason] ?? 0) + count;
    reports.push(report);
    process.stdout.write(
      `${spec.name}@${version} ${license}: kept ${report.files} files, ${report.bytes} bytes\n`,
    );
  });
  await Promise.all([
    new Promise((done) => train.end(done)),
    new Promise((done) => validation.end(done)),
  ]);

  const manifest = {
    description:
      'Corpus of the embedded default model: hand-written source from permissively licensed ' +
      'npm packages. Built by `npm run corpus` (scripts/corpus.ts).',
    allowedLicenses: [...ALLOWED_LICENSES],
    config: {
      maxPackageBytes: config.maxPackageBytes,
      validationFraction: config.validationFraction,
      contentLimits: CONTENT_LIMITS,
      dedup: DEFAULT_DEDUP,
    },
    totals: { ...totals, packages: reports.length, rejectedPackages: rejected.length },
    skippedFiles: skippedTotals,
    packages: reports,
    rejectedPackages: rejected,
  };
  mkdirSync(dirname(config.manifest), { recursive: true });
  writeFileSync(config.manifest, JSON.stringify(manifest, null, 2) + '\n');
  process.stdout.write(
    `corpus: ${reports.length} packages, ${totals.files} files, ${totals.bytes} bytes ` +
      `(train ${totals.trainFiles} files ${totals.trainBytes} B, validation ` +
      `${totals.validationFiles} files ${totals.validationBytes} B); ` +
      `${rejected.length} packages rejected; manifest ${config.manifest}\n`,
  );
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`corpus: ${error.message}\n`);
    process.exit(1);
  });
}
