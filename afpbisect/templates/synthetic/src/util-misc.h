/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * Small string helpers.
 */

#ifndef SURICATA_UTIL_MISC_H
#define SURICATA_UTIL_MISC_H

char *UtilStrip(char *s);
int UtilParseBool(const char *s, int def);
int UtilParseInt(const char *s, int def);
size_t SCStrlcpy(char *dst, const char *src, size_t size);

#endif /* SURICATA_UTIL_MISC_H */
