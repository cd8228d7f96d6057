/*
 * backup: the control command "backup" (proto/CONTROL.md), a consistent
 * copy of the running node's store into a new file. The copy is made on
 * the loop thread through the store's own connection, BACKUP_STEP_PAGES
 * pages per loop iteration from an idle handle, so that peers and clients
 * are served between steps (and whatever is committed meanwhile goes into
 * the copy too); the copy's fsync and move into place, which touch only
 * the new file, run on the libuv thread pool. One backup at a time; the
 * client's reply comes when the file is in place.
 */
#ifndef LOKET_BACKUP_H
#define LOKET_BACKUP_H

#include <limits.h>
#include <stdint.h>

#include <uv.h>

#include "daemon/control.h"
#include "daemon/node.h"
#include "store/store.h"

/* 4 MiB of 16 KiB pages: 6 ms of the loop per step on the machine of README.md (quiet). */
#define BACKUP_STEP_PAGES 256

struct backup {
	uv_loop_t *loop;
	struct control *control;
	struct node *node;
	uv_idle_t idle;
	uv_work_t work;
	struct store_backup *sb; /* the backup running, if any */
	int working;             /* its commit is on the thread pool */
	int closing;
	uint64_t started_ns;
	uint64_t seq; /* this node's head in the copy */
	int commit_rc;
	char commit_err[2 * PATH_MAX + 128];
	char file[PATH_MAX];
	void (*on_closed)(struct backup *b);
};

/* Adds the "backup" command to c, for node's store. */
int backup_init(struct backup *b, uv_loop_t *loop, struct control *c, struct node *node);
/*
 * Stops: a backup still copying is abandoned (its client told so, its
 * temporary file removed); one being synced is waited for, and answered.
 * cb runs once the handle is closed; close the control socket after it.
 */
void backup_close(struct backup *b, void (*cb)(struct backup *b));

#endif
