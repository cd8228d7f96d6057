/*
 * bench_raw: the raw rates of this machine that loket's figures are read
 * against: Ed25519 sign and verify of a 300-byte message, SHA-256 of 300
 * bytes, and SQLite inserts of 300-byte rows in WAL mode, 10,000 rows per
 * transaction. Prints one "name rate unit" line each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_crypto(void)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	unsigned char msg[300], sig[crypto_sign_BYTES], hash[crypto_hash_sha256_BYTES];
	randombytes_buf(msg, sizeof(msg));
	crypto_sign_keypair(pk, sk);

	const int n = 20000;
	double t = now();
	for (int i = 0; i < n; i++)
		crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);
	printf("ed25519_sign %.0f per_s\n", n / (now() - t));

	t = now();
	for (int i = 0; i < n; i++)
		if (crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) != 0)
			abort();
	printf("ed25519_verify %.0f per_s\n", n / (now() - t));

	t = now();
	for (int i = 0; i < 10 * n; i++)
		crypto_hash_sha256(hash, msg, sizeof(msg));
	printf("sha256_300B %.0f per_s\n", 10 * n / (now() - t));
}

static void bench_sqlite(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/bench_raw.db", dir);
	unlink(path);
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		abort();
	sqlite3_exec(db,
	             "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	             "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);",
	             NULL, NULL, NULL);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES (?)", -1, &st, NULL);
	unsigned char row[300];
	randombytes_buf(row, sizeof(row));
	const int rows = 200000, per_tx = 10000;
	double t = now();
	for (int i = 0; i < rows; i++) {
		if (i % per_tx == 0)
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		sqlite3_bind_blob(st, 1, row, sizeof(row), SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_reset(st);
		if (i % per_tx == per_tx - 1)
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	printf("sqlite_insert_300B %.0f per_s\n", rows / (now() - t));
	sqlite3_finalize(st);
	sqlite3_close(db);
	unlink(path);
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	bench_crypto();
	bench_sqlite(argc > 1 ? argv[1] : "/tmp");
	return 0;
}
