/*
 * loketd: one node of a loket federation. main wires the modules together
 * around one libuv loop and one ZeroMQ context, and takes them down again
 * in order on SIGTERM or SIGINT.
 */
#include <errno.h>
#include <getopt.h>
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
#include "daemon/control.h"
#include "daemon/node.h"
#include "daemon/notify.h"
#include "daemon/sync/sync.h"
#include "proto/error.h"

struct daemon {
	uv_loop_t loop;
	void *zctx;
	struct node *node;
	struct control control;
	struct sync sync;
	uv_signal_t sigterm;
	uv_signal_t sighup;
	uv_signal_t sigint;
	int started;
	int stopping;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: loketd [-c FILE]\n"
	        "\n"
	        "Runs one node of a loket federation in the foreground, logging to stderr.\n"
	        "\n"
	        "  -c FILE     configuration (default: $LOKET_CONF, else %s)\n"
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

static void daemon_stop(struct daemon *d, const char *why)
{
	if (d->stopping)
		return;
	d->stopping = 1;
	log_info("stopping: %s", why);
	notify_systemd("STOPPING=1");
	sync_close(&d->sync, daemon_on_sync_closed);
	control_close(&d->control, daemon_on_control_closed);
	uv_close((uv_handle_t *)&d->sigterm, daemon_on_signal_closed);
	uv_close((uv_handle_t *)&d->sigint, daemon_on_signal_closed);
	uv_close((uv_handle_t *)&d->sighup, daemon_on_signal_closed);
}

static void daemon_on_signal(uv_signal_t *h, int signum)
{
	daemon_stop(h->data, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* SIGHUP: re-read the roster, as `loket reload` does. */
static void daemon_on_sighup(uv_signal_t *h, int signum)
{
	(void)signum;
	struct daemon *d = h->data;
	char err[1024];
	json_t *result = NULL;
	if (sync_reload(&d->sync, &result, err, sizeof(err)) != 0)
		log_error("reload on SIGHUP failed, the roster is unchanged: %s", err);
	json_decref(result);
}

static int daemon_load(const char *conf_path, struct node **out)
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
	rc = key_load(cfg->key, &key, err, sizeof(err));
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

	log_info("node %s (%s) of federation %s ready", d->node->cfg->name, d->node->self_b64,
	         d->node->cfg->federation);
	notify_systemd("READY=1");
	return uv_run(&d->loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *conf_path = getenv("LOKET_CONF");
	int opt;
	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conf_path = optarg;
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
	if (daemon_load(conf_path, &d.node) != 0)
		return 1;
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
