/*
 * backup: the "backup" command (see backup.h). A backup is three phases,
 * each on its own callback: the handler starts it and answers later
 * (CONTROL_LATER); the idle handle copies a step per loop iteration; the
 * thread pool syncs and moves the copy, and its after-callback answers.
 */
#include "daemon/backup.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/error.h"

static void backup_on_idle(uv_idle_t *idle);

/* Answers the backup's client and forgets the backup (removing a copy not in place). */
static void backup_done(struct backup *b, int rc, const char *err)
{
	json_t *result = NULL;

	if (rc == 0) {
		double secs = (double)(uv_hrtime() - b->started_ns) / 1e9;
		result = json_pack("{s:s, s:I, s:I, s:I, s:f}", "file", b->file, "bytes",
		                   (json_int_t)store_backup_bytes(b->sb), "pages",
		                   (json_int_t)store_backup_pages(b->sb), "seq", (json_int_t)b->seq,
		                   "seconds", secs);
		if (!result)
			abort();
		log_info("backup: %s written: %lld bytes, this node's changesets up to seq %llu, in"
		         " %.2f s",
		         b->file, store_backup_bytes(b->sb), (unsigned long long)b->seq, secs);
	} else {
		log_error("backup: %s", err);
	}
	store_backup_free(b->sb);
	b->sb = NULL;
	control_answer(b->control, rc, result, err);
}

static void backup_work(uv_work_t *work)
{
	struct backup *b = work->data;
	b->commit_rc = store_backup_commit(b->sb, b->commit_err, sizeof(b->commit_err));
}

static void backup_on_idle_closed(uv_handle_t *h)
{
	struct backup *b = h->data;
	if (b->on_closed)
		b->on_closed(b);
}

static void backup_after_work(uv_work_t *work, int status)
{
	struct backup *b = work->data;
	b->working = 0;
	if (status == UV_ECANCELED)
		backup_done(b, LOKET_E_UNAVAILABLE, "loketd is stopping; the backup was not made");
	else
		backup_done(b, b->commit_rc, b->commit_err);
	if (b->closing)
		uv_close((uv_handle_t *)&b->idle, backup_on_idle_closed);
}

/* One step of the copy; after the last, the copy is ended here and synced on the pool. */
static void backup_on_idle(uv_idle_t *idle)
{
	struct backup *b = idle->data;
	char err[2 * PATH_MAX + 128];
	uint8_t hash[32];
	int rc = store_backup_step(b->sb, BACKUP_STEP_PAGES, err, sizeof(err));

	if (rc == 0)
		return;
	uv_idle_stop(idle);
	if (rc == 1) {
		/* Nothing was committed since the last step, which made the copy whole. */
		if (store_head(b->node->store, b->node->self, &b->seq, hash) != 0)
			b->seq = 0;
		rc = store_backup_end(b->sb, err, sizeof(err));
	}
	if (rc == 0) {
		rc = uv_queue_work(b->loop, &b->work, backup_work, backup_after_work);
		if (rc == 0) {
			b->working = 1;
			return;
		}
		snprintf(err, sizeof(err), "cannot sync %s.tmp: %s", b->file, uv_strerror(rc));
	}
	backup_done(b, rc, err);
}

static int backup_handle(void *data, const json_t *req, json_t **result, char *err, size_t errlen)
{
	struct backup *b = data;
	const json_t *v = json_object_get(req, "file");
	const char *file;
	(void)result;

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		snprintf(err, errlen, "request lacks \"file\", the absolute path of the new file");
		return LOKET_E_BAD_REQUEST;
	}
	file = json_string_value(v);
	if (file[0] != '/') {
		snprintf(err, errlen,
		         "\"file\" must be an absolute path (loketd's working directory is not the"
		         " client's): \"%.256s\"",
		         file);
		return LOKET_E_BAD_REQUEST;
	}
	if (json_string_length(v) >= sizeof(b->file)) {
		snprintf(err, errlen, "\"file\" is too long: \"%.64s...\"", file);
		return LOKET_E_BAD_REQUEST;
	}
	if (b->closing) {
		snprintf(err, errlen, "loketd is stopping");
		return LOKET_E_UNAVAILABLE;
	}
	if (b->sb) {
		snprintf(err, errlen, "a backup (to %s) is running; try again when it is done",
		         b->file);
		return -EBUSY;
	}
	int rc = store_backup_start(b->node->store, file, &b->sb, err, errlen);
	if (rc != 0) {
		log_info("control: backup refused: %s", err);
		return rc;
	}
	snprintf(b->file, sizeof(b->file), "%s", file);
	b->started_ns = uv_hrtime();
	log_info("backup: copying the store to %s", b->file);
	uv_idle_start(&b->idle, backup_on_idle);
	return CONTROL_LATER;
}

int backup_init(struct backup *b, uv_loop_t *loop, struct control *c, struct node *node)
{
	memset(b, 0, sizeof(*b));
	b->loop = loop;
	b->control = c;
	b->node = node;
	uv_idle_init(loop, &b->idle);
	b->idle.data = b;
	b->work.data = b;
	return control_add_command(c, "backup", backup_handle, b);
}

void backup_close(struct backup *b, void (*cb)(struct backup *b))
{
	b->closing = 1;
	b->on_closed = cb;
	if (b->working) {
		/* Not started yet: cancelled; else its after-callback comes, and closes. */
		uv_cancel((uv_req_t *)&b->work);
		return;
	}
	if (b->sb) {
		uv_idle_stop(&b->idle);
		char err[PATH_MAX + 64];
		snprintf(err, sizeof(err), "loketd is stopping; the backup to %s was not made",
		         b->file);
		backup_done(b, LOKET_E_UNAVAILABLE, err);
	}
	uv_close((uv_handle_t *)&b->idle, backup_on_idle_closed);
}
