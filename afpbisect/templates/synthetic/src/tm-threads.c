/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * Engine control flags and thread start accounting.
 */

#define SC_LOG_MODULE "threads"
#include "suricata-common.h"
#include "tm-threads.h"

static SC_ATOMIC_DECLARE(int, ctl_flags);
static SC_ATOMIC_DECLARE(unsigned int, running);
static SC_ATOMIC_DECLARE(int, failed);

int TmThreadsGetCtlFlags(void)
{
    return SC_ATOMIC_GET(ctl_flags);
}

void TmThreadsSetCtlFlags(int flags)
{
    __atomic_fetch_or(&ctl_flags_sc_atomic__, flags, __ATOMIC_SEQ_CST);
}

/** \brief a worker passed its start synchronisation and is in its capture loop */
void TmThreadsSetRunning(void)
{
    (void)SC_ATOMIC_ADD(running, 1);
}

unsigned int TmThreadsGetRunning(void)
{
    return SC_ATOMIC_GET(running);
}

void TmThreadsSetFailed(void)
{
    (void)SC_ATOMIC_SET(failed, 1);
}

int TmThreadsFailed(void)
{
    return SC_ATOMIC_GET(failed);
}

void TmThreadsAnnounceStarted(unsigned int workers)
{
    SCLogNotice("Threads created -> W: %u FM: 0 FR: 0   Engine started.", workers);
}
