/* Copyright (C) 2024 afpbisect synthetic target
 *
 * Common includes, in the spirit of Suricata's suricata-common.h.
 */

#ifndef SURICATA_COMMON_H
#define SURICATA_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdbool.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <unistd.h>
#include <signal.h>
#include <pthread.h>
#include <poll.h>
#include <time.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>

#include "util-atomic.h"
#include "util-debug.h"

#define BIT_U32(n) (1UL << (n))

#endif /* SURICATA_COMMON_H */
