/*
 * rng.h — a deterministic random source for the pure-C tests: the same
 * draws on every machine, no library RNG. A test defines TEST_RNG_SEED
 * before including it.
 */
#ifndef SMX_TEST_RNG_H
#define SMX_TEST_RNG_H

#include <math.h>
#include <stdint.h>

#ifndef TEST_RNG_SEED
#error "define TEST_RNG_SEED before including rng.h"
#endif

static uint64_t rng_state = TEST_RNG_SEED;

/* uniform in (0, 1): splitmix64 */
static double
unif(void)
{
	uint64_t	z = (rng_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return ((double) (z >> 11) + 0.5) / 9007199254740992.0;
}

/* a standard normal draw: Box-Muller */
static double
gauss(void)
{
	return sqrt(-2.0 * log(unif())) * cos(6.283185307179586 * unif());
}

#endif							/* SMX_TEST_RNG_H */
