// Node.js built-ins are fetched when first needed (process.getBuiltinModule) rather than imported
// at the top of a module, so the package loads in browsers too; only the Node-only functions
// (fromFile, defaultTokenizerPath, encodeBatchParallel) need them.
import { TokenizerError } from './errors.js';

type BuiltinGetter = (id: string) => unknown;

export function nodeBuiltin<Module>(id: string, feature: string): Module {
  const process = (globalThis as { process?: { getBuiltinModule?: BuiltinGetter } }).process;
  const module = process?.getBuiltinModule?.(id);
  if (module === undefined) {
    throw new TokenizerError(`${feature} needs Node.js >= 20.16 (${id} is not available here)`);
  }
  return module as Module;
}
