/*
 * File names inside a node's data directory, shared by loketd and loket so
 * that both always look in the same place.
 */
#ifndef LOKET_PATHS_H
#define LOKET_PATHS_H

#define LOKET_STORE_FILE   "store.db"
#define LOKET_CONTROL_FILE "control.sock"
#define LOKET_LOCK_FILE    "loketd.lock"
/* The build sets it from the configuration directory (CMakeLists.txt). */
#ifndef LOKET_DEFAULT_CONF
#define LOKET_DEFAULT_CONF "/etc/loket/loket.conf"
#endif

#endif
