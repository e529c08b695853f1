/** Parsed command line: positional arguments and `--name value` / `--name=value` / `--flag`. */
export interface ParsedArgs {
  positional: string[];
  options: Map<string, string | true>;
}

export class UsageError extends Error {}

/**
 * Parses `argv`. `valued` names the options that take a value; every other `--name` is a
 * boolean flag. Unknown options are rejected with the list of allowed ones.
 */
export function parseArgs(
  argv: readonly string[],
  valued: readonly string[],
  flags: readonly string[],
): ParsedArgs {
  const positional: string[] = [];
  const options = new Map<string, string | true>();
  const allowed = () => [...valued, ...flags].map((n) => `--${n}`).join(', ') || '(none)';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (valued.includes(name)) {
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined) throw new UsageError(`option --${name} needs a value`);
      options.set(name, value);
    } else if (flags.includes(name) && eq === -1) {
      options.set(name, true);
    } else {
      throw new UsageError(`unknown option ${arg}; allowed: ${allowed()}`);
    }
  }
  return { positional, options };
}

/** Output streams, injectable for tests. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** --verbose: print the stack trace of every error, not only of internal ones. */
  verbose?: boolean;
}

/** One top-level command group (`data`, `train`, ...). */
export interface CliCommand {
  name: string;
  /** One line for the top-level help. */
  summary: string;
  /** Runs the command with the arguments after its name; returns the exit code. */
  run(argv: string[], io: CliIo): Promise<number>;
}
