#ifndef ZKCTL_CZOOKEEPER_SHIM_H
#define ZKCTL_CZOOKEEPER_SHIM_H
/* The multi-threaded client: its own I/O and completion threads, no event loop of ours. */
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>
#include <zookeeper/zookeeper_version.h>
#endif
