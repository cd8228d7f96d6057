/*
 * Runs a fuzz harness over the files of a corpus directory, so that every
 * seed (and every crash once found and saved there) is replayed by ctest
 * without libFuzzer.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return 1;
	}
	uint8_t *buf = malloc(1 << 21);
	if (!buf) {
		fclose(f);
		return 1;
	}
	size_t n = fread(buf, 1, 1 << 21, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int runs = 0;
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		if (!d) {
			perror(argv[i]);
			return 1;
		}
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char path[4096];
			int n = snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			if (n < 0 || (size_t)n >= sizeof(path) || run_file(path)) {
				closedir(d);
				return 1;
			}
			runs++;
		}
		closedir(d);
	}
	printf("%d inputs ran\n", runs);
	return runs > 0 ? 0 : 1;
}
