/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * Console logging in Suricata's default console format "<Level>: <module>: <message>".
 * Every file defines SC_LOG_MODULE before including this header.
 */

#ifndef SURICATA_UTIL_DEBUG_H
#define SURICATA_UTIL_DEBUG_H

typedef enum {
    SC_LOG_ERROR = 1,
    SC_LOG_WARNING,
    SC_LOG_NOTICE,
    SC_LOG_INFO,
    SC_LOG_PERF,
    SC_LOG_CONFIG,
    SC_LOG_DEBUG,
} SCLogLevel;

#ifndef SC_LOG_MODULE
#define SC_LOG_MODULE "suricata"
#endif

void SCLogInitConsole(void);
void SCLogSetVerbosity(int level);
void SCLogMessage(SCLogLevel level, const char *module, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define SCLogError(...)   SCLogMessage(SC_LOG_ERROR, SC_LOG_MODULE, __VA_ARGS__)
#define SCLogWarning(...) SCLogMessage(SC_LOG_WARNING, SC_LOG_MODULE, __VA_ARGS__)
#define SCLogNotice(...)  SCLogMessage(SC_LOG_NOTICE, SC_LOG_MODULE, __VA_ARGS__)
#define SCLogInfo(...)    SCLogMessage(SC_LOG_INFO, SC_LOG_MODULE, __VA_ARGS__)
#define SCLogPerf(...)    SCLogMessage(SC_LOG_PERF, SC_LOG_MODULE, __VA_ARGS__)
#define SCLogConfig(...)  SCLogMessage(SC_LOG_CONFIG, SC_LOG_MODULE, __VA_ARGS__)
#define SCLogDebug(...)   SCLogMessage(SC_LOG_DEBUG, SC_LOG_MODULE, __VA_ARGS__)

#define FatalError(...)                                                                            \
    do {                                                                                           \
        SCLogError(__VA_ARGS__);                                                                   \
        exit(EXIT_FAILURE);                                                                        \
    } while (0)

#endif /* SURICATA_UTIL_DEBUG_H */
