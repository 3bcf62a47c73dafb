export { DataError } from './errors';
export type { DataCursor } from './cursor';
export { parseCursor } from './cursor';
export type { DocumentRange, SplitName, TokenDocuments } from './token-documents';
export { splitRange, tokenDocumentsFromArrays, trailingSplits } from './token-documents';
export type { ArticleBatch, ArticleBatchOptions } from './article-batches';
export {
  articleBatches,
  batchesPerEpoch,
  epochOrder,
  IGNORE_INDEX,
  padDocuments,
} from './article-batches';
export type { Window, WindowOptions } from './windows';
export { windows } from './windows';
export type { PackedBatch, PackedBatchOptions } from './packed-batches';
export { packedBatches, splitTokenRange } from './packed-batches';
export { parseInputIds, readInputIds } from './input-ids';
export { readJsonFile } from './json-file';
export type { CorpusFormat, DocumentSource, ReadOptions } from './readers';
export {
  CORPUS_FORMATS,
  describeSource,
  detectFormat,
  documentSource,
  jsonlRows,
  parquetColumns,
  parquetRows,
  readDocuments,
} from './readers';
export {
  groupParagraphs,
  isWikitextTitle,
  splitOnSeparator,
  wikitextArticles,
} from './document-splitters';
export { findInvalidUtf8, readLines, readTextChunks } from './utf8';
export type { CorpusPart, ResolvedCorpus, ResolveOptions } from './corpora';
export {
  CORPUS_NAMES,
  defaultCorpusPath,
  resolveCorpus,
  TINYSHAKESPEARE_LINES_PER_DOCUMENT,
} from './corpora';
export type { DatasetFile, DatasetSpec } from './datasets';
export { DATASETS, datasetCacheDir, datasetDirectory, hubEndpoint } from './datasets';
export type { ExpectedFile, FetchOptions, FetchProgress, FetchResult } from './fetch-dataset';
export { fetchChecksumManifest, fetchDataset, fileDigest } from './fetch-dataset';
export type { ShardFile, ShardManifest, TokenDtype } from './shard-format';
export { dtypeForVocabulary, readManifest, SHARD_FORMAT_VERSION } from './shard-format';
export type { PreparedShards, PrepareOptions, PrepareProgress } from './prepare-shards';
export { prepareShards } from './prepare-shards';
export type { ShardReader } from './shard-reader';
export { type OpenShardsOptions, openShards } from './shard-reader';
export type { Encoder, EncoderPool } from './encoder-pool';
export { createEncoderPool } from './encoder-pool';
export type { AnsweredDocuments, RecallAnswer, RecallOptions } from './recall';
export {
  checkRecallOptions,
  describeRecall,
  hasAnswers,
  isRecallCorpus,
  parseRecallCorpus,
  RECALL_CORPUS,
  RECALL_DEFAULTS,
  RECALL_SYMBOLS,
  recallAnswers,
  recallDocument,
  recallDocuments,
  recallTokenizerJson,
  recallTokenizerPath,
} from './recall';
