/**
 * `code-rlhf` command-line entry. Each command group lives in its own module and is listed in
 * COMMANDS; adding `train`, `eval` or `demo` means writing a CliCommand and adding one line.
 */
import { describeError, isInternalError } from '../host/errorReport';
import { UsageError, type CliCommand, type CliIo } from './args';
import { dataCommand } from './dataCommand';
import { demoCommand, evalCommand, trainCommand } from './trainCommands';

export const COMMANDS: CliCommand[] = [dataCommand, trainCommand, evalCommand, demoCommand];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: code-rlhf [--verbose] <command> [arguments]   (code-rlhf <command> --help for details)',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'errors: a problem with the input (a flag, config key, file, record or folder) prints its',
    'message, which names the bad value and what is allowed; exit code 2 for a bad command line,',
    '1 otherwise. An internal error (a bug: TypeError, RangeError, a failed assertion) prints its',
    'stack trace too; please report it. --verbose (or --debug), anywhere before "--", prints the',
    'stack trace of every error.',
  ].join('\n');
}

const VERBOSE_FLAGS = ['--verbose', '--debug'];

/** `argv` without the global --verbose/--debug flags (before any "--"), and whether one was there. */
function takeVerbose(argv: readonly string[]): { argv: string[]; verbose: boolean } {
  const end = argv.indexOf('--') === -1 ? argv.length : argv.indexOf('--');
  const kept = argv.filter((arg, i) => i >= end || !VERBOSE_FLAGS.includes(arg));
  return { argv: kept, verbose: kept.length < argv.length };
}

/** Runs the CLI with `argv` (without node and script); returns the process exit code. */
export async function runCli(fullArgv: string[], cliIo: CliIo): Promise<number> {
  const { argv, verbose } = takeVerbose(fullArgv);
  const io: CliIo = { ...cliIo, verbose: cliIo.verbose || verbose };
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(help());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  try {
    if (!command) {
      throw new UsageError(
        `unknown command ${JSON.stringify(name)}; allowed: ${COMMANDS.map((c) => c.name).join(', ')}`,
      );
    }
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`code-rlhf: ${describeError(error, io.verbose)}`);
      return 2;
    }
    const internal = isInternalError(error) ? 'internal error (please report it): ' : '';
    io.err(`code-rlhf: ${internal}${describeError(error, io.verbose)}`);
    return 1;
  }
}

if (require.main === module) {
  const io: CliIo = { out: (t) => console.log(t), err: (t) => console.error(t) };
  runCli(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(`code-rlhf: internal error: ${(error as Error).stack ?? String(error)}`);
      process.exitCode = 1;
    },
  );
}
