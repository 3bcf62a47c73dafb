// The `baka` command. Each subcommand lives in src/commands/ and registers itself on the program.
import { Command } from 'commander';
import { setVerbose } from './backend';
import { registerCommands } from './commands/index';

const program = new Command();
program
  .name('baka')
  .description(
    'Train, evaluate and sample BakaLLM models (Transformer-XL memory, rotary embeddings)',
  )
  // A usage error is one line (`baka: unknown option '--x' (see --help)`), not the whole help.
  .configureOutput({
    outputError: (text, write) =>
      write(
        `baka: ${text
          .replace(/^error: /, '')
          .trim()
          .replace(/\s*\n\s*/g, ' ')} (see --help)\n`,
      ),
  });
program.exitOverride((error) => {
  // commander's own usage errors (unknown flag, missing argument): exit 2, no stack trace.
  process.exit(error.exitCode === 0 ? 0 : 2);
});
program.option('--verbose', 'say more on stderr (e.g. why auto skipped tensorflow-gpu)');
program.hook('preAction', (root) => setVerbose(root.opts().verbose === true));
registerCommands(program);
await program.parseAsync(process.argv);
