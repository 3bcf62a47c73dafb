import type { Command } from 'commander';
import { register as registerEval } from './eval';
import { register as registerExperiment } from './experiment';
import { register as registerGenerate } from './generate';
import { register as registerInfo } from './info';
import { register as registerConfig } from './config';
import { register as registerData } from './data';
import { register as registerDoctor } from './doctor';
import { register as registerTokenizer } from './tokenizer';
import { register as registerRuns } from './runs';
import { register as registerTrain } from './train';
import { register as registerViewer } from './viewer';

/** Registers every subcommand. Each module exports `register(program)`. */
export function registerCommands(program: Command): void {
  void program;
  registerEval(program);
  registerInfo(program);
  registerGenerate(program);
  registerDoctor(program);
  registerData(program);
  registerTokenizer(program);
  registerTrain(program);
  registerExperiment(program);
  registerRuns(program);
  registerConfig(program);
  registerViewer(program);
}
