/**
 * Keeps ARCHITECTURE.md's module table ("Modules (`src/`), and who may import whom") true: every
 * import in src/ and webview/ (type-only ones, re-exports, `import()` and `require()` included)
 * is resolved to the module folder it lands in and checked against the table; `vscode` and
 * `onnxruntime-node` each belong to one module; and the modules import each other without a
 * cycle. A failure names the file, the line, the import and the rule it breaks.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');

/**
 * ARCHITECTURE.md's table, module -> the modules it may import. Change the page and this table
 * together. `webview` is the top-level browser folder, which "imports only src/protocol".
 */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  engine: [],
  model: ['engine'],
  generation: ['model', 'engine'],
  data: ['protocol'],
  rlhf: ['model', 'generation', 'engine', 'data'],
  host: ['rlhf', 'generation', 'model', 'data', 'protocol'],
  protocol: [],
  extension: ['protocol', 'data'],
  cli: ['host', 'data', 'rlhf'],
  webview: ['protocol'],
};

/**
 * Single files a module may import from a module the table does not allow: module ->
 * repository-relative files. `extension` checks `codeRlhf.trainingSettings` with the trainers'
 * own config parser before a run starts. What such a file brings along is pinned below
 * (`MAY_IMPORT_FILES_CLOSURE`): rlhf/config.ts imports only model/settingError.ts,
 * model/projections.ts (the LoRA targets) and generation/api.ts (its sampling limit), which
 * import nothing.
 */
const MAY_IMPORT_FILES: Readonly<Record<string, readonly string[]>> = {
  extension: ['src/rlhf/config.ts'],
};

/** Every file each file of MAY_IMPORT_FILES imports, directly or through another. */
const MAY_IMPORT_FILES_CLOSURE: Readonly<Record<string, readonly string[]>> = {
  'src/rlhf/config.ts': [
    'src/generation/api.ts',
    'src/model/projections.ts',
    'src/model/settingError.ts',
  ],
};

/**
 * ARCHITECTURE.md: "`vscode` is imported only in `extension/`; `onnxruntime-node` only in
 * `engine/`."
 */
const PACKAGE_OWNER: Readonly<Record<string, string>> = {
  vscode: 'extension',
  'onnxruntime-node': 'engine',
};

interface ImportSite {
  /** Repository-relative path of the importing file, with forward slashes. */
  file: string;
  line: number;
  specifier: string;
}

/**
 * Every module specifier in `source`: imports and re-exports (type-only ones too),
 * `import x = require()`, `require()`, `import()` and `typeof import('...')` types.
 */
function moduleSpecifiers(fileName: string, source: string): { specifier: string; line: number }[] {
  const sourceFile = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  const found: { specifier: string; line: number }[] = [];
  const add = (node: ts.Node | undefined) => {
    if (node && ts.isStringLiteralLike(node)) {
      const { line } = sourceFile.getLineAndCharacterOfPosition(node.getStart(sourceFile));
      found.push({ specifier: node.text, line: line + 1 });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) {
      add(node.moduleSpecifier);
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference)
    ) {
      add(node.moduleReference.expression);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal);
    } else if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(node.expression) && node.expression.text === 'require'))
    ) {
      add(node.arguments[0]);
    }
    ts.forEachChild(node, visit);
  };
  visit(sourceFile);
  return found;
}

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

function importSites(): ImportSite[] {
  return ['src', 'webview'].flatMap((top) =>
    tsFiles(path.join(ROOT, top)).flatMap((full) => {
      const file = path.relative(ROOT, full).split(path.sep).join('/');
      return moduleSpecifiers(file, fs.readFileSync(full, 'utf8')).map((s) => ({ file, ...s }));
    }),
  );
}

/**
 * The module a repository-relative path belongs to: `webview` for anything under webview/, the
 * folder name for src/<folder>/..., undefined elsewhere (including files directly in src/).
 */
function moduleOf(relPath: string): string | undefined {
  const parts = relPath.split('/');
  if (parts[0] === 'webview') return 'webview';
  if (parts[0] === 'src' && parts.length >= 2) return parts[1];
  return undefined;
}

function isPathSpecifier(specifier: string): boolean {
  return specifier.startsWith('.') || specifier.startsWith('/');
}

/** `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function targetModule(site: ImportSite): { module: string | undefined; target: string } {
  const resolved = path.resolve(path.dirname(path.join(ROOT, site.file)), site.specifier);
  const target = path.relative(ROOT, resolved).split(path.sep).join('/');
  return { module: moduleOf(target), target };
}

function allowedText(module: string): string {
  const allowed = MAY_IMPORT[module];
  return allowed.length === 0 ? 'no other module' : allowed.join(', ');
}

/** Messages for every import that breaks the table or the package rules. */
function violations(sites: readonly ImportSite[]): string[] {
  const problems: string[] = [];
  for (const site of sites) {
    const from = moduleOf(site.file);
    const where = `${site.file}:${site.line} imports '${site.specifier}'`;
    if (from === undefined || !(from in MAY_IMPORT)) {
      problems.push(`${where}: ${site.file} is in no module of the table`);
      continue;
    }
    if (!isPathSpecifier(site.specifier)) {
      const pkg = packageName(site.specifier);
      const owner = PACKAGE_OWNER[pkg];
      if (from === 'webview') {
        problems.push(`${where}: webview/ imports only src/protocol, not packages`);
      } else if (owner !== undefined && owner !== from) {
        problems.push(`${where}: ${pkg} may be imported only in src/${owner}/`);
      }
      continue;
    }
    const { module: to, target } = targetModule(site);
    if (to === from) continue;
    if (to === undefined || !(to in MAY_IMPORT)) {
      problems.push(`${where}: ${target} is in no module of the table`);
    } else if (
      !MAY_IMPORT[from].includes(to) &&
      !(MAY_IMPORT_FILES[from] ?? []).includes(`${target}.ts`)
    ) {
      problems.push(`${where}: ${from} may import ${allowedText(from)}, not ${to}`);
    }
  }
  return problems;
}

/** Module -> modules it imports, from the actual imports (path imports between known modules). */
function moduleGraph(sites: readonly ImportSite[]): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const site of sites) {
    if (!isPathSpecifier(site.specifier)) continue;
    const from = moduleOf(site.file);
    const to = targetModule(site).module;
    if (from === undefined || to === undefined || from === to) continue;
    if (!graph.has(from)) graph.set(from, new Set());
    graph.get(from)!.add(to);
  }
  return graph;
}

/** Each cycle as a path `a -> b -> ... -> a`, found by depth-first search. */
function cycles(graph: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const found = new Set<string>();
  const done = new Set<string>();
  const walk = (node: string, trail: string[]): void => {
    const at = trail.indexOf(node);
    if (at >= 0) {
      found.add([...trail.slice(at), node].join(' -> '));
      return;
    }
    if (done.has(node)) return;
    for (const next of graph.get(node) ?? []) walk(next, [...trail, node]);
    done.add(node);
  };
  for (const node of graph.keys()) walk(node, []);
  return [...found];
}

function tableGraph(): Map<string, Set<string>> {
  return new Map(Object.entries(MAY_IMPORT).map(([m, allowed]) => [m, new Set(allowed)]));
}

describe('architecture: the module import table of ARCHITECTURE.md', () => {
  let sites: ImportSite[] = [];
  before(() => {
    sites = importSites();
  });

  it('a single file another module may import brings along only the files pinned for it', () => {
    const importsOf = (file: string) =>
      moduleSpecifiers(file, fs.readFileSync(path.join(ROOT, file), 'utf8')).map((s) =>
        // A package (fs, vscode) is named as imported; it has no imports to follow here.
        isPathSpecifier(s.specifier)
          ? path
              .relative(ROOT, require.resolve(path.resolve(ROOT, path.dirname(file), s.specifier)))
              .split(path.sep)
              .join('/')
          : s.specifier,
      );
    for (const [file, pinned] of Object.entries(MAY_IMPORT_FILES_CLOSURE)) {
      const seen = new Set<string>();
      const queue = importsOf(file);
      while (queue.length > 0) {
        const next = queue.pop()!;
        if (seen.has(next)) continue;
        seen.add(next);
        if (next.startsWith('src/')) queue.push(...importsOf(next));
      }
      assert.deepStrictEqual([...seen].sort(), [...pinned].sort(), `${file} imports`);
    }
    assert.deepStrictEqual(
      Object.keys(MAY_IMPORT_FILES_CLOSURE).sort(),
      [...new Set(Object.values(MAY_IMPORT_FILES).flat())].sort(),
      'every file of MAY_IMPORT_FILES has its imports pinned',
    );
  });

  it('sees every import form, type-only ones included', () => {
    const source = [
      "import type { A } from './a';",
      "import { type B } from '../b';",
      "export type { C } from './c';",
      "export * from './d';",
      "import e = require('./e');",
      "const f = require('./f');",
      "const g = await import('./g');",
      "let h: typeof import('./h');",
      "import './i';",
    ].join('\n');
    assert.deepStrictEqual(
      moduleSpecifiers('forms.ts', source).map((s) => `${s.line}:${s.specifier}`),
      ['1:./a', '2:../b', '3:./c', '4:./d', '5:./e', '6:./f', '7:./g', '8:./h', '9:./i'],
    );
  });

  it('finds the modules and their imports (the scan is not empty)', () => {
    const graph = moduleGraph(sites);
    for (const module of Object.keys(MAY_IMPORT)) {
      const folder = module === 'webview' ? 'webview' : `src/${module}`;
      assert.ok(tsFiles(path.join(ROOT, folder)).length > 0, `no .ts files in ${folder}`);
    }
    assert.ok(graph.get('model')?.has('engine'), 'expected src/model to import src/engine');
    assert.ok(
      sites.some((s) => s.file.startsWith('src/engine/') && s.specifier === 'onnxruntime-node'),
      'expected src/engine to import onnxruntime-node',
    );
  });

  it('flags an import the table does not allow, naming file, import and rule', () => {
    const bad: ImportSite[] = [
      { file: 'src/cli/x.ts', line: 3, specifier: '../model/loader' },
      { file: 'src/host/x.ts', line: 4, specifier: 'vscode' },
      { file: 'webview/x.ts', line: 5, specifier: '../src/data/store' },
      { file: 'src/protocol/x.ts', line: 6, specifier: '../protocol/records' },
    ];
    assert.deepStrictEqual(violations(bad), [
      "src/cli/x.ts:3 imports '../model/loader': cli may import host, data, rlhf, not model",
      "src/host/x.ts:4 imports 'vscode': vscode may be imported only in src/extension/",
      "webview/x.ts:5 imports '../src/data/store': webview may import protocol, not data",
    ]);
  });

  it('every import in src/ and webview/ is allowed by the table', () => {
    const problems = violations(sites);
    if (problems.length > 0)
      assert.fail(`imports against ARCHITECTURE.md:\n${problems.join('\n')}`);
  });

  it('the table itself has no cycles', () => {
    assert.deepStrictEqual(cycles(tableGraph()), []);
  });

  it('the modules import each other without cycles', () => {
    assert.deepStrictEqual(
      cycles(
        new Map([
          ['a', new Set(['b'])],
          ['b', new Set(['c'])],
          ['c', new Set(['a'])],
        ]),
      ),
      ['a -> b -> c -> a'],
    );
    const found = cycles(moduleGraph(sites));
    if (found.length > 0) assert.fail(`cycles between modules:\n${found.join('\n')}`);
  });
});
