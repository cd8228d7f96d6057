/*
 * loket-http: the HTTP/JSON API for partner systems, a program of its own
 * beside loketd. It reads loketd's configuration ([node] data for the
 * control socket, [http] for itself), serves HTTP until SIGTERM or SIGINT,
 * and reaches the node only through the control socket, as the CLI does:
 * a flaw in HTTP parsing is in a process that holds no key and no store.
 * This file only wires the modules together.
 */
#include <err.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/paths.h"
#include "http/server.h"

static void usage(void)
{
	fprintf(stderr,
	        "usage: loket-http [-c FILE]\n"
	        "  serves the HTTP API of the node that FILE configures ([http] listen,\n"
	        "  default 127.0.0.1:8470); FILE defaults to $LOKET_CONF, else %s\n",
	        LOKET_DEFAULT_CONF);
}

int main(int argc, char *argv[])
{
	const char *path = getenv("LOKET_CONF");
	struct config *cfg = NULL;
	struct server *srv = NULL;
	char errbuf[1024];
	sigset_t set;
	int opt, sig, status = 1;

	if (!path || !path[0])
		path = LOKET_DEFAULT_CONF;
	while ((opt = getopt(argc, argv, "c:h")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	if (config_load(path, &cfg, errbuf, sizeof(errbuf)) < 0)
		errx(1, "%s", errbuf);
	log_set_level(cfg->log_level);

	/* Signals are taken by sigwait here; the server's threads never see them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct server_options o = {
	    .listen = cfg->http_listen,
	    .data_dir = cfg->data,
	    .tokens_path = cfg->http_tokens,
	    .timeout_s = cfg->http_timeout_s,
	    .rate = cfg->http_rate,
	    .burst = cfg->http_burst,
	    .connections = cfg->http_connections,
	    .client_connections = cfg->http_client_connections,
	    .stream_max_s = cfg->http_stream_max_s,
	};
	if (server_start(&o, &srv, errbuf, sizeof(errbuf)) < 0) {
		log_error("http: %s", errbuf);
		goto cleanup;
	}
	log_info("http: listening on %s for the node %s (tokens in %s)", cfg->http_listen,
	         cfg->name, cfg->http_tokens);
	do {
		if (sigwait(&set, &sig) != 0)
			break;
	} while (sig == SIGHUP); /* the token file is read again by itself when it changes */
	log_info("http: stopping");
	status = 0;
cleanup:
	server_stop(srv);
	config_free(cfg);
	return status;
}
