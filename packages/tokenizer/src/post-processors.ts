// Post-processors of tokenizer.json, for a single sequence: the ids added around the encoding
// when special tokens are requested.
import { TokenizerError, UnsupportedComponentError } from './errors.js';

type Json = Record<string, unknown>;

export interface PostProcessor {
  prefix: number[];
  suffix: number[];
}

function idOf(value: unknown, component: string): number {
  const pair = value as [string, number] | undefined;
  if (!Array.isArray(pair) || typeof pair[1] !== 'number') {
    throw new TokenizerError(`tokenizer.json: ${component} expects [token, id] pairs`);
  }
  return pair[1];
}

/** Builds the prefix/suffix ids a post-processor adds to one sequence (null -> none). */
export function buildPostProcessor(json: unknown): PostProcessor | undefined {
  if (json === null || json === undefined) return undefined;
  const config = json as Json;
  const type = config.type;
  const component = `post_processor ${String(type)}`;
  switch (type) {
    case 'ByteLevel':
      return undefined;
    case 'BertProcessing':
    case 'RobertaProcessing':
      return { prefix: [idOf(config.cls, component)], suffix: [idOf(config.sep, component)] };
    case 'TemplateProcessing': {
      const single = (config.single as Json[]) ?? [];
      const specials = (config.special_tokens as Record<string, { ids: number[] }>) ?? {};
      const result: PostProcessor = { prefix: [], suffix: [] };
      let seenSequence = false;
      for (const piece of single) {
        if (piece.Sequence) {
          seenSequence = true;
          continue;
        }
        const special = piece.SpecialToken as { id: string } | undefined;
        const entry = special ? specials[special.id] : undefined;
        if (!special || !entry) {
          throw new TokenizerError(
            `tokenizer.json: ${component} refers to an undefined special token`,
          );
        }
        (seenSequence ? result.suffix : result.prefix).push(...entry.ids);
      }
      return result;
    }
    case 'Sequence': {
      const steps = ((config.processors as unknown[]) ?? []).map((step) =>
        buildPostProcessor(step),
      );
      const result: PostProcessor = { prefix: [], suffix: [] };
      for (const step of steps) {
        if (!step) continue;
        result.prefix = [...step.prefix, ...result.prefix];
        result.suffix = [...result.suffix, ...step.suffix];
      }
      return result;
    }
    default:
      throw new UnsupportedComponentError(
        `post_processor ${JSON.stringify(type)}`,
        'supported: ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing, Sequence',
      );
  }
}
