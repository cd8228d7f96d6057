/*
 * The store's checkpoints, kept off the write path. In WAL mode SQLite
 * copies the log back into the database file inside whichever commit
 * pushes the log past a threshold, and that commit waits for the copy and
 * two fsyncs: a hundred milliseconds or more for a large log, which is
 * what the slowest puts of a federation were waiting for. Here a thread
 * with its own connection runs passive checkpoints (they never block the
 * writer) when the writer reports that the log has grown; the writer
 * checkpoints itself only if the log grows far beyond that, as a bound on
 * the log's size should the thread fall behind. Only the store's own files
 * (store/) include this one.
 */
#ifndef LOKET_STORE_CKPT_H
#define LOKET_STORE_CKPT_H

#include <stddef.h>

#include <sqlite3.h>

/* Bytes of log after which the thread checkpoints, and after which the writer does. */
#define STORE_CKPT_SOON  (8L * 1024 * 1024)
#define STORE_CKPT_LIMIT (256L * 1024 * 1024)

struct store_ckpt;

/*
 * Starts checkpointing the store that writer (the writing connection) has open:
 * opens a second connection to the same file, starts the thread and takes
 * over writer's WAL hook (which replaces SQLite's own automatic checkpoints).
 */
int store_ckpt_start(sqlite3 *writer, struct store_ckpt **out, char *err, size_t errlen);
/* Stops the thread and closes its connection; NULL is a no-op. Before writer is closed. */
void store_ckpt_stop(struct store_ckpt *c);

#endif
