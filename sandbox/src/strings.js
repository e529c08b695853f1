'use strict';

/** Converts "some words here" to "someWordsHere". */
function camelCase(text) {
  return text
    .trim()
    .split(/\s+/)
    .map((word, index) =>
      index === 0 ? word.toLowerCase() : word[0].toUpperCase() + word.slice(1),
    )
    .join('');
}

/** Counts how often each word occurs. */
function wordCounts(text) {
  const counts = new Map();
  for (const word of text.toLowerCase().match(/[a-z']+/g) ?? []) {
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
}

module.exports = { camelCase, wordCounts };
