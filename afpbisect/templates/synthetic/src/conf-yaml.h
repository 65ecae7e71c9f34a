/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * A deliberately small reader for the `af-packet:` section of suricata.yaml.
 */

#ifndef SURICATA_CONF_YAML_H
#define SURICATA_CONF_YAML_H

#include "source-af-packet.h"

int ConfYamlLoadAFPacket(const char *filename, AFPIfaceConfig *confs, int max);

#endif /* SURICATA_CONF_YAML_H */
