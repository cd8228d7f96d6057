/*
 * text: words as a Dutch or English reader compares them, for the
 * directory and the broker (desk/directory.c, desk/broker.c). Folding
 * lowercases and takes the diacritics off Latin letters ("Coöperatie" and
 * "cooperatie" fold alike, as the search index's unicode61 tokenizer with
 * remove_diacritics does); the word walk splits folded text as the index
 * does; stopwords are the Dutch and English function words a query should
 * not rank on; the stem is the part of a word a prefix query keeps
 * ("eenzaamheid" -> "eenzaam", "residents" -> "resident"). It holds no
 * state and touches no database.
 */
#ifndef LOKET_DESK_TEXT_H
#define LOKET_DESK_TEXT_H

#include <stddef.h>

/*
 * Folds len bytes of UTF-8 into a new malloc'd NUL-terminated string:
 * ASCII and Latin letters lowercased, diacritics removed (U+00C0..U+017F,
 * combining marks dropped), "ß" "æ" "œ" "ĳ" spelled out. Other characters
 * are copied; invalid bytes become spaces. Never fails (aborts on OOM).
 */
char *text_fold(const char *s, size_t len);

/*
 * Whether a and b (NUL-terminated UTF-8) are equal once folded and with
 * leading and trailing spaces ignored.
 */
int text_equal(const char *a, const char *b);

/*
 * The next word of folded text at *p (before end): letters, digits and
 * non-ASCII letters; punctuation and spaces separate words. Sets *word and
 * *len and moves *p past it; returns 0 when no word is left.
 */
int text_next_word(const char **p, const char *end, const char **word, size_t *len);

/* Whether the folded word is a Dutch or English stopword. */
int text_stopword(const char *word, size_t len);

/*
 * The length of the stem of a folded word for a prefix query: a common
 * Dutch or English suffix taken off (heid, ingen, ers, en, ness, s, ...)
 * when at least 4 bytes remain. Words shorter than 6 bytes are their own
 * stem; the caller matches them exactly.
 */
size_t text_stem(const char *word, size_t len);

#endif
