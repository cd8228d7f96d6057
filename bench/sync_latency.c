/*
 * sync_latency: the put-to-readable latency that bench/sync reports. It
 * puts one entity at the first node's control socket and polls the others
 * with get until every one of them returns it; the time from sending the
 * put to the last successful get is one sample. Speaks the control
 * protocol (proto/CONTROL.md) directly, so no process start is measured.
 *
 *   sync_latency COUNT DATA_DIR_OF_WRITER DATA_DIR...   (prints one sample in ms per line)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>
#include <zmq.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* Sends the request in sb and returns whether the reply says "ok": true. */
static int call(void *sock, msgpack_sbuffer *sb)
{
	char buf[65536];
	if (zmq_send(sock, sb->data, sb->size, 0) < 0)
		return -1;
	int n = zmq_recv(sock, buf, sizeof(buf), 0);
	if (n < 0)
		return -1;
	if (n > (int)sizeof(buf))
		n = sizeof(buf);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	int ok = 0;
	if (msgpack_unpack_next(&u, buf, (size_t)n, NULL) == MSGPACK_UNPACK_SUCCESS &&
	    u.data.type == MSGPACK_OBJECT_MAP) {
		for (uint32_t i = 0; i < u.data.via.map.size; i++) {
			msgpack_object_kv *kv = &u.data.via.map.ptr[i];
			if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 2 &&
			    memcmp(kv->key.via.str.ptr, "ok", 2) == 0 &&
			    kv->val.type == MSGPACK_OBJECT_BOOLEAN)
				ok = kv->val.via.boolean;
		}
	}
	msgpack_unpacked_destroy(&u);
	return ok;
}

static void *open_node(void *ctx, const char *dir)
{
	char ep[4200];
	snprintf(ep, sizeof(ep), "ipc://%s/control.sock", dir);
	void *s = zmq_socket(ctx, ZMQ_REQ);
	int linger = 0;
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_connect(s, ep) != 0) {
		fprintf(stderr, "cannot connect %s\n", ep);
		exit(1);
	}
	return s;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: sync_latency COUNT WRITER_DATA READER_DATA...\n");
		return 2;
	}
	int count = (int)strtol(argv[1], NULL, 10);
	void *ctx = zmq_ctx_new();
	void *writer = open_node(ctx, argv[2]);
	int n_readers = argc - 3;
	void **readers = calloc((size_t)n_readers, sizeof(*readers));
	for (int r = 0; r < n_readers; r++)
		readers[r] = open_node(ctx, argv[3 + r]);
	char owner[128];
	snprintf(owner, sizeof(owner), "%s", getenv("LAT_OWNER") ? getenv("LAT_OWNER") : "n1");
	unsigned run = (unsigned)time(NULL);
	for (int i = 0; i < count; i++) {
		char id[64], name[64];
		snprintf(id, sizeof(id), "lat%u-%d", run, i);
		snprintf(name, sizeof(name), "Latency probe %d", i);
		msgpack_sbuffer put, get;
		msgpack_sbuffer_init(&put);
		msgpack_sbuffer_init(&get);
		msgpack_packer pk;
		msgpack_packer_init(&pk, &put, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 2);
		pack_str(&pk, "cmd");
		pack_str(&pk, "put");
		pack_str(&pk, "ops");
		msgpack_pack_array(&pk, 1);
		msgpack_pack_map(&pk, 3);
		pack_str(&pk, "coll");
		pack_str(&pk, "expert");
		pack_str(&pk, "id");
		pack_str(&pk, id);
		pack_str(&pk, "fields");
		msgpack_pack_map(&pk, 1);
		pack_str(&pk, "name");
		pack_str(&pk, name);
		msgpack_packer_init(&pk, &get, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 4);
		pack_str(&pk, "cmd");
		pack_str(&pk, "get");
		pack_str(&pk, "coll");
		pack_str(&pk, "expert");
		pack_str(&pk, "id");
		pack_str(&pk, id);
		pack_str(&pk, "owner");
		pack_str(&pk, owner);

		double t0 = now_ms();
		if (call(writer, &put) != 1) {
			fprintf(stderr, "put %s failed\n", id);
			return 1;
		}
		for (int r = 0; r < n_readers; r++) {
			while (call(readers[r], &get) != 1) {
				if (now_ms() - t0 > 10000) {
					fprintf(stderr, "%s not readable after 10 s\n", id);
					return 1;
				}
			}
		}
		printf("%.3f\n", now_ms() - t0);
		msgpack_sbuffer_destroy(&put);
		msgpack_sbuffer_destroy(&get);
	}
	for (int r = 0; r < n_readers; r++)
		zmq_close(readers[r]);
	zmq_close(writer);
	free(readers);
	zmq_ctx_term(ctx);
	return 0;
}
