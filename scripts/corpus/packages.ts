/**
 * The documented list of npm packages the default model's corpus is built from.
 *
 * Each entry names a package whose tarball carries hand-written source (not only a compiled
 * or bundled build). `include` narrows the walk to the folders that hold that source; paths
 * outside it are never read. The license of every fetched version is checked against
 * `ALLOWED_LICENSES` from the tarball's own package.json, so an entry here is a request, not a
 * promise: a package whose fetched version is not permissively licensed is skipped and listed
 * in the manifest with the reason.
 */
export interface PackageSpec {
  /** npm package name. */
  name: string;
  /** Version or range given to `npm pack` (`name@spec`); the resolved version is recorded. */
  spec: string;
  /** Path prefixes inside the tarball (after `package/`) that hold hand-written source. */
  include?: string[];
  /** Path prefixes to leave out even inside `include` (locale tables, generated folders). */
  exclude?: string[];
  /** Keep `.d.ts` files: true only where the declarations are the hand-written product. */
  keepDeclarations?: boolean;
}

/** SPDX identifiers accepted (alone or as one alternative of an `OR` expression). */
export const ALLOWED_LICENSES: ReadonlySet<string> = new Set([
  'MIT',
  'Apache-2.0',
  'BSD-2-Clause',
  'BSD-3-Clause',
  'ISC',
  '0BSD',
]);

/** Whole-package defaults: the source is the package root minus build output folders. */
const root = (name: string, spec: string, extra: Partial<PackageSpec> = {}): PackageSpec => ({
  name,
  spec,
  ...extra,
});

const under = (name: string, spec: string, include: string[], extra: Partial<PackageSpec> = {}) =>
  ({ name, spec, include, ...extra }) satisfies PackageSpec;

export const PACKAGES: readonly PackageSpec[] = [
  // Web servers and HTTP (hand-written CommonJS).
  root('express', '4.22.3'),
  under('koa', '2.16.4', ['lib/']),
  under('@koa/router', '12.0.2', ['lib/']),
  root('body-parser', '1.20.9'),
  root('cookie', '0.7.2'),
  root('send', '0.19.2'),
  root('serve-static', '1.16.3'),
  root('finalhandler', '1.3.2'),
  root('http-errors', '2.0.1'),
  root('on-finished', '2.4.2'),
  root('mime-types', '2.1.35'),
  root('negotiator', '0.6.4'),
  root('accepts', '1.3.8'),
  root('type-is', '1.6.18'),
  root('raw-body', '2.5.3'),
  root('depd', '2.0.0'),
  root('content-disposition', '0.5.4'),
  root('cors', '2.8.6'),
  root('morgan', '1.12.1'),
  root('multer', '1.4.4'),
  under('qs', '6.17.1', ['lib/']),
  under('ws', '8.23.1', ['lib/', 'index.js', 'wrapper.mjs']),
  under('undici', '6.29.1', ['lib/', 'index.js', 'index-fetch.js']),
  under('axios', '1.21.1', ['lib/', 'index.js']),
  under('fastify', '4.29.1', ['lib/', 'fastify.js', 'test/']),
  under('pino', '9.14.0', ['lib/', 'pino.js', 'browser.js', 'file.js']),
  under('node-fetch', '3.3.2', ['src/']),
  // Command-line tooling and the file system.
  under('commander', '12.1.0', ['lib/', 'index.js']),
  under('chalk', '5.6.2', ['source/']),
  under('debug', '4.4.3', ['src/']),
  root('ms', '2.1.3'),
  under('semver', '7.8.6', ['classes/', 'functions/', 'internal/', 'ranges/', 'bin/', 'index.js']),
  root('minimist', '1.2.8'),
  under('fs-extra', '11.4.1', ['lib/']),
  root('graceful-fs', '4.2.11'),
  root('chokidar', '3.6.0'),
  root('glob', '7.2.3'),
  root('minimatch', '3.1.5'),
  root('rimraf', '3.0.2'),
  root('mkdirp', '1.0.4'),
  under('inquirer', '8.2.7', ['lib/']),
  under('execa', '5.1.1', ['lib/', 'index.js']),
  root('cross-spawn', '7.1.2'),
  root('which', '2.0.2'),
  under('node-gyp', '10.3.1', ['lib/', 'bin/', 'gyp/pylib/', 'gyp/gyp_main.py']),
  under('dotenv', '16.6.1', ['lib/']),
  under('node-cron', '3.0.3', ['src/']),
  // Tooling: linters, bundlers, minifiers, test runners, parsers.
  under('eslint', '8.57.1', ['lib/']),
  under('espree', '9.6.1', ['lib/', 'espree.js']),
  root('estraverse', '5.3.0'),
  root('esutils', '2.0.3'),
  root('escodegen', '2.1.0'),
  under('webpack', '5.113.0', ['lib/', 'hot/']),
  under('terser', '5.51.4', ['lib/', 'bin/']),
  under('uglify-js', '3.19.3', ['lib/', 'bin/', 'tools/']),
  under('postcss', '8.5.34', ['lib/']),
  under('autoprefixer', '10.7.1', ['lib/']),
  under('mocha', '10.8.2', ['lib/', 'bin/']),
  under('chai', '4.5.0', ['lib/']),
  under('sinon', '17.0.2', ['lib/']),
  under('markdown-it', '13.0.2', ['lib/']),
  under('handlebars', '4.7.10', ['lib/']),
  under('ejs', '3.1.10', ['lib/']),
  under('js-yaml', '4.3.2', ['lib/']),
  under('prismjs', '1.30.0', ['components/', 'plugins/']),
  under('codemirror', '5.65.21', ['src/', 'mode/', 'addon/', 'keymap/']),
  // Data access.
  under('knex', '3.3.0', ['lib/']),
  under('mongoose', '8.24.10', ['lib/']),
  under('pg', '8.23.1', ['lib/']),
  under('mysql', '2.18.1', ['lib/']),
  under('joi', '17.13.9', ['lib/']),
  // Utility libraries.
  root('lodash', '4.18.1', { exclude: ['fp/'] }),
  under('underscore', '1.13.8', ['modules/']),
  under('ramda', '0.30.1', ['src/']),
  under('core-js', '3.51.0', ['modules/', 'internals/']),
  under('jszip', '3.10.2', ['lib/']),
  under('bn.js', '5.2.5', ['lib/']),
  under('elliptic', '6.6.1', ['lib/']),
  root('q', '1.5.1'),
  root('papaparse', '5.7.1'),
  root('backbone', '1.6.1'),
  under('yjs', '13.6.33', ['src/']),
  // Dates, math, graphics, UI.
  under('moment', '2.31.0', ['src/lib/', 'src/moment.js']),
  under('luxon', '3.7.2', ['src/']),
  under('three', '0.160.1', ['src/']),
  under('leaflet', '1.9.4', ['src/']),
  under('jquery', '3.8.0', ['src/']),
  under('d3-array', '2.12.1', ['src/']),
  under('d3-scale', '3.3.0', ['src/']),
  under('d3-shape', '2.1.0', ['src/']),
  under('d3-selection', '2.0.0', ['src/']),
  under('d3-geo', '2.0.2', ['src/']),
  under('d3-hierarchy', '2.0.0', ['src/']),
  under('d3-force', '2.1.1', ['src/']),
  under('d3-interpolate', '2.0.1', ['src/']),
  under('d3-format', '2.0.0', ['src/']),
  under('d3-time', '2.1.1', ['src/']),
  under('d3-color', '2.0.0', ['src/']),
  under('preact', '10.29.8', ['src/', 'hooks/src/', 'compat/src/', 'debug/src/']),
  under('vue', '2.7.16', ['src/']),
  under('svelte', '5.59.1', ['src/']),
  // TypeScript sources shipped next to their builds.
  under('rxjs', '7.8.2', ['src/']),
  under('zod', '3.25.76', ['src/']),
  under('immer', '10.2.0', ['src/']),
  under('ajv', '8.20.0', ['lib/']),
  under('effect', '3.22.4', ['src/']),
  under('redux', '5.0.1', ['src/']),
  under('@reduxjs/toolkit', '2.16.0', ['src/']),
  under('mobx', '6.16.1', ['src/']),
  under('@tanstack/query-core', '5.108.4', ['src/']),
  under('@tanstack/table-core', '8.21.3', ['src/']),
  under('@trpc/server', '11.25.2', ['src/']),
  under('@preact/signals-core', '1.14.5', ['src/']),
  under('prosemirror-model', '1.25.13', ['src/']),
  under('prosemirror-state', '1.4.4', ['src/']),
  under('prosemirror-transform', '1.12.7', ['src/']),
  under('prosemirror-view', '1.44.0', ['src/']),
  under('@types/node', '20.19.43', [''], { keepDeclarations: true }),
];
