// Corpora by name or path. A resolved corpus is a list of parts, each a document source tagged
// with the split it belongs to; corpora without their own validation files get a validation
// split from their last documents.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DATASETS, datasetDirectory } from './datasets';
import { DataError } from './errors';
import { isRecallCorpus } from './recall';
import { type DocumentSource, type ReadOptions, describeSource, documentSource } from './readers';
import type { SplitName } from './token-documents';

/** Lines per document when grouping Tiny Shakespeare's speeches (see the README). */
export const TINYSHAKESPEARE_LINES_PER_DOCUMENT = 200;

/** The bundled Tiny Shakespeare text (the offline default corpus). */
export function defaultCorpusPath(): string {
  // src/ and dist/ both sit one level below the package root.
  return fileURLToPath(new URL('../corpora/tinyshakespeare.txt', import.meta.url));
}

export interface CorpusPart {
  split: SplitName;
  source: DocumentSource;
}

export interface ResolvedCorpus {
  /** 'tinyshakespeare', 'wikitext-103', 'wikitext-2', or the path given. */
  name: string;
  parts: CorpusPart[];
  /**
   * Fraction of the last documents held out as the valid split when no part is 'valid'
   * (0 = no validation split).
   */
  validFraction: number;
  /** One line for messages and the shard manifest. */
  description: string;
}

export const CORPUS_NAMES = ['tinyshakespeare', ...Object.keys(DATASETS)] as const;

export interface ResolveOptions extends ReadOptions {
  /** Dataset cache directory for downloaded corpora. */
  cacheDir?: string;
  /** Validation fraction for corpora without their own validation files (default 0.1). */
  validFraction?: number;
}

export function resolveCorpus(nameOrPath: string, options: ResolveOptions = {}): ResolvedCorpus {
  const validFraction = options.validFraction ?? 0.1;
  if (nameOrPath === 'tinyshakespeare') {
    const linesPerDocument = options.linesPerDocument ?? TINYSHAKESPEARE_LINES_PER_DOCUMENT;
    return {
      name: 'tinyshakespeare',
      parts: [
        {
          split: 'train',
          source: { files: [defaultCorpusPath()], format: 'paragraphs', linesPerDocument },
        },
      ],
      validFraction,
      description: `tinyshakespeare (bundled; speeches grouped into documents of >= ${linesPerDocument} lines; last ${validFraction * 100}% of documents = valid)`,
    };
  }
  const spec = DATASETS[nameOrPath];
  if (spec) {
    const dir = datasetDirectory(spec, options.cacheDir);
    const missing = spec.files.filter((file) => !existsSync(join(dir, file.path)));
    if (missing.length > 0) {
      throw new DataError(
        `${spec.name} is not downloaded (missing ${join(dir, (missing[0] as { path: string }).path)}); run \`baka data fetch ${spec.name}\` first`,
      );
    }
    const splits: SplitName[] = ['train', 'valid', 'test'];
    const parts = splits.flatMap((split) => {
      const files = spec.files
        .filter((file) => file.split === split)
        .map((file) => join(dir, file.path));
      return files.length === 0
        ? []
        : [{ split, source: { files, format: 'wikitext' as const, textField: 'text' } }];
    });
    return {
      name: spec.name,
      parts,
      validFraction: 0,
      description: `${spec.name}: ${spec.description} (${dir})`,
    };
  }
  if (isRecallCorpus(nameOrPath)) {
    throw new DataError(
      `${nameOrPath} is generated in memory by \`baka train\` and \`baka eval\` (recallDocuments); there are no files to read or prepare`,
    );
  }
  if (!existsSync(nameOrPath) && !nameOrPath.includes('/') && !nameOrPath.includes('.')) {
    throw new DataError(
      `unknown corpus '${nameOrPath}': expected ${CORPUS_NAMES.join(', ')} or a path`,
    );
  }
  const source = documentSource(nameOrPath, options);
  return {
    name: nameOrPath,
    parts: [{ split: 'train', source }],
    validFraction,
    description: `${describeSource(source)}${validFraction > 0 ? `; last ${validFraction * 100}% of documents = valid` : ''}`,
  };
}
