/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nvml_child.h (private to nvml.c and nvml_child.c): the two children that load NVML, and the
 * NVML return codes both sides know. Everything else of NVML stays in nvml_child.c.
 */
#pragma once

#include <stddef.h>

#include "nvml.h"

/* nvmlReturn_t values used on both sides (NVML API reference, nvmlReturn_t) */
enum {
        NVML_SUCCESS = 0,
        NVML_ERROR_INVALID_ARGUMENT = 2,
        NVML_ERROR_NOT_SUPPORTED = 3,
        NVML_ERROR_NO_PERMISSION = 4,
        NVML_ERROR_NOT_FOUND = 6,
        NVML_ERROR_INSUFFICIENT_SIZE = 7,
        NVML_ERROR_IN_USE = 19,
        NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
};

/**
 * gpuh_nvml_query_child:
 * @fd: the pipe to the parent
 * @lib: the library to dlopen
 * @gpus, @n: the GPUs to ask about
 *
 * In the forked child: loads and initialises NVML, asks what gpuh_nvml_query_start()
 * describes and writes it to @fd as one JSON document ({"gpus": [...]} or {"error": LINE}).
 * Never returns (_exit).
 */
void gpuh_nvml_query_child(int fd, const char *lib, const struct gpuh_pci_addr *gpus, size_t n)
        __attribute__((noreturn));

/**
 * gpuh_nvml_change_child:
 * @fd, @lib: as gpuh_nvml_query_child()
 * @gpu, @op, @arg: the change (nvml.h, enum gpuh_nvml_op)
 *
 * In the forked child: makes the change and writes {} ({"id": N} for a created GI), or
 * {"error", "error_call", "code"} with NVML's answer, or {"error"} when NVML cannot be
 * loaded. Never returns (_exit).
 */
void gpuh_nvml_change_child(int fd, const char *lib, const struct gpuh_pci_addr *gpu, enum gpuh_nvml_op op,
                            const unsigned arg[3]) __attribute__((noreturn));
