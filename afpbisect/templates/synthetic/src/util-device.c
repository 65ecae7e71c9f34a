/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * Live device registry, printed at shutdown like Suricata's util-device.c.
 */

#define SC_LOG_MODULE "device"
#include "suricata-common.h"
#include "util-device.h"

static LiveDevice *live_devices = NULL;
static LiveDevice *live_devices_tail = NULL;

LiveDevice *LiveRegisterDevice(const char *dev)
{
    LiveDevice *pd = LiveGetDevice(dev);
    if (pd != NULL)
        return pd;

    pd = calloc(1, sizeof(*pd));
    if (pd == NULL)
        return NULL;
    snprintf(pd->dev, sizeof(pd->dev), "%s", dev);
    SC_ATOMIC_INIT(pd->pkts);
    SC_ATOMIC_INIT(pd->drop);
    SC_ATOMIC_INIT(pd->invalid_checksums);
    if (live_devices_tail == NULL) {
        live_devices = pd;
    } else {
        live_devices_tail->next = pd;
    }
    live_devices_tail = pd;
    return pd;
}

LiveDevice *LiveGetDevice(const char *dev)
{
    for (LiveDevice *pd = live_devices; pd != NULL; pd = pd->next) {
        if (strcmp(pd->dev, dev) == 0)
            return pd;
    }
    return NULL;
}

int LiveDeviceListClean(void)
{
    LiveDevice *pd = live_devices;
    while (pd != NULL) {
        LiveDevice *next = pd->next;
        uint64_t pkts = SC_ATOMIC_GET(pd->pkts);
        uint64_t drop = SC_ATOMIC_GET(pd->drop);
        SCLogNotice("%s: packets: %" PRIu64 ", drops: %" PRIu64
                    " (%.2f%%), invalid chksum: %" PRIu64,
                pd->dev, pkts, drop, pkts > 0 ? 100 * ((double)drop) / (double)pkts : 0,
                SC_ATOMIC_GET(pd->invalid_checksums));
        free(pd);
        pd = next;
    }
    live_devices = live_devices_tail = NULL;
    return 0;
}
