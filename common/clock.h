/* SPDX-License-Identifier: Apache-2.0 */
/* clock.h: the monotonic clock every deadline is measured on (clock_gettime(2), CLOCK_MONOTONIC). */
#pragma once

#include <stdint.h>
#include <time.h>

/** gpuh_mono_us: CLOCK_MONOTONIC in microseconds (never goes back; unaffected by settimeofday). */
static inline int64_t gpuh_mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/** gpuh_mono_ms: CLOCK_MONOTONIC in milliseconds. */
static inline int64_t gpuh_mono_ms(void)
{
        return gpuh_mono_us() / 1000;
}
