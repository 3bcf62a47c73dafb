// A Hugging Face tokenizer.json with a BPE model: added tokens -> normalizer -> pre-tokenizer ->
// BPE -> post-processor, and the decoder back. Mirrors HF `tokenizers` step by step so the ids
// are identical.
import { type AddedTokenEntry, AddedVocabulary } from './added-tokens.js';
import { BpeModel } from './bpe-model.js';
import { type DecodeChain, buildDecoder } from './decoders.js';
import { TokenizerError, UnsupportedComponentError } from './errors.js';
import { gpt2TokenEnd } from './gpt2-scanner.js';
import { IdBuffer } from './id-buffer.js';
import { buildNormalizer } from './normalizers.js';
import { type PostProcessor, buildPostProcessor } from './post-processors.js';
import { type PreTokenizer, buildPreTokenizer } from './pre-tokenizers.js';
import { nodeBuiltin } from './node-builtins.js';
import { sha256Hex } from './sha256.js';

type Json = Record<string, unknown>;

export interface EncodeOptions {
  /** Add the post-processor's special tokens (HF's default, true). */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /**
   * Drop special added tokens (e.g. `<|endoftext|>`) from the text. Default true, as Hugging
   * Face `tokenizers` (`decode(ids, skip_special_tokens=True)`); false keeps them.
   */
  skipSpecialTokens?: boolean;
}

export interface SpecialTokenIds {
  bos?: number;
  eos?: number;
  pad?: number;
  unk?: number;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATE_GLOBAL = new RegExp(LONE_SURROGATE.source, 'g');

const BOS_NAMES = ['<s>', '<|begin_of_text|>', '<bos>', '[CLS]', '<|startoftext|>'];
const EOS_NAMES = ['</s>', '<|end_of_text|>', '<eos>', '<|endoftext|>', '[SEP]'];
const PAD_NAMES = ['<pad>', '<|padding|>', '[PAD]', '<|pad|>'];
const UNK_NAMES = ['<unk>', '[UNK]', '<|unk|>'];

/** JSON with object keys sorted recursively and no whitespace. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as Json)
      .sort()
      .filter((key) => (value as Json)[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Json)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

function parseAddedTokens(json: unknown): AddedTokenEntry[] {
  if (json === undefined || json === null) return [];
  if (!Array.isArray(json))
    throw new TokenizerError('tokenizer.json: added_tokens must be an array');
  return json.map((entry: Json, index) => {
    if (typeof entry?.content !== 'string' || !Number.isInteger(entry.id)) {
      throw new TokenizerError(
        `tokenizer.json: added_tokens[${index}] needs a string content and an integer id`,
      );
    }
    return {
      content: entry.content,
      special: entry.special === true,
      singleWord: entry.single_word === true,
      lstrip: entry.lstrip === true,
      rstrip: entry.rstrip === true,
      normalized: entry.normalized !== false,
    };
  });
}

export class Tokenizer {
  readonly model: BpeModel;
  readonly vocabSize: number;
  readonly specialTokens: SpecialTokenIds;
  private readonly json: Json;
  private readonly added: AddedVocabulary;
  private readonly preTokenizer: PreTokenizer | undefined;
  private readonly postProcessor: PostProcessor | undefined;
  private readonly decoder: DecodeChain | undefined;
  private cachedHash: string | undefined;

  private constructor(json: Json) {
    this.json = json;
    const model = json.model as Json | undefined;
    if (model === null || typeof model !== 'object')
      throw new TokenizerError('tokenizer.json: missing model');
    const modelType = model.type ?? (model.merges !== undefined ? 'BPE' : undefined);
    if (modelType !== 'BPE') {
      throw new UnsupportedComponentError(
        `model ${JSON.stringify(modelType)}`,
        'only BPE models are supported',
      );
    }
    if (json.truncation !== null && json.truncation !== undefined) {
      throw new UnsupportedComponentError('truncation', 'set "truncation": null');
    }
    if (json.padding !== null && json.padding !== undefined) {
      throw new UnsupportedComponentError('padding', 'set "padding": null');
    }
    this.model = new BpeModel(model);
    const normalize = buildNormalizer(json.normalizer);
    this.added = new AddedVocabulary(
      parseAddedTokens(json.added_tokens),
      this.model.vocab,
      normalize,
    );
    this.preTokenizer = buildPreTokenizer(json.pre_tokenizer);
    this.postProcessor = buildPostProcessor(json.post_processor);
    this.decoder = buildDecoder(json.decoder);

    const contents = new Set(this.model.vocab.keys());
    for (const token of this.added.tokens) contents.add(token.content);
    this.vocabSize = contents.size;
    this.specialTokens = this.findSpecialTokens();
  }

  /** Reads a Hugging Face tokenizer.json file. */
  static fromFile(path: string): Tokenizer {
    const fs = nodeBuiltin<typeof import('node:fs')>('node:fs', 'Tokenizer.fromFile');
    let text: string;
    try {
      text = fs.readFileSync(path, 'utf8');
    } catch (error) {
      throw new TokenizerError(`cannot read tokenizer file ${path}: ${(error as Error).message}`);
    }
    try {
      return Tokenizer.fromJSON(text);
    } catch (error) {
      if (error instanceof TokenizerError) {
        error.message = `${path}: ${error.message}`;
      }
      throw error;
    }
  }

  /** Builds a tokenizer from tokenizer.json text or its parsed object. */
  static fromJSON(json: string | object): Tokenizer {
    let parsed: unknown = json;
    if (typeof json === 'string') {
      try {
        parsed = JSON.parse(json);
      } catch (error) {
        throw new TokenizerError(`tokenizer.json is not valid JSON: ${(error as Error).message}`);
      }
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new TokenizerError('tokenizer.json must be a JSON object');
    }
    return new Tokenizer(parsed as Json);
  }

  private findSpecialTokens(): SpecialTokenIds {
    const find = (names: string[]): number | undefined => {
      for (const name of names) {
        const token = this.added.byContent.get(name);
        if (token?.special) return token.id;
      }
      return undefined;
    };
    const result: SpecialTokenIds = {};
    const eos = find(EOS_NAMES);
    // GPT-2 style vocabularies use <|endoftext|> as both beginning and end of text.
    const bos =
      find(BOS_NAMES) ?? (this.added.byContent.get('<|endoftext|>')?.special ? eos : undefined);
    const pad = find(PAD_NAMES);
    const unkName = this.model.unkToken;
    const unk = unkName !== undefined ? this.tokenToId(unkName) : find(UNK_NAMES);
    if (bos !== undefined) result.bos = bos;
    if (eos !== undefined) result.eos = eos;
    if (pad !== undefined) result.pad = pad;
    if (unk !== undefined) result.unk = unk;
    return result;
  }

  /** Token ids of `text`, exactly as HF `tokenizers` encodes it. */
  encode(text: string, options: EncodeOptions = {}): Uint32Array {
    const out = new IdBuffer(Math.max(16, text.length >> 2));
    this.encodeInto(text, out, options.addSpecialTokens !== false);
    return out.toArray();
  }

  /** Encodes each text on this thread (see `encodeBatchParallel` for worker threads). */
  encodeBatch(texts: string[], options: EncodeOptions = {}): Uint32Array[] {
    return texts.map((text) => this.encode(text, options));
  }

  private encodeInto(text: string, out: IdBuffer, addSpecialTokens: boolean): void {
    // JavaScript strings may hold lone surrogates; HF receives them as U+FFFD.
    if (LONE_SURROGATE.test(text)) text = text.replace(LONE_SURROGATE_GLOBAL, '\ufffd');
    const post = addSpecialTokens ? this.postProcessor : undefined;
    if (post) out.pushAll(post.prefix);
    const segments = this.added.extractAndNormalize(text);
    const model = this.model;
    const preTokenizer = this.preTokenizer;
    const words: string[] = [];
    segments.forEach((segment, index) => {
      if (segment.id >= 0) {
        out.push(segment.id);
        return;
      }
      if (preTokenizer === undefined) {
        model.encodeWord(segment.text, out);
        return;
      }
      const scan = preTokenizer.byteLevelScan;
      if (scan) {
        let text = segment.text;
        if (scan.addPrefixSpace && !text.startsWith(' ')) text = ` ${text}`;
        for (let start = 0; start < text.length; ) {
          const end = gpt2TokenEnd(text, start);
          model.encodeByteLevelSpan(text, start, end, out);
          start = end;
        }
        return;
      }
      words.length = 0;
      preTokenizer.split(segment.text, words, index === 0);
      if (preTokenizer.byteLevel) for (const word of words) model.encodeByteLevelWord(word, out);
      else for (const word of words) model.encodeWord(word, out);
    });
    if (post) out.pushAll(post.suffix);
  }

  /**
   * Text of `ids` through the file's decoder; unknown ids are skipped, and so are special
   * tokens unless `skipSpecialTokens: false`, as HF does.
   */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const skipSpecialTokens = options.skipSpecialTokens ?? true;
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const added = this.added.byId.get(id);
      if (added) {
        if (!(skipSpecialTokens && added.special)) tokens.push(added.text);
        continue;
      }
      const token = this.model.idToToken[id];
      if (token !== undefined) tokens.push(token);
    }
    return this.decoder ? this.decoder(tokens).join('') : tokens.join(' ');
  }

  tokenToId(token: string): number | undefined {
    return this.added.byContent.get(token)?.id ?? this.model.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.added.byId.get(id)?.text ?? this.model.idToToken[id];
  }

  /** Whether `id` is a special added token. */
  isSpecialToken(id: number): boolean {
    return this.added.isSpecial(id);
  }

  /** The tokenizer.json text (2-space indented, keys in file order). */
  toJSON(): string {
    return JSON.stringify(this.json, null, 2);
  }

  /** SHA-256 (hex) of the canonical JSON: keys sorted, no whitespace. */
  get hash(): string {
    this.cachedHash ??= sha256Hex(canonicalJson(this.json));
    return this.cachedHash;
  }
}
