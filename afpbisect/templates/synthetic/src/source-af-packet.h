/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * AF_PACKET capture in copy-mode (IPS/TAP), modelled on Suricata's
 * source-af-packet.h.
 */

#ifndef SURICATA_SOURCE_AFP_H
#define SURICATA_SOURCE_AFP_H

#define AFP_IFACE_NAME_LENGTH 48

#define AFP_COPY_MODE_NONE 0
#define AFP_COPY_MODE_TAP  1
#define AFP_COPY_MODE_IPS  2

#define AFP_MAX_IFACES  64
#define AFP_MAX_THREADS 64

/** \brief one `- interface:` item of the af-packet section */
typedef struct AFPIfaceConfig_ {
    char iface[AFP_IFACE_NAME_LENGTH];
    char out_iface[AFP_IFACE_NAME_LENGTH];
    int threads;
    int copy_mode;
    int cluster_id;
    int cluster_type;
    int defrag;
    int promisc;
    int ring_size; /**< frames in the (emulated) ring */
} AFPIfaceConfig;

int AFPParseClusterType(const char *s);

int AFPRunModeStart(AFPIfaceConfig *confs, int n);
unsigned int AFPRunModeWorkers(void);
void AFPRunModeStop(void);

#endif /* SURICATA_SOURCE_AFP_H */
