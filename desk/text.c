/*
 * Folding, word splitting, stopwords and stems for the directory and the
 * broker. The folding table covers Latin-1 and Latin Extended-A, which is
 * every letter Dutch, English, German, French and the Scandinavian and
 * Central European languages of the region's names use; the word rule is
 * the one store_fts_query uses (bytes >= 0x80 are letters) with Unicode
 * punctuation and spaces taken out, so a word here is a token there.
 */
#include "desk/text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Base letters of U+00C0..U+017F, one byte per code point: a letter, or
 * '1' "ae", '2' "ss", '3' "ij", '4' "oe", '.' keep the character.
 */
static const char latin_fold[] = "aaaaaa1ceeeeiiiidnooooo.ouuuuy.2" /* U+00C0..U+00DF */
                                 "aaaaaa1ceeeeiiiidnooooo.ouuuuy.y" /* U+00E0..U+00FF */
                                 "aaaaaa"
                                 "cccccccc"
                                 "dddd"
                                 "eeeeeeeeee"
                                 "gggggggg"
                                 "hhhh" /* U+0100..U+0127 */
                                 "iiiiiiiiii"
                                 "33"
                                 "jj"
                                 "kkk"
                                 "llllllllll"
                                 "nnnnnnnnn" /* U+0128..U+014B */
                                 "oooooo"
                                 "44"
                                 "rrrrrr"
                                 "ssssssss"
                                 "tttttt"
                                 "uuuuuuuuuuuu" /* U+014C..U+0173 */
                                 "ww"
                                 "yyy"
                                 "zzzzzz"
                                 "s"; /* U+0174..U+017F */

_Static_assert(sizeof(latin_fold) == 0x180 - 0xc0 + 1, "one entry per code point");

/* Decodes one UTF-8 character at p; returns its length, or 0 if invalid. */
static size_t utf8_decode(const unsigned char *p, const unsigned char *end, uint32_t *cp)
{
	size_t n, i;
	uint32_t c = p[0];

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		c &= 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		c &= 0x07;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c < 0xe000))
		return 0;
	*cp = c;
	return n;
}

char *text_fold(const char *s, size_t len)
{
	/* Folding never lengthens: "ß" (2 bytes) -> "ss", others shrink or stay. */
	char *out = malloc(len + 1);
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	size_t n = 0;

	if (!out)
		abort();
	while (p < end) {
		uint32_t cp;
		size_t k = utf8_decode(p, end, &cp);

		if (k == 0) {
			out[n++] = ' ';
			p++;
			continue;
		}
		if (cp < 0x80) {
			out[n++] = (cp >= 'A' && cp <= 'Z') ? (char)(cp + 32) : (char)cp;
		} else if (cp >= 0x300 && cp < 0x370) {
			/* A combining mark: the diacritic of a decomposed letter. */
		} else if (cp >= 0xc0 && cp < 0x180 && latin_fold[cp - 0xc0] != '.') {
			char f = latin_fold[cp - 0xc0];
			const char *two = f == '1'   ? "ae"
			                  : f == '2' ? "ss"
			                  : f == '3' ? "ij"
			                             : "oe";

			if (f >= 'a' && f <= 'z') {
				out[n++] = f;
			} else {
				out[n++] = two[0];
				out[n++] = two[1];
			}
		} else {
			memcpy(out + n, p, k);
			n += k;
		}
		p += k;
	}
	out[n] = '\0';
	return out;
}

int text_equal(const char *a, const char *b)
{
	char *fa = text_fold(a, strlen(a)), *fb = text_fold(b, strlen(b));
	const char *pa = fa, *pb = fb;
	size_t la, lb;
	int eq;

	while (*pa == ' ')
		pa++;
	while (*pb == ' ')
		pb++;
	la = strlen(pa);
	lb = strlen(pb);
	while (la > 0 && pa[la - 1] == ' ')
		la--;
	while (lb > 0 && pb[lb - 1] == ' ')
		lb--;
	eq = la == lb && memcmp(pa, pb, la) == 0;
	free(fa);
	free(fb);
	return eq;
}

/* Whether the character at p (of length k, code point cp) belongs to a word. */
static int word_char(uint32_t cp)
{
	if (cp < 0x80)
		return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
		       (cp >= 'A' && cp <= 'Z');
	/* Latin-1 punctuation and signs, × and ÷, general punctuation, spaces. */
	if (cp < 0xc0 || cp == 0xd7 || cp == 0xf7)
		return 0;
	if ((cp >= 0x2000 && cp < 0x2070) || cp == 0x3000 || cp == 0xfeff)
		return 0;
	return 1;
}

int text_next_word(const char **p, const char *end, const char **word, size_t *len)
{
	const unsigned char *q = (const unsigned char *)*p, *e = (const unsigned char *)end;
	const unsigned char *start = NULL;
	uint32_t cp;
	size_t k;

	while (q < e) {
		k = utf8_decode(q, e, &cp);
		if (k == 0) {
			k = 1;
			cp = ' ';
		}
		if (word_char(cp)) {
			if (!start)
				start = q;
		} else if (start) {
			break;
		}
		q += k;
	}
	*p = (const char *)q;
	if (!start)
		return 0;
	*word = (const char *)start;
	*len = (size_t)(q - start);
	return 1;
}

/*
 * Folded stopwords, sorted bytewise for bsearch: the Snowball lists for
 * Dutch and English, and the words of a question that say nothing about
 * its subject ("wij zoeken", "we are looking for").
 */
static const char *const stopwords[] = {
    "a",       "about",     "above",     "after",   "again",   "against", "al",         "all",
    "alle",    "alleen",    "alles",     "als",     "also",    "altijd",  "am",         "among",
    "an",      "and",       "andere",    "any",     "are",     "as",      "at",         "be",
    "because", "been",      "before",    "being",   "below",   "ben",     "between",    "bij",
    "both",    "but",       "by",        "can",     "could",   "daar",    "dan",        "dat",
    "de",      "deze",      "did",       "die",     "dit",     "do",      "doch",       "doen",
    "does",    "door",      "down",      "during",  "dus",     "each",    "een",        "eens",
    "elders",  "else",      "elsewhere", "en",      "er",      "for",     "from",       "further",
    "gaat",    "ge",        "geen",      "geweest", "had",     "has",     "have",       "having",
    "he",      "heb",       "hebben",    "heeft",   "hem",     "hen",     "her",        "here",
    "herself", "het",       "hier",      "him",     "himself", "his",     "hoe",        "how",
    "hun",     "i",         "iemand",    "iets",    "if",      "ik",      "in",         "into",
    "is",      "it",        "its",       "itself",  "ja",      "je",      "jullie",     "just",
    "kan",     "kon",       "kunnen",    "looking", "maar",    "me",      "mee",        "meer",
    "men",     "met",       "mij",       "mijn",    "moet",    "more",    "most",       "my",
    "na",      "naar",      "nee",       "niet",    "niets",   "no",      "nog",        "nor",
    "not",     "nu",        "of",        "off",     "om",      "omdat",   "on",         "once",
    "onder",   "only",      "ons",       "onze",    "ook",     "op",      "or",         "other",
    "our",     "ourselves", "out",       "over",    "own",     "pas",     "rarely",     "reeds",
    "same",    "she",       "should",    "so",      "some",    "steeds",  "such",       "te",
    "tegen",   "than",      "that",      "the",     "their",   "them",    "themselves", "then",
    "there",   "these",     "they",      "this",    "those",   "through", "to",         "toch",
    "toen",    "too",       "tot",       "u",       "uit",     "under",   "until",      "up",
    "us",      "uw",        "vaak",      "van",     "veel",    "very",    "voor",       "waar",
    "want",    "waren",     "was",       "wat",     "we",      "wel",     "welke",      "werd",
    "were",    "wezen",     "what",      "when",    "where",   "which",   "while",      "who",
    "whom",    "why",       "wie",       "wij",     "wil",     "will",    "with",       "worden",
    "wordt",   "would",     "you",       "your",    "zal",     "ze",      "zelf",       "zich",
    "zij",     "zijn",      "zo",        "zoeken",  "zonder",  "zou",     "zullen",
};

static int word_cmp(const void *key, const void *elem)
{
	const char *const *w = key;
	const char *s = *(const char *const *)elem;

	return strcmp(*w, s);
}

int text_stopword(const char *word, size_t len)
{
	char buf[16];
	const char *key = buf;

	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, word, len);
	buf[len] = '\0';
	return bsearch(&key, stopwords, sizeof(stopwords) / sizeof(stopwords[0]),
	               sizeof(stopwords[0]), word_cmp) != NULL;
}

/* Suffixes tried in order; the first that leaves at least 4 bytes is taken off. */
static const char *const suffixes[] = {
    "heden", "heid", "ingen", "ing", "ness", "ities", "ity", "ies",
    "ers",   "en",   "es",    "ed",  "ly",   "e",     "s",
};

size_t text_stem(const char *word, size_t len)
{
	if (len < 6)
		return len;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t k = strlen(suffixes[i]);

		if (len >= k + 4 && memcmp(word + len - k, suffixes[i], k) == 0)
			return len - k;
	}
	return len;
}
