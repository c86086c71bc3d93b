/* Clocks: monotonic for intervals and timeouts, wall for timestamps shown to
 * people and players (EXT-X-PROGRAM-DATE-TIME, Last-Modified). Any thread. */
#ifndef SLUICE_COMMON_CLOCK_H
#define SLUICE_COMMON_CLOCK_H

#include <stdint.h>

int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);
int64_t clock_wall_ms(void);

#endif
