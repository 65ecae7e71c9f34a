/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * Reads only the `af-packet:` block list of suricata.yaml, line by line:
 *
 *   af-packet:
 *     - interface: NAME
 *       threads: N
 *       copy-mode: ips
 *       copy-iface: PEER
 *       cluster-id: N
 *
 * Other keys are ignored; the section ends at the next top-level key.
 * An item named `default` provides defaults for the other items.
 */

#define SC_LOG_MODULE "conf-yaml"
#include "suricata-common.h"
#include "conf-yaml.h"
#include "util-misc.h"

typedef struct RawItem_ {
    char iface[AFP_IFACE_NAME_LENGTH];
    char threads[32];
    char copy_mode[32];
    char copy_iface[AFP_IFACE_NAME_LENGTH];
    char cluster_id[32];
    char cluster_type[64];
    char defrag[16];
    char promisc[16];
    char ring_size[32];
} RawItem;

/** \brief remove a trailing comment and surrounding quotes from a value */
static char *ConfYamlValue(char *v)
{
    v = UtilStrip(v);
    if (*v == '"' || *v == '\'') {
        char q = *v++;
        char *end = strchr(v, q);
        if (end != NULL)
            *end = '\0';
        return v;
    }
    char *hash = strstr(v, " #");
    if (hash != NULL)
        *hash = '\0';
    return UtilStrip(v);
}

static void ConfYamlSet(RawItem *item, const char *key, const char *val)
{
#define SET(field) snprintf(item->field, sizeof(item->field), "%s", val)
    if (strcmp(key, "threads") == 0)
        SET(threads);
    else if (strcmp(key, "copy-mode") == 0)
        SET(copy_mode);
    else if (strcmp(key, "copy-iface") == 0)
        SET(copy_iface);
    else if (strcmp(key, "cluster-id") == 0)
        SET(cluster_id);
    else if (strcmp(key, "cluster-type") == 0)
        SET(cluster_type);
    else if (strcmp(key, "defrag") == 0)
        SET(defrag);
    else if (strcmp(key, "promisc") == 0 || strcmp(key, "disable-promisc") == 0) {
        if (strcmp(key, "disable-promisc") == 0)
            val = UtilParseBool(val, 0) ? "no" : "yes";
        SET(promisc);
    } else if (strcmp(key, "ring-size") == 0)
        SET(ring_size);
#undef SET
}

static const char *Pick(const char *v, const char *def)
{
    return (v != NULL && *v != '\0') ? v : def;
}

static int ConfYamlFinish(const RawItem *raw, const RawItem *def, int index, AFPIfaceConfig *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->iface, sizeof(c->iface), "%s", raw->iface);

    const char *threads = Pick(raw->threads, Pick(def->threads, "auto"));
    if (strcmp(threads, "auto") == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads = n > 0 ? (int)n : 1;
    } else {
        c->threads = UtilParseInt(threads, -1);
    }
    if (c->threads < 1 || c->threads > AFP_MAX_THREADS) {
        SCLogError("%s: invalid threads value '%s'", c->iface, threads);
        return -1;
    }

    const char *mode = Pick(raw->copy_mode, Pick(def->copy_mode, ""));
    if (strcmp(mode, "ips") == 0) {
        c->copy_mode = AFP_COPY_MODE_IPS;
    } else if (strcmp(mode, "tap") == 0) {
        c->copy_mode = AFP_COPY_MODE_TAP;
    } else {
        c->copy_mode = AFP_COPY_MODE_NONE;
    }
    const char *out = Pick(raw->copy_iface, "");
    if (c->copy_mode != AFP_COPY_MODE_NONE) {
        if (*out == '\0') {
            SCLogError("%s: copy-mode set but no copy-iface", c->iface);
            return -1;
        }
        snprintf(c->out_iface, sizeof(c->out_iface), "%s", out);
    }

    /* Suricata's default is 99 for every interface; give each one its own
     * group instead so a config without cluster-id still starts */
    c->cluster_id = UtilParseInt(Pick(raw->cluster_id, def->cluster_id), 99 + index);
    c->cluster_type = AFPParseClusterType(Pick(raw->cluster_type, Pick(def->cluster_type, "cluster_flow")));
    c->defrag = UtilParseBool(Pick(raw->defrag, def->defrag), 1);
    c->promisc = UtilParseBool(Pick(raw->promisc, def->promisc), 1);
    c->ring_size = UtilParseInt(Pick(raw->ring_size, def->ring_size), 0);
    return 0;
}

/** \retval number of interfaces, -1 on error */
int ConfYamlLoadAFPacket(const char *filename, AFPIfaceConfig *confs, int max)
{
    FILE *fp = fopen(filename, "r");
    if (fp == NULL) {
        SCLogError("failed to open configuration file %s: %s", filename, strerror(errno));
        return -1;
    }

    static RawItem items[AFP_MAX_IFACES];
    RawItem def;
    memset(&def, 0, sizeof(def));
    memset(items, 0, sizeof(items));
    int nitems = 0;
    RawItem *cur = NULL;
    int in_section = 0;
    char line[1024];

    while (fgets(line, sizeof(line), fp) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char *s = UtilStrip(line);
        if (*s == '\0' || *s == '#')
            continue;
        int top_level = !(line[0] == ' ' || line[0] == '\t');
        if (!in_section) {
            if (top_level && strncmp(line, "af-packet:", 10) == 0)
                in_section = 1;
            continue;
        }
        if (top_level)
            break; /* next top-level key ends the section */

        if (s[0] == '-' && (s[1] == ' ' || s[1] == '\0')) {
            s = UtilStrip(s + 1);
            cur = NULL;
            if (strncmp(s, "interface:", 10) == 0) {
                const char *name = ConfYamlValue(s + 10);
                if (strcmp(name, "default") == 0) {
                    memset(&def, 0, sizeof(def));
                    cur = &def;
                } else if (nitems < max && nitems < AFP_MAX_IFACES) {
                    cur = &items[nitems++];
                    snprintf(cur->iface, sizeof(cur->iface), "%s", name);
                } else {
                    SCLogError("too many af-packet interfaces (max %d)", max);
                    fclose(fp);
                    return -1;
                }
            }
            continue;
        }
        if (cur == NULL)
            continue;
        char *colon = strchr(s, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        ConfYamlSet(cur, UtilStrip(s), ConfYamlValue(colon + 1));
    }
    fclose(fp);

    for (int i = 0; i < nitems; i++) {
        if (ConfYamlFinish(&items[i], &def, i, &confs[i]) != 0)
            return -1;
    }
    return nitems;
}
