// Streaming corpus readers. A `DocumentSource` names files and how documents are delimited in
// them; `readDocuments` yields the documents one at a time, so a 500 MB corpus never sits in
// memory whole.
//   text       one document per file, or split at `separator`
//   paragraphs blank-line-separated paragraphs grouped into documents of >= linesPerDocument lines
//   wikitext   articles starting at top-level ` = Title = ` lines (raw, .tokens, or parquet/jsonl
//              rows that are the lines of a wikitext file, as Hugging Face publishes it)
//   jsonl      one JSON object per line, document = its `textField`
//   parquet    one row per document, document = its `textField` column
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import {
  asyncBufferFromFile,
  parquetMetadataAsync,
  parquetReadObjects,
  parquetSchema,
} from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { groupParagraphs, splitOnSeparator, wikitextArticles } from './document-splitters';
import { DataError } from './errors';
import { fileError, readLines, readTextChunks } from './utf8';

export type CorpusFormat = 'text' | 'paragraphs' | 'wikitext' | 'jsonl' | 'parquet';
export const CORPUS_FORMATS: readonly CorpusFormat[] = [
  'text',
  'paragraphs',
  'wikitext',
  'jsonl',
  'parquet',
];

export interface DocumentSource {
  /** Files read in this order. */
  files: string[];
  format: CorpusFormat;
  /** jsonl / parquet: the field or column holding the text (default 'text'). */
  textField?: string;
  /** text: split each file into documents at this string (default: one document per file). */
  separator?: string;
  /** paragraphs: minimum lines per document (default 200). */
  linesPerDocument?: number;
}

export interface ReadOptions {
  format?: CorpusFormat | 'auto';
  textField?: string;
  separator?: string;
  linesPerDocument?: number;
}

const JSONL_EXTENSIONS = new Set(['.jsonl', '.ndjson']);
const WIKITEXT_EXTENSIONS = new Set(['.raw', '.tokens']);

/** Guesses a format from a file name (see the README's table). */
export function detectFormat(path: string): CorpusFormat {
  const extension = extname(path).toLowerCase();
  if (WIKITEXT_EXTENSIONS.has(extension)) return 'wikitext';
  if (extension === '.parquet')
    return path.toLowerCase().includes('wikitext') ? 'wikitext' : 'parquet';
  if (JSONL_EXTENSIONS.has(extension)) return 'jsonl';
  return 'text';
}

/** Builds a source from a file or a directory (its visible files, sorted by name). */
export function documentSource(path: string, options: ReadOptions = {}): DocumentSource {
  let files: string[];
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch (error) {
    throw fileError(path, error);
  }
  if (isDirectory) {
    files = readdirSync(path, { withFileTypes: true })
      .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
      .map((entry) => join(path, entry.name))
      .sort();
    if (files.length === 0) throw new DataError(`corpus directory ${path} holds no files`);
  } else {
    files = [path];
  }
  const format =
    options.format === undefined || options.format === 'auto'
      ? detectFormat(files[0] as string)
      : options.format;
  if (!CORPUS_FORMATS.includes(format)) {
    throw new DataError(
      `unknown corpus format '${format}' (expected auto, ${CORPUS_FORMATS.join(', ')})`,
    );
  }
  const source: DocumentSource = { files, format };
  if (options.textField !== undefined) source.textField = options.textField;
  if (options.separator !== undefined) source.separator = options.separator;
  if (options.linesPerDocument !== undefined) source.linesPerDocument = options.linesPerDocument;
  return source;
}

/** The text of each row of a JSON Lines file; errors name the file, line and field. */
export async function* jsonlRows(path: string, field: string): AsyncGenerator<string> {
  let lineNumber = 0;
  for await (const line of readLines(path)) {
    lineNumber++;
    if (line.trim() === '') continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (error) {
      throw new DataError(`${path}:${lineNumber}: not valid JSON (${(error as Error).message})`);
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      throw new DataError(`${path}:${lineNumber}: expected a JSON object with a '${field}' field`);
    }
    const text = (record as Record<string, unknown>)[field];
    if (typeof text !== 'string') {
      const keys = Object.keys(record).join(', ');
      throw new DataError(
        text === undefined
          ? `${path}:${lineNumber}: no '${field}' field (fields: ${keys}); choose one with --text-field`
          : `${path}:${lineNumber}: field '${field}' is ${typeof text}, expected a string`,
      );
    }
    yield text;
  }
}

/** The column names of a parquet file; a file that is not parquet is an error naming it. */
export async function parquetColumns(path: string): Promise<string[]> {
  const { metadata } = await openParquet(path);
  return parquetSchema(metadata).children.map((child) => child.element.name);
}

async function openParquet(path: string) {
  let file: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  try {
    file = await asyncBufferFromFile(path);
  } catch (error) {
    throw fileError(path, error);
  }
  try {
    return { file, metadata: await parquetMetadataAsync(file) };
  } catch (error) {
    throw new DataError(`${path}: not a readable parquet file (${(error as Error).message})`);
  }
}

/** The text column of a parquet file, one row group at a time (null rows are skipped). */
export async function* parquetRows(path: string, column: string): AsyncGenerator<string> {
  const { file, metadata } = await openParquet(path);
  const columns = parquetSchema(metadata).children.map((child) => child.element.name);
  if (!columns.includes(column)) {
    throw new DataError(
      `${path}: no column '${column}' (columns: ${columns.join(', ')}); choose one with --text-field`,
    );
  }
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    const rows = await parquetReadObjects({
      file,
      metadata,
      columns: [column],
      rowStart,
      rowEnd,
      compressors,
    });
    for (const row of rows) {
      const value = row[column];
      if (value === null || value === undefined) continue;
      if (typeof value !== 'string') {
        throw new DataError(
          `${path}: column '${column}' holds ${typeof value} values, expected strings`,
        );
      }
      yield value;
    }
    rowStart = rowEnd;
  }
}

/** Lines of a wikitext file, or of the rows of a parquet / jsonl file that each hold one line. */
async function* wikitextLines(path: string, field: string): AsyncGenerator<string> {
  const extension = extname(path).toLowerCase();
  if (extension === '.parquet' || JSONL_EXTENSIONS.has(extension)) {
    const rows = extension === '.parquet' ? parquetRows(path, field) : jsonlRows(path, field);
    for await (const row of rows) yield row.endsWith('\n') ? row : `${row}\n`;
  } else {
    yield* readLines(path);
  }
}

async function* fileDocuments(path: string, source: DocumentSource): AsyncGenerator<string> {
  const field = source.textField ?? 'text';
  switch (source.format) {
    case 'text':
      if (source.separator !== undefined && source.separator !== '') {
        yield* splitOnSeparator(readTextChunks(path), source.separator);
      } else {
        let text = '';
        for await (const chunk of readTextChunks(path)) text += chunk;
        if (text) yield text;
      }
      return;
    case 'paragraphs': {
      const lines = source.linesPerDocument ?? 200;
      if (!Number.isInteger(lines) || lines < 1) {
        throw new DataError(`linesPerDocument must be a positive integer, got ${lines}`);
      }
      yield* groupParagraphs(readLines(path), lines);
      return;
    }
    case 'wikitext':
      yield* wikitextArticles(wikitextLines(path, field));
      return;
    case 'jsonl':
      for await (const text of jsonlRows(path, field)) if (text) yield text;
      return;
    case 'parquet':
      for await (const text of parquetRows(path, field)) if (text) yield text;
      return;
  }
}

/** Describes a source for messages and manifests. */
export function describeSource(source: DocumentSource): string {
  const files =
    source.files.length === 1
      ? (source.files[0] as string)
      : `${source.files.length} files in ${source.files[0]}…`;
  return `${files} (${source.format})`;
}

/**
 * Yields the documents of a source (or of a path, with the format detected from its name).
 * Empty documents are skipped; a source with no documents at all is an error.
 */
export async function* readDocuments(
  source: DocumentSource | string,
  options: ReadOptions = {},
): AsyncGenerator<string> {
  const resolved = typeof source === 'string' ? documentSource(source, options) : source;
  let count = 0;
  for (const file of resolved.files) {
    for await (const document of fileDocuments(file, resolved)) {
      if (document.length === 0) continue;
      count++;
      yield document;
    }
  }
  if (count === 0)
    throw new DataError(`the corpus ${describeSource(resolved)} is empty: no documents`);
}
