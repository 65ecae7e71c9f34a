/* Copyright (C) 2024 afpbisect synthetic target
 *
 * \file
 *
 * Atomic helpers with the same shape as Suricata's util-atomic.h,
 * implemented with the GCC __atomic builtins (sequentially consistent).
 * SC_ATOMIC_ADD/SUB return the value *before* the operation.
 */

#ifndef SURICATA_UTIL_ATOMIC_H
#define SURICATA_UTIL_ATOMIC_H

#define SC_ATOMIC_DECLARE(type, name) type name##_sc_atomic__

#define SC_ATOMIC_INIT(name) __atomic_store_n(&(name##_sc_atomic__), 0, __ATOMIC_SEQ_CST)

#define SC_ATOMIC_GET(name) __atomic_load_n(&(name##_sc_atomic__), __ATOMIC_SEQ_CST)

#define SC_ATOMIC_SET(name, val)                                                                   \
    __atomic_store_n(&(name##_sc_atomic__), (val), __ATOMIC_SEQ_CST)

#define SC_ATOMIC_ADD(name, val)                                                                   \
    __atomic_fetch_add(&(name##_sc_atomic__), (val), __ATOMIC_SEQ_CST)

#define SC_ATOMIC_SUB(name, val)                                                                   \
    __atomic_fetch_sub(&(name##_sc_atomic__), (val), __ATOMIC_SEQ_CST)

#endif /* SURICATA_UTIL_ATOMIC_H */
