/**
 * `code-rlhf` command-line entry. Each command group lives in its own module and is listed in
 * COMMANDS; adding `train`, `eval` or `demo` means writing a CliCommand and adding one line.
 */
import { UsageError, type CliCommand, type CliIo } from './args';
import { dataCommand } from './dataCommand';
import { demoCommand, evalCommand, trainCommand } from './trainCommands';

export const COMMANDS: CliCommand[] = [dataCommand, trainCommand, evalCommand, demoCommand];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: code-rlhf <command> [arguments]   (code-rlhf <command> --help for details)',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

/** Runs the CLI with `argv` (without node and script); returns the process exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
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
      io.err(`code-rlhf: ${error.message}`);
      return 2;
    }
    io.err(`code-rlhf: ${(error as Error).message}`);
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
