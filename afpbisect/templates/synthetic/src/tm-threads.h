/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * Thread bookkeeping: engine control flags and the "running" count the
 * main thread waits on before it announces "Engine started.".
 */

#ifndef SURICATA_TM_THREADS_H
#define SURICATA_TM_THREADS_H

#define SURICATA_STOP (1 << 0)
#define SURICATA_KILL (1 << 1)

int TmThreadsGetCtlFlags(void);
void TmThreadsSetCtlFlags(int flags);
#define suricata_ctl_flags (TmThreadsGetCtlFlags())

void TmThreadsSetRunning(void);
unsigned int TmThreadsGetRunning(void);
void TmThreadsSetFailed(void);
int TmThreadsFailed(void);
void TmThreadsAnnounceStarted(unsigned int workers);

#endif /* SURICATA_TM_THREADS_H */
