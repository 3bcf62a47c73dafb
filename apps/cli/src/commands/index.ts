import type { Command } from 'commander';
import { register as registerData } from './data';
import { register as registerDoctor } from './doctor';
import { register as registerTokenizer } from './tokenizer';
import { register as registerViewer } from './viewer';

/** Registers every subcommand. Each module exports `register(program)`. */
export function registerCommands(program: Command): void {
  void program;
  registerDoctor(program);
  registerData(program);
  registerTokenizer(program);
  registerViewer(program);
}
