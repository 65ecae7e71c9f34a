/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * Small string helpers used by the configuration parser.
 */

#define SC_LOG_MODULE "util-misc"
#include "suricata-common.h"
#include "util-misc.h"
#include <ctype.h>

/** \brief strip leading/trailing white space, in place */
char *UtilStrip(char *s)
{
    while (*s != '\0' && isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    return s;
}

/** \brief copy src into dst of size bytes, always NUL terminated (BSD strlcpy)
 *  \retval strlen(src) */
size_t SCStrlcpy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);
    if (size > 0) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

/** \brief parse a YAML boolean (yes/no, true/false, on/off, 1/0) */
int UtilParseBool(const char *s, int def)
{
    if (s == NULL || *s == '\0')
        return def;
    if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0 || strcasecmp(s, "on") == 0 ||
            strcmp(s, "1") == 0)
        return 1;
    if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 || strcasecmp(s, "off") == 0 ||
            strcmp(s, "0") == 0)
        return 0;
    return def;
}

/** \brief parse a decimal integer, \retval def when not a number */
int UtilParseInt(const char *s, int def)
{
    char *end = NULL;
    if (s == NULL || *s == '\0')
        return def;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < -2147483647L || v > 2147483647L)
        return def;
    return (int)v;
}
