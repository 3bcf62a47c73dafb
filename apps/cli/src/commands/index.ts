import type { Command } from 'commander';

/** Registers every subcommand. Each module exports `register(program)`. */
export function registerCommands(program: Command): void {
  void program;
}
