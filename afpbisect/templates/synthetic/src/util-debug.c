/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * Console logger. stdout is line buffered and each message is written with
 * a single call, so lines from different threads never interleave.
 */

#define SC_LOG_MODULE "debug"
#include "suricata-common.h"
#include <stdarg.h>

static int sc_log_verbosity = SC_LOG_NOTICE;

static const char *SCLogLevelName(SCLogLevel level)
{
    switch (level) {
        case SC_LOG_ERROR:
            return "Error";
        case SC_LOG_WARNING:
            return "Warning";
        case SC_LOG_NOTICE:
            return "Notice";
        case SC_LOG_INFO:
            return "Info";
        case SC_LOG_PERF:
            return "Perf";
        case SC_LOG_CONFIG:
            return "Config";
        case SC_LOG_DEBUG:
            return "Debug";
    }
    return "Unknown";
}

void SCLogInitConsole(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
}

void SCLogSetVerbosity(int level)
{
    sc_log_verbosity = level;
}

void SCLogMessage(SCLogLevel level, const char *module, const char *fmt, ...)
{
    char msg[1024];
    char line[1200];
    va_list ap;

    if ((int)level > sc_log_verbosity)
        return;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    snprintf(line, sizeof(line), "%s: %s: %s\n", SCLogLevelName(level), module, msg);
    fputs(line, stdout);
}
