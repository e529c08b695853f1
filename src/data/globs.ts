/**
 * Glob matching for the "never collect these files" setting. Pure: the caller passes the globs
 * and a workspace-relative path. Supported syntax (the subset VS Code settings use): `*` (within
 * one path segment), `**` (any number of segments), `?`, `[abc]` / `[!abc]`, `{a,b}`. A glob
 * without a `/` also matches the base name anywhere (`*.pem` excludes `keys/server.pem`).
 */

export class GlobSyntaxError extends Error {}

function escapeRegex(ch: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(ch) ? `\\${ch}` : ch;
}

/** Compiles one glob into an anchored regular expression over a POSIX relative path. */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  let braceDepth = 0;
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        const atStart = i === 0 || glob[i - 1] === '/';
        const atEnd = i + 2 === glob.length || glob[i + 2] === '/';
        if (atStart && atEnd) {
          // "**/" matches zero or more whole segments; a trailing "**" matches everything below.
          if (i + 2 === glob.length) out += '.*';
          else out += '(?:[^/]*/)*';
          i += glob[i + 2] === '/' ? 2 : 1;
          continue;
        }
        i++;
      }
      out += '[^/]*';
    } else if (ch === '?') {
      out += '[^/]';
    } else if (ch === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close === -1)
        throw new GlobSyntaxError(`unclosed "[" at ${i} in glob ${JSON.stringify(glob)}`);
      let body = glob.slice(i + 1, close);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      out += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else if (ch === '{') {
      braceDepth++;
      out += '(?:';
    } else if (ch === '}' && braceDepth > 0) {
      braceDepth--;
      out += ')';
    } else if (ch === ',' && braceDepth > 0) {
      out += '|';
    } else {
      out += escapeRegex(ch);
    }
  }
  if (braceDepth !== 0) throw new GlobSyntaxError(`unclosed "{" in glob ${JSON.stringify(glob)}`);
  return new RegExp(`^${out}$`);
}

/**
 * True when `relativePath` matches any of `globs`. Backslashes in the path are treated as
 * separators and a leading "./" is ignored.
 */
export function isExcluded(globs: readonly string[], relativePath: string): boolean {
  const path = relativePath.replace(/\\/g, '/').replace(/^\.\//, '');
  const base = path.slice(path.lastIndexOf('/') + 1);
  return globs.some((glob) => {
    const re = globToRegExp(glob);
    return re.test(path) || (!glob.includes('/') && re.test(base));
  });
}
