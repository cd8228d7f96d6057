/*
 * Fuzzes note_parse and note_checkpoint_parse with arbitrary bytes. A
 * note that parses must come back byte for byte from its text and its
 * signature lines (one spelling per note), and every refusal must say why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct note n;
	struct note_checkpoint c;
	char err[256], *again;
	size_t len;

	if (note_checkpoint_parse(data, size, &c, err, sizeof(err)) != 0) {
		if (err[0] == '\0')
			abort();
	} else {
		char text[NOTE_MAX_TEXT];

		if (note_checkpoint_text(&c, text, sizeof(text), &len) != 0 || len != size ||
		    memcmp(text, data, size) != 0)
			abort();
	}
	if (note_parse(data, size, &n, err, sizeof(err)) != 0) {
		if (err[0] == '\0' || n.count != 0)
			abort();
		return 0;
	}
	if (n.count == 0 || n.text != data || n.text_len >= size)
		abort();
	again = malloc(size);
	if (again == NULL)
		abort();
	memcpy(again, n.text, n.text_len);
	len = n.text_len;
	again[len++] = '\n';
	for (size_t i = 0; i < n.count; i++)
		if (note_append_sig(again, size, &len, n.sig[i].name, n.sig[i].name_len,
		                    n.sig[i].key_id, n.sig[i].sig, n.sig[i].len) != 0)
			abort();
	if (len != size || memcmp(again, data, size) != 0)
		abort();
	(void)note_checkpoint_parse(n.text, n.text_len, &c, err, sizeof(err));
	free(again);
	return 0;
}
