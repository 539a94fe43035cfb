// Parsers for uploaded datasets: CSV (a header, numeric feature columns, an integer label
// column) and IDX (the original MNIST files, optionally gzip'd), into the byte Dataset every run
// trains on, and UTF-8 text (a .txt file), into a character corpus (text-corpus.ts).
// Validation errors name the file, line and column (or byte). Storing and serving live in
// registry.ts.
import { gunzipSync } from 'node:zlib';
import type { Dataset } from '../../shared/dataset.ts';
import { corpusFromText, DEFAULT_CONTEXT, distinctCharacters, MAX_VOCAB, MIN_TEXT_CHARS, TEXT_TRAIN_FRACTION, type TextCorpus } from './text-corpus.ts';

/** What an upload may be. Features are stored as bytes, so rows x features is the memory a dataset takes. */
export const UPLOAD_LIMITS = {
  /** Bytes of all files together, and of each file after gunzip. */
  maxBytes: 64 * 1024 * 1024,
  maxRows: 100_000,
  maxFeatures: 4096,
  minRows: 20,
  minClasses: 2,
  /** Labels are stored as bytes. */
  maxClasses: 256,
  /** A text corpus, after gunzip: one byte per character once tokenised. */
  maxTextBytes: 32 * 1024 * 1024,
} as const;

export type UploadErrorCode = 'bad_file' | 'too_large' | 'invalid_name' | 'name_taken';

const STATUS: Record<UploadErrorCode, number> = { bad_file: 400, too_large: 413, invalid_name: 400, name_taken: 409 };

/** A refused upload: `code` and `status` are what the HTTP route answers with. */
export class DatasetUploadError extends Error {
  override name = 'DatasetUploadError';
  readonly status: number;
  constructor(
    message: string,
    readonly code: UploadErrorCode = 'bad_file',
  ) {
    super(message);
    this.status = STATUS[code];
  }
}

export interface UploadFile {
  /** The name the file had on the uploader's disk: used in error messages and kept as provenance. */
  filename: string;
  bytes: Uint8Array;
  /** The content type the browser sent, if any ('text/plain' marks a text corpus). */
  type?: string;
}

export interface ParsedUpload {
  dataset: Dataset;
  format: 'csv' | 'idx';
  /**
   * How raw feature values became bytes, when they were not bytes already: min-max over the
   * whole dataset, byte = round(255 * (value - min) / (max - min)). A model trained on it
   * expects inputs scaled the same way (then byte/255, as every dataset).
   */
  scale?: { min: number; max: number };
  /** CSV: the header's names of the feature columns and of the label column. */
  columns?: { features: string[]; label: string };
  /** IDX: the shape of one example as the images file gives it, e.g. [28, 28]. */
  exampleShape?: number[];
}

const fmtBytes = (n: number) => (n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)} MiB` : `${n} bytes`);

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Unzips a gzip'd file (magic 1f 8b) up to the size limit; other files pass through. */
export function gunzipIfNeeded(file: UploadFile): UploadFile {
  if (!isGzip(file.bytes)) return file;
  try {
    const out = gunzipSync(file.bytes, { maxOutputLength: UPLOAD_LIMITS.maxBytes });
    return { filename: file.filename, bytes: new Uint8Array(out.buffer, out.byteOffset, out.byteLength) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw new DatasetUploadError(`${file.filename}: unzips to more than ${fmtBytes(UPLOAD_LIMITS.maxBytes)}, the most an upload may be`, 'too_large');
    }
    throw new DatasetUploadError(`${file.filename}: starts like a gzip file but does not unzip (${(err as Error).message})`);
  }
}

function checkCounts(where: string, rows: number, features: number, classes: number): void {
  const L = UPLOAD_LIMITS;
  if (rows < L.minRows) throw new DatasetUploadError(`${where}: ${rows} examples; a dataset needs at least ${L.minRows}`);
  if (rows > L.maxRows) throw new DatasetUploadError(`${where}: ${rows} examples; at most ${L.maxRows} are allowed`, 'too_large');
  if (features < 1) throw new DatasetUploadError(`${where}: no feature columns`);
  if (features > L.maxFeatures) throw new DatasetUploadError(`${where}: ${features} features; at most ${L.maxFeatures} are allowed`, 'too_large');
  if (classes < L.minClasses) throw new DatasetUploadError(`${where}: every label is ${classes - 1}; a dataset needs at least ${L.minClasses} classes (labels 0 and 1 at least)`);
}

// ---- CSV ----

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Splits one CSV line on `delim`, honouring double quotes ("" inside quotes is one quote). */
function splitCsvLine(line: string, delim: string, lineNo: number, where: string): string[] {
  if (!line.includes('"')) return line.split(delim);
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === delim) {
      cells.push(cell);
      cell = '';
    } else cell += ch;
  }
  if (quoted) throw new DatasetUploadError(`${where}: line ${lineNo}: a quote is not closed on that line (quoted line breaks are not supported)`);
  cells.push(cell);
  return cells;
}

/**
 * Parses a CSV dataset: a header row naming the columns, numeric features, and a label column
 * named `label` (any case) or else the last one, holding class numbers 0..255. Features that are
 * all integers in 0..255 are kept as they are; otherwise they are min-max scaled to bytes.
 * @example parseCsv(new TextEncoder().encode('x1,x2,label\n0.5,1.5,0\n...'), 'points.csv')
 */
export function parseCsv(bytes: Uint8Array, filename = 'upload.csv'): ParsedUpload {
  if (bytes.length > UPLOAD_LIMITS.maxBytes) throw new DatasetUploadError(`${filename}: ${fmtBytes(bytes.length)}; at most ${fmtBytes(UPLOAD_LIMITS.maxBytes)} are allowed`, 'too_large');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new DatasetUploadError(`${filename}: not UTF-8 text, so neither a CSV file nor an IDX file (IDX files start with two zero bytes)`);
  }
  const lines = text.split(/\r?\n/);
  // Line numbers below are 1-based, as an editor shows them; blank lines are skipped.
  const headerAt = lines.findIndex((l) => l.trim() !== '');
  if (headerAt < 0) throw new DatasetUploadError(`${filename}: the file is empty`);
  const headerLine = lines[headerAt];
  const delim = headerLine.includes(',') ? ',' : headerLine.includes('\t') ? '\t' : headerLine.includes(';') ? ';' : ',';
  const header = splitCsvLine(headerLine, delim, headerAt + 1, filename).map((h) => h.trim());
  if (header.length < 2) throw new DatasetUploadError(`${filename}: line ${headerAt + 1}: the header names ${header.length} column; a dataset needs feature columns and a label column, separated by commas`);
  if (header.every((h) => NUMBER.test(h))) {
    throw new DatasetUploadError(`${filename}: line ${headerAt + 1} holds numbers, not column names: the first row must be a header naming the columns (a label column named "label", or the last column)`);
  }
  const seen = new Set<string>();
  for (const [i, h] of header.entries()) {
    if (seen.has(h)) throw new DatasetUploadError(`${filename}: line ${headerAt + 1}, column ${i + 1}: the column name "${h}" is used twice`);
    seen.add(h);
  }
  const named = header.findIndex((h) => h.toLowerCase() === 'label');
  const labelCol = named >= 0 ? named : header.length - 1;
  const features = header.length - 1;
  if (features > UPLOAD_LIMITS.maxFeatures) throw new DatasetUploadError(`${filename}: ${features} feature columns; at most ${UPLOAD_LIMITS.maxFeatures} are allowed`, 'too_large');

  const dataLines: number[] = [];
  for (let i = headerAt + 1; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    dataLines.push(i);
    if (dataLines.length > UPLOAD_LIMITS.maxRows) throw new DatasetUploadError(`${filename}: more than ${UPLOAD_LIMITS.maxRows} rows; at most ${UPLOAD_LIMITS.maxRows} are allowed`, 'too_large');
  }
  const rows = dataLines.length;
  if (rows < UPLOAD_LIMITS.minRows) throw new DatasetUploadError(`${filename}: ${rows} data rows; a dataset needs at least ${UPLOAD_LIMITS.minRows}`);

  const raw = new Float32Array(rows * features);
  const y = new Uint8Array(rows);
  let min = Infinity;
  let max = -Infinity;
  let allBytes = true;
  let maxLabel = 0;
  const cellAt = (lineNo: number, col: number) => `${filename}: line ${lineNo}, column ${col + 1} ("${header[col]}")`;
  for (let r = 0; r < rows; r++) {
    const lineNo = dataLines[r] + 1;
    const cells = splitCsvLine(lines[dataLines[r]], delim, lineNo, filename);
    if (cells.length !== header.length) {
      throw new DatasetUploadError(`${filename}: line ${lineNo} has ${cells.length} cells; the header has ${header.length} columns`);
    }
    let f = r * features;
    for (let c = 0; c < cells.length; c++) {
      const cell = cells[c].trim();
      if (!NUMBER.test(cell)) {
        const what = cell === '' ? 'is empty' : `"${cell.length > 40 ? `${cell.slice(0, 37)}...` : cell}" is not a number`;
        throw new DatasetUploadError(c === labelCol ? `${cellAt(lineNo, c)}: the label ${what}; labels are class numbers 0 to ${UPLOAD_LIMITS.maxClasses - 1}` : `${cellAt(lineNo, c)}: ${what}`);
      }
      const v = Number(cell);
      if (c === labelCol) {
        if (!Number.isInteger(v) || v < 0 || v >= UPLOAD_LIMITS.maxClasses) {
          throw new DatasetUploadError(`${cellAt(lineNo, c)}: the label ${cell} is not a class number 0 to ${UPLOAD_LIMITS.maxClasses - 1}`);
        }
        y[r] = v;
        if (v > maxLabel) maxLabel = v;
        continue;
      }
      // Features are held as float32 until scaled: beyond its range a value would turn infinite.
      if (!Number.isFinite(Math.fround(v))) throw new DatasetUploadError(`${cellAt(lineNo, c)}: ${cell} is out of the range of a 32-bit float`);
      raw[f++] = v;
      if (v < min) min = v;
      if (v > max) max = v;
      if (allBytes && !(Number.isInteger(v) && v >= 0 && v <= 255)) allBytes = false;
    }
  }
  const classes = maxLabel + 1;
  checkCounts(filename, rows, features, classes);

  const x = new Uint8Array(rows * features);
  let scale: ParsedUpload['scale'];
  if (allBytes) x.set(raw);
  else {
    scale = { min, max };
    const k = max > min ? 255 / (max - min) : 0;
    // Clamped: raw holds float32 roundings of the values min and max were taken from.
    for (let i = 0; i < raw.length; i++) x[i] = Math.min(255, Math.max(0, Math.round((raw[i] - min) * k)));
  }
  return {
    dataset: { count: rows, features, classes, x, y },
    format: 'csv',
    ...(scale ? { scale } : {}),
    columns: { features: header.filter((_, i) => i !== labelCol), label: header[labelCol] },
  };
}

// ---- IDX ----

const IDX_TYPES: Record<number, string> = { 0x08: 'unsigned byte', 0x09: 'signed byte', 0x0b: 'short', 0x0c: 'int', 0x0d: 'float', 0x0e: 'double' };

interface IdxHeader {
  dims: number[];
  dataOffset: number;
}

/** True when the bytes start like an IDX file: two zero bytes, a type code, a dimension count. */
export function looksLikeIdx(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0 && bytes[2] in IDX_TYPES && bytes[3] >= 1 && bytes[3] <= 4;
}

function readIdxHeader(file: UploadFile): IdxHeader {
  const { bytes, filename } = file;
  if (!looksLikeIdx(bytes)) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
    throw new DatasetUploadError(`${filename}: not an IDX file: its magic number is 0x${magic.padEnd(8, '?')}, expected 0x00000803 (images) or 0x00000801 (labels)`);
  }
  if (bytes[2] !== 0x08) {
    throw new DatasetUploadError(`${filename}: IDX data of type 0x${bytes[2].toString(16).padStart(2, '0')} (${IDX_TYPES[bytes[2]]}) is not supported; features and labels must be unsigned bytes (type 0x08)`);
  }
  const n = bytes[3];
  const dataOffset = 4 + 4 * n;
  if (bytes.length < dataOffset) throw new DatasetUploadError(`${filename}: the IDX header says ${n} dimensions but the file ends after ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: n }, (_, i) => view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const got = bytes.length - dataOffset;
  if (got !== expected) {
    throw new DatasetUploadError(`${filename}: the IDX header gives the shape [${dims.join(', ')}], ${expected} bytes of data, but the file holds ${got}${got < expected ? ' (cut short?)' : ''}`);
  }
  return { dims, dataOffset };
}

/**
 * Parses an IDX pair: images (magic 0x00000803, [count, rows, cols] unsigned bytes; also
 * 0x00000802 [count, features]) and labels (magic 0x00000801, [count]). Pixels are kept as bytes.
 */
export function parseIdx(images: UploadFile, labels: UploadFile): ParsedUpload {
  const img = readIdxHeader(images);
  const lab = readIdxHeader(labels);
  if (img.dims.length < 2) throw new DatasetUploadError(`${images.filename}: an IDX images file has at least 2 dimensions (magic 0x00000803: count, rows, columns); this one has ${img.dims.length}`);
  if (lab.dims.length !== 1) throw new DatasetUploadError(`${labels.filename}: an IDX labels file has 1 dimension (magic 0x00000801); this one has ${lab.dims.length}`);
  const count = img.dims[0];
  if (lab.dims[0] !== count) {
    throw new DatasetUploadError(`the IDX files disagree on the count: ${images.filename} holds ${count} images, ${labels.filename} holds ${lab.dims[0]} labels`);
  }
  const exampleShape = img.dims.slice(1);
  const features = exampleShape.reduce((a, b) => a * b, 1);
  const y = labels.bytes.subarray(lab.dataOffset);
  let maxLabel = 0;
  for (let i = 0; i < y.length; i++) if (y[i] > maxLabel) maxLabel = y[i];
  checkCounts(`${images.filename} + ${labels.filename}`, count, features, maxLabel + 1);
  return {
    dataset: { count, features, classes: maxLabel + 1, x: images.bytes.slice(img.dataOffset), y: y.slice() },
    format: 'idx',
    exampleShape,
  };
}

/**
 * Parses what an admin uploaded: one CSV file, or two IDX files (images and labels, in either
 * order: they are told apart by their headers). Any file may be gzip'd.
 * Throws DatasetUploadError naming the file and, for CSV, the line and column.
 */
export function parseUpload(files: UploadFile[]): ParsedUpload {
  if (files.length === 0) throw new DatasetUploadError('no file was uploaded: send one CSV file, or an IDX images file and an IDX labels file');
  const total = files.reduce((a, f) => a + f.bytes.length, 0);
  if (total > UPLOAD_LIMITS.maxBytes) throw new DatasetUploadError(`the upload is ${fmtBytes(total)}; at most ${fmtBytes(UPLOAD_LIMITS.maxBytes)} are allowed`, 'too_large');
  const plain = files.map(gunzipIfNeeded);
  const idx = plain.filter((f) => looksLikeIdx(f.bytes));
  if (plain.length === 1) {
    if (idx.length === 1) {
      throw new DatasetUploadError(`${plain[0].filename} is an IDX file; an IDX upload needs two files: the images (magic 0x00000803) and the labels (magic 0x00000801)`);
    }
    return parseCsv(plain[0].bytes, plain[0].filename);
  }
  if (plain.length > 2 || idx.length !== plain.length) {
    const names = plain.map((f) => f.filename).join(', ');
    throw new DatasetUploadError(`got ${plain.length} files (${names}); send one CSV file, or exactly two IDX files (images and labels)`);
  }
  const [a, b] = plain;
  // The labels file is the one-dimensional one (magic ...01).
  const [images, labels] = a.bytes[3] === 1 && b.bytes[3] !== 1 ? [b, a] : [a, b];
  if (images.bytes[3] === 1) throw new DatasetUploadError(`${a.filename} and ${b.filename} are both IDX labels files (magic 0x00000801); one must be the images (magic 0x00000803)`);
  if (labels.bytes[3] !== 1) throw new DatasetUploadError(`neither ${a.filename} nor ${b.filename} is an IDX labels file (magic 0x00000801)`);
  return parseIdx(images, labels);
}

// ---- text ----

/** True for an upload of one text file (named .txt, or sent as text/plain): a character corpus. */
export function isTextUpload(files: UploadFile[]): boolean {
  if (files.length !== 1) return false;
  const [f] = files;
  return /\.txt(\.gz)?$/i.test(f.filename) || /^text\/plain\b/i.test(f.type ?? '');
}

/** Offset of the first byte that is not well-formed UTF-8, or -1 when all are. */
export function invalidUtf8At(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let more: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) [more, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [more, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [more, min] = [3, 0x10000];
    else return i;
    if (i + more >= b.length) return i;
    let cp = c & (0x3f >> more);
    for (let k = 1; k <= more; k++) {
      const d = b[i + k];
      if ((d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += more + 1;
  }
  return -1;
}

/**
 * Parses an uploaded UTF-8 text (a BOM is dropped) into a character corpus: its distinct
 * characters are the vocabulary (at most 255), the first 90 % of its characters train and the
 * last 10 % validate, cut into windows by the spec's context.
 * @example parseText({ filename: 'poems.txt', bytes: new TextEncoder().encode(text) }).corpus.vocab
 */
export function parseText(file: UploadFile): { format: 'text'; corpus: TextCorpus } {
  const { filename } = file;
  let bytes = gunzipIfNeeded(file).bytes;
  if (bytes.length > UPLOAD_LIMITS.maxTextBytes) {
    throw new DatasetUploadError(`${filename}: ${fmtBytes(bytes.length)} of text; a text corpus may be at most ${fmtBytes(UPLOAD_LIMITS.maxTextBytes)}`, 'too_large');
  }
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    const at = invalidUtf8At(bytes);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++;
    throw new DatasetUploadError(`${filename}: not UTF-8 text: the byte at offset ${at} (line ${line}), 0x${bytes[at].toString(16).padStart(2, '0')}, does not begin or continue a UTF-8 character; save the file as UTF-8`);
  }
  if (text.length === 0) throw new DatasetUploadError(`${filename}: the file is empty`);
  const vocab = distinctCharacters(text);
  if (vocab.length > MAX_VOCAB) {
    throw new DatasetUploadError(`${filename}: ${vocab.length} distinct characters; a text corpus may have at most ${MAX_VOCAB} (each character becomes a one-byte token)`);
  }
  const corpus = corpusFromText(text);
  if (corpus.ids.length < MIN_TEXT_CHARS) {
    const share = Math.round((1 - TEXT_TRAIN_FRACTION) * 100);
    throw new DatasetUploadError(`${filename}: ${corpus.ids.length} characters, too short for a window: a text corpus needs at least ${MIN_TEXT_CHARS}, so that its last ${share} % (the validation split) holds one window of ${DEFAULT_CONTEXT} characters and the character after it`);
  }
  return { format: 'text', corpus };
}
