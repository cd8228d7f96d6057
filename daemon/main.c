/*
 * loketd: one node of a loket federation. main wires the modules together
 * around one libuv loop and one ZeroMQ context, and takes them down again
 * in order on SIGTERM or SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>
#include <zmq.h>

#include "common/config.h"
#include "common/interrupt.h"
#include "common/key.h"
#include "common/log.h"
#include "common/paths.h"
#include "daemon/backup.h"
#include "daemon/control.h"
#include "daemon/metrics.h"
#include "daemon/node.h"
#include "daemon/notify.h"
#include "daemon/sync/sync.h"
#include "proto/error.h"

struct daemon {
	uv_loop_t loop;
	void *zctx;
	struct node *node;
	struct control control;
	struct backup backup;
	struct sync sync;
	struct metrics metrics;
	uv_signal_t sigterm;
	uv_signal_t sighup;
	uv_signal_t sigint;
	struct notify_watchdog watchdog;
	struct control_command reload; /* sync's "reload", which main wraps */
	int started;
	int stopping;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: loketd [-t] [-c FILE] [-k KEYFILE]\n"
	        "\n"
	        "Runs one node of a loket federation in the foreground, logging to stderr.\n"
	        "\n"
	        "  -c FILE     configuration (default: $LOKET_CONF, else %s)\n"
	        "  -k KEYFILE  the node's private key, instead of [node] key (under systemd:\n"
	        "              the credential systemd passes, %%d/node.key)\n"
	        "  -t          check the configuration and the key file, then exit (0: ok)\n"
	        "  -h, --help  this text\n"
	        "  --version   the version\n",
	        LOKET_DEFAULT_CONF);
}

static void daemon_on_signal_closed(uv_handle_t *h)
{
	(void)h;
}

static void daemon_on_control_closed(struct control *c)
{
	(void)c;
}

static void daemon_on_sync_closed(struct sync *s)
{
	(void)s;
}

/* The control socket closes once a backup being synced has answered its client. */
static void daemon_on_backup_closed(struct backup *b)
{
	struct daemon *d = (struct daemon *)((char *)b - offsetof(struct daemon, backup));
	control_close(&d->control, daemon_on_control_closed);
}

static void daemon_stop(struct daemon *d, const char *why)
{
	if (d->stopping)
		return;
	d->stopping = 1;
	log_info("stopping: %s", why);
	notify_systemd("STOPPING=1");
	metrics_close(&d->metrics, NULL);
	notify_watchdog_close(&d->watchdog);
	sync_close(&d->sync, daemon_on_sync_closed);
	backup_close(&d->backup, daemon_on_backup_closed);
	uv_close((uv_handle_t *)&d->sigterm, daemon_on_signal_closed);
	uv_close((uv_handle_t *)&d->sigint, daemon_on_signal_closed);
	uv_close((uv_handle_t *)&d->sighup, daemon_on_signal_closed);
}

static void daemon_on_signal(uv_signal_t *h, int signum)
{
	daemon_stop(h->data, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/*
 * Tells systemd a reload has ended, and how: STATUS= is what `systemctl
 * status` shows. A failed reload leaves the node running on the roster it
 * had, so it is READY=1 either way (ExecReload=loket reload is what makes
 * `systemctl reload` itself fail).
 */
static void daemon_reloaded(int rc, const json_t *result, const char *err)
{
	char status[1200];

	if (rc == 0)
		snprintf(status, sizeof(status), "roster reloaded: %lld members",
		         (long long)json_integer_value(json_object_get(result, "members")));
	else
		snprintf(status, sizeof(status),
		         "reload failed, running on the previous roster: %s", err);
	notify_ready(status);
}

/* `loket reload` on the control socket: sync's command, inside RELOADING=1 ... READY=1. */
static int daemon_on_reload_command(void *data, const json_t *req, json_t **result, char *err,
                                    size_t errlen)
{
	struct daemon *d = data;
	notify_reloading();
	int rc = d->reload.handler(d->reload.data, req, result, err, errlen);
	daemon_reloaded(rc, *result, err);
	return rc;
}

/* SIGHUP: re-read the roster, as `loket reload` does. */
static void daemon_on_sighup(uv_signal_t *h, int signum)
{
	(void)signum;
	struct daemon *d = h->data;
	char err[1024];
	json_t *result = NULL;
	notify_reloading();
	int rc = sync_reload(&d->sync, &result, err, sizeof(err));
	if (rc != 0)
		log_error("reload on SIGHUP failed, the roster is unchanged: %s", err);
	daemon_reloaded(rc, result, err);
	json_decref(result);
}

/* The inputs of a metrics snapshot: what `loket status` and `loket peers` show. */
static void daemon_metrics(void *data, json_t **status, json_t **peers, json_t **counters)
{
	struct daemon *d = data;
	if (node_status(d->node, status) != 0)
		*status = NULL;
	*peers = sync_peers(&d->sync);
	*counters = sync_counters(&d->sync);
}

/* Puts daemon_on_reload_command in front of the "reload" command sync added. */
static void daemon_wrap_reload(struct daemon *d)
{
	for (size_t i = 0; i < d->control.n_commands; i++) {
		struct control_command *c = &d->control.commands[i];
		if (strcmp(c->name, "reload") != 0)
			continue;
		d->reload = *c;
		c->handler = daemon_on_reload_command;
		c->data = d;
	}
}

/*
 * Loads the configuration and the key (key_path, else [node] key). With
 * check (-t) it stops there, says what it found and hands back nothing.
 */
static int daemon_load(const char *conf_path, const char *key_path, int check, struct node **out)
{
	char err[1024];
	struct config *cfg;
	int rc = config_load(conf_path, &cfg, err, sizeof(err));
	if (rc != 0) {
		log_error("%s", err);
		return rc;
	}
	log_set_level(cfg->log_level);
	struct key *key;
	rc = key_load(key_path ? key_path : cfg->key, &key, err, sizeof(err));
	if (rc != 0) {
		log_error("%s", err);
		config_free(cfg);
		return rc;
	}
	uint8_t self[32];
	key_public(key, self);
	if ((rc = config_check_self(cfg, self, err, sizeof(err))) != 0) {
		log_error("%s", err);
		key_free(key);
		config_free(cfg);
		return rc;
	}
	if (check) {
		printf("%s: ok: node %s of federation %s, %zu member%s, key %s\n", conf_path,
		       cfg->name, cfg->federation, cfg->n_members, cfg->n_members == 1 ? "" : "s",
		       key_path ? key_path : cfg->key);
		key_free(key);
		config_free(cfg);
		return 0;
	}
	rc = node_open_take(cfg, key, out, err, sizeof(err));
	if (rc != 0)
		log_error("%s", err);
	return rc;
}

static int daemon_run(struct daemon *d)
{
	char err[1024];
	int rc = control_init(&d->control, &d->loop, d->zctx, d->node, err, sizeof(err));
	if (rc != 0) {
		log_error("%s", err);
		return rc;
	}
	d->started = 1;
	backup_init(&d->backup, &d->loop, &d->control, d->node);
	uv_signal_init(&d->loop, &d->sigterm);
	uv_signal_init(&d->loop, &d->sigint);
	uv_signal_init(&d->loop, &d->sighup);
	d->sigterm.data = d;
	d->sigint.data = d;
	d->sighup.data = d;
	uv_signal_start(&d->sigterm, daemon_on_signal, SIGTERM);
	uv_signal_start(&d->sigint, daemon_on_signal, SIGINT);
	/* Also heard while a long read holds the loop: SQLite stops it (store_budget). */
	if (interrupt_arm(SIGTERM) != 0 || interrupt_arm(SIGINT) != 0)
		log_warn("a stop signal will wait for the request under way");
	rc = sync_init(&d->sync, &d->loop, d->zctx, d->node, &d->control, err, sizeof(err));
	if (rc != 0) {
		log_error("%s", err);
		daemon_stop(d, "sync could not start");
		return rc;
	}
	uv_signal_start(&d->sighup, daemon_on_sighup, SIGHUP);
	daemon_wrap_reload(d);
	rc = notify_watchdog_start(&d->watchdog, &d->loop);
	if (rc != 0) {
		log_error("watchdog: cannot start its timer: %s", uv_strerror(rc));
		daemon_stop(d, "the watchdog could not start");
		return rc;
	}
	if (d->node->cfg->metrics[0] &&
	    (rc = metrics_init(&d->metrics, &d->loop, d->node->cfg->metrics, daemon_metrics, d, err,
	                       sizeof(err))) != 0) {
		log_error("%s", err);
		daemon_stop(d, "metrics could not start");
		return rc;
	}

	char ready[256];
	snprintf(ready, sizeof(ready), "node %s of federation %s ready", d->node->cfg->name,
	         d->node->cfg->federation);
	log_info("node %s (%s) of federation %s ready", d->node->cfg->name, d->node->self_b64,
	         d->node->cfg->federation);
	notify_ready(ready);
	return uv_run(&d->loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *conf_path = getenv("LOKET_CONF"), *key_path = NULL;
	int opt, check = 0;
	while ((opt = getopt_long(argc, argv, "c:hk:t", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conf_path = optarg;
			break;
		case 'k':
			key_path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("loketd %s\n", LOKET_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!conf_path || !conf_path[0])
		conf_path = LOKET_DEFAULT_CONF;
	if (sodium_init() < 0) {
		log_error("libsodium failed to initialise");
		return 1;
	}

	struct daemon d = {0};
	if (daemon_load(conf_path, key_path, check, &d.node) != 0)
		return 1;
	if (check)
		return fflush(stdout) == 0 ? 0 : 1;
	int rc = uv_loop_init(&d.loop);
	if (rc != 0) {
		log_error("libuv: %s", uv_strerror(rc));
		node_free(d.node);
		return 1;
	}
	d.zctx = zmq_ctx_new();
	if (!d.zctx) {
		log_error("zeromq: %s", zmq_strerror(zmq_errno()));
		node_free(d.node);
		return 1;
	}

	rc = daemon_run(&d);
	/* Run until every handle's close callback has come. */
	if (d.started && !d.stopping)
		daemon_stop(&d, "the loop ended");
	while (uv_run(&d.loop, UV_RUN_DEFAULT) != 0)
		;
	int closed = uv_loop_close(&d.loop);
	if (closed != 0)
		log_error("libuv loop did not close cleanly: %s", uv_strerror(closed));
	zmq_ctx_term(d.zctx);
	node_free(d.node);
	log_info("stopped");
	return rc == 0 && closed == 0 ? 0 : 1;
}
