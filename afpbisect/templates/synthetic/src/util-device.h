/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * Live devices: per-interface counters printed at shutdown.
 */

#ifndef SURICATA_UTIL_DEVICE_H
#define SURICATA_UTIL_DEVICE_H

#define LIVE_DEVICE_NAME_LENGTH 48

typedef struct LiveDevice_ {
    char dev[LIVE_DEVICE_NAME_LENGTH];
    SC_ATOMIC_DECLARE(uint64_t, pkts);
    SC_ATOMIC_DECLARE(uint64_t, drop);
    SC_ATOMIC_DECLARE(uint64_t, invalid_checksums);
    struct LiveDevice_ *next;
} LiveDevice;

LiveDevice *LiveRegisterDevice(const char *dev);
LiveDevice *LiveGetDevice(const char *dev);
int LiveDeviceListClean(void);

#endif /* SURICATA_UTIL_DEVICE_H */
