/*
 * Tests of text: folding as the search index folds (case, Latin
 * diacritics precomposed and combining, ß æ œ ĳ spelled out, other scripts
 * kept, invalid bytes made spaces), folded equality, the word walk,
 * Dutch and English stopwords, and the stems prefix queries use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "desk/text.h"

static void fold_is(const char *in, const char *want)
{
	char *got = text_fold(in, strlen(in));

	assert_string_equal(got, want);
	free(got);
}

static void test_fold(void **state)
{
	(void)state;
	fold_is("Coöperatie", "cooperatie");
	fold_is("COÖPERATIE", "cooperatie");
	fold_is("Coo\xcc\x88peratie", "cooperatie"); /* o + combining diaeresis */
	fold_is("één café, à la crème", "een cafe, a la creme");
	fold_is("Straße Ærø Œuvre Ĳmuiden", "strasse aero oeuvre ijmuiden");
	fold_is("Łódź Dvořák Yıldız", "lodz dvorak yildiz");
	fold_is("× ÷ Ω кот", "× ÷ Ω кот");
	fold_is("a\xff"
	        "b\xc3",
	        "a b ");
	fold_is("", "");
}

static void test_equal(void **state)
{
	(void)state;
	assert_true(text_equal("coöperatie", "Cooperatie"));
	assert_true(text_equal(" Eenzaamheid ", "eenzaamheid"));
	assert_true(text_equal("Patiëntenparticipatie", "patientenparticipatie"));
	assert_false(text_equal("ouderen", "ouder"));
	assert_false(text_equal("sociale cohesie", "socialecohesie"));
}

static void test_words(void **state)
{
	const char *text = "wie eenzaam is, wat ouderen\xe2\x80\x99s willen: café-bezoek\xc2\xa0"
	                   "en kлюч";
	const char *p = text, *end = text + strlen(text), *w;
	const char *want[] = {"wie",    "eenzaam", "is",     "wat", "ouderen", "s",
	                      "willen", "café",    "bezoek", "en",  "kлюч"};
	size_t len, n = 0;

	(void)state;
	while (text_next_word(&p, end, &w, &len)) {
		assert_true(n < sizeof(want) / sizeof(want[0]));
		assert_int_equal(len, strlen(want[n]));
		assert_memory_equal(w, want[n], len);
		n++;
	}
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	assert_true(p == end);
}

static void test_stopwords(void **state)
{
	static const char *const stop[] = {"de",   "het",   "een",  "en",      "van", "in",  "op",
	                                   "voor", "met",   "wij",  "zoeken",  "the", "and", "for",
	                                   "who",  "which", "more", "looking", "mee"};
	static const char *const keep[] = {"eenzaamheid", "ouderen",   "loneliness", "wijken",
	                                   "cooperatie",  "merenwijk", "zoeker"};

	(void)state;
	for (size_t i = 0; i < sizeof(stop) / sizeof(stop[0]); i++)
		if (!text_stopword(stop[i], strlen(stop[i])))
			fail_msg("%s should be a stopword", stop[i]);
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (text_stopword(keep[i], strlen(keep[i])))
			fail_msg("%s should not be a stopword", keep[i]);
	/* The length matters, not a NUL: "heten" is no stopword, its prefix "het" is. */
	assert_true(text_stopword("heten", 3));
	assert_false(text_stopword("heten", 5));
}

static void stem_is(const char *word, const char *want)
{
	size_t n = text_stem(word, strlen(word));

	if (n != strlen(want) || memcmp(word, want, n) != 0)
		fail_msg("stem of %s: got %.*s, want %s", word, (int)n, word, want);
}

static void test_stem(void **state)
{
	(void)state;
	stem_is("eenzaamheid", "eenzaam");
	stem_is("mogelijkheden", "mogelijk");
	stem_is("ouderen", "ouder");
	stem_is("vrijwilligers", "vrijwillig");
	stem_is("wijken", "wijk");
	stem_is("bijeenkomsten", "bijeenkomst");
	stem_is("residents", "resident");
	stem_is("loneliness", "loneli");
	stem_is("cooperatie", "cooperati");
	stem_is("buren", "buren");  /* short: exact */
	stem_is("ouders", "ouder"); /* "s" off */
	stem_is("eenzaam", "eenzaam");
	stem_is("gezondheid", "gezond");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fold),  cmocka_unit_test(test_equal),
	    cmocka_unit_test(test_words), cmocka_unit_test(test_stopwords),
	    cmocka_unit_test(test_stem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
