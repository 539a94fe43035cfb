// Contributor nicknames: the one rule for what a nickname may hold (the coordinator applies it to
// every hello and status, the pages to what a person types) and friendly defaults. Markup is kept
// as text here; pages show nicknames through textContent only, so escaping is not this file's job.

/** Longest nickname, in code points. */
export const NICKNAME_MAX = 24;

/** Control (Cc) and format (Cf) characters, line and paragraph separators. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
/** A zero-width joiner (Cf) that glues two emoji into one (👩‍💻) is part of the emoji: kept. */
const EMOJI_BEFORE = /\p{Extended_Pictographic}\p{Emoji_Modifier}?\uFE0F?$/u;
const EMOJI_AFTER = /^\p{Extended_Pictographic}/u;

/**
 * The nickname as the coordinator stores and every page shows it, or null when nothing is left.
 *
 * @example
 *   sanitizeNickname('  Ada\u0007  Lovelace\n') // 'Ada Lovelace'
 *   sanitizeNickname('\u202e')                  // null
 */
export function sanitizeNickname(raw: unknown): string | null {
  if (typeof raw !== 'string') return null;
  const text = raw
    .normalize('NFC')
    .replace(/\uFEFF/g, '') // a format character that JS's \s counts as whitespace
    // Whitespace of any kind (tabs, newlines, separators) is a word break, not a deletion.
    .replace(/\s+/gu, ' ')
    .replace(INVISIBLE, (c, at: number, s: string) => (c === '\u200D' && EMOJI_BEFORE.test(s.slice(0, at)) && EMOJI_AFTER.test(s.slice(at + 1)) ? c : ''))
    .replace(/ {2,}/g, ' ')
    .trim();
  const cut = cutToCodePoints(text, NICKNAME_MAX).trim();
  return cut === '' ? null : cut;
}

/** The longest prefix of whole graphemes (an emoji with its modifiers stays whole) of at most `max` code points. */
function cutToCodePoints(text: string, max: number): string {
  if ([...text].length <= max) return text;
  let out = '';
  let used = 0;
  for (const { segment } of new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text)) {
    const n = [...segment].length;
    if (used + n > max) break;
    out += segment;
    used += n;
  }
  return out;
}

const ADJECTIVES = [
  'Curious', 'Brave', 'Clever', 'Cheerful', 'Gentle', 'Swift', 'Quiet', 'Bright', 'Lucky', 'Nimble',
  'Patient', 'Jolly', 'Bold', 'Calm', 'Eager', 'Friendly', 'Happy', 'Keen', 'Merry', 'Witty',
  'Sunny', 'Mighty', 'Plucky', 'Zesty',
];
const ANIMALS = [
  'Otter', 'Fox', 'Panda', 'Owl', 'Hedgehog', 'Koala', 'Penguin', 'Badger', 'Dolphin', 'Falcon',
  'Lynx', 'Moose', 'Puffin', 'Rabbit', 'Seal', 'Tiger', 'Turtle', 'Walrus', 'Wombat', 'Yak',
  'Heron', 'Gecko', 'Llama', 'Squirrel',
];

/**
 * A friendly default nickname such as "Curious Otter"; `rng` returns numbers in [0, 1).
 *
 * @example
 *   randomNickname() // 'Nimble Puffin'
 */
export function randomNickname(rng: () => number = Math.random): string {
  const pick = (words: string[]) => words[Math.min(words.length - 1, Math.floor(rng() * words.length))];
  return `${pick(ADJECTIVES)} ${pick(ANIMALS)}`;
}
