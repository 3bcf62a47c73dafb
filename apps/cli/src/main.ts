// The `baka` command. Each subcommand lives in src/commands/ and registers itself on the program.
import { Command } from 'commander';
import { registerCommands } from './commands/index';

const program = new Command();
program
  .name('baka')
  .description(
    'Train, evaluate and sample BakaLLM models (Transformer-XL memory, rotary embeddings)',
  )
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });
program.exitOverride((error) => {
  // commander's own usage errors (unknown flag, missing argument): exit 2, no stack trace.
  process.exit(error.exitCode === 0 ? 0 : 2);
});
registerCommands(program);
await program.parseAsync(process.argv);
