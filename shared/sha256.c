/* sha256: see sha256.h. */
#include <sodium.h>
#include <string.h>

#include "shared/sha256.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

#define SHA_NI	1

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b,
	0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
	0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7,
	0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
	0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152,
	0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
	0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
	0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
	0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

/*
 * n 64-byte blocks into st[8]. The extensions keep the state as ABEF and
 * CDGH; each sha256rnds2 does two rounds, message words 4 at a time.
 */
__attribute__((target("sha,sse4.1,ssse3")))
static void
blocks_ni(uint32_t st[8], const uint8_t *p, size_t n)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL,
	    0x0405060700010203ULL);
	__m128i t, s0, s1, m[4], k;

	t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)st), 0xB1);
	s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(st + 4)),
	    0x1B);
	s0 = _mm_alignr_epi8(t, s1, 8);		/* ABEF */
	s1 = _mm_blend_epi16(s1, t, 0xF0);	/* CDGH */
	for (; n > 0; n--, p += 64) {
		__m128i a0 = s0, a1 = s1;
		for (int j = 0; j < 4; j++)
			m[j] = _mm_shuffle_epi8(_mm_loadu_si128(
			    (const __m128i *)(p + 16 * j)), bswap);
		for (int j = 0; j < 16; j++) {
			__m128i *w = &m[j & 3];
			if (j >= 4)	/* W[t] from W[t-16..t-1] */
				*w = _mm_sha256msg2_epu32(_mm_add_epi32(
				    _mm_sha256msg1_epu32(*w, m[(j + 1) & 3]),
				    _mm_alignr_epi8(m[(j + 3) & 3],
				    m[(j + 2) & 3], 4)), m[(j + 3) & 3]);
			k = _mm_add_epi32(*w, _mm_loadu_si128(
			    (const __m128i *)(K + 4 * j)));
			s1 = _mm_sha256rnds2_epu32(s1, s0, k);
			s0 = _mm_sha256rnds2_epu32(s0, s1,
			    _mm_shuffle_epi32(k, 0x0E));
		}
		s0 = _mm_add_epi32(s0, a0);
		s1 = _mm_add_epi32(s1, a1);
	}
	t = _mm_shuffle_epi32(s0, 0x1B);	/* FEBA */
	s1 = _mm_shuffle_epi32(s1, 0xB1);	/* DCHG */
	s0 = _mm_blend_epi16(t, s1, 0xF0);	/* DCBA */
	s1 = _mm_alignr_epi8(s1, t, 8);		/* HGFE */
	_mm_storeu_si128((__m128i *)st, s0);
	_mm_storeu_si128((__m128i *)(st + 4), s1);
}

int
sha256_fast(void)
{
	static int have = -1;	/* a constant of the CPU, racing is benign */
	unsigned a, b, c, d;

	if (have < 0) {
		int sse = __get_cpuid(1, &a, &b, &c, &d) &&
		    (c & bit_SSE4_1) && (c & bit_SSSE3);
		have = sse && __get_cpuid_count(7, 0, &a, &b, &c, &d) &&
		    (b & (1u << 29)) ? 1 : 0;
	}
	return have;
}
#else
int
sha256_fast(void)
{
	return 0;
}
#endif

void
sha256(uint8_t out[SHA256_LEN], const void *data, size_t len)
{
#ifdef SHA_NI
	if (sha256_fast()) {
		uint32_t st[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372,
		    0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
		    0x5be0cd19 };
		uint8_t tail[128];
		size_t full = len / 64, rest = len % 64, nt;
		uint64_t bits = (uint64_t)len * 8;

		blocks_ni(st, data, full);
		memset(tail, 0, sizeof(tail));
		memcpy(tail, (const uint8_t *)data + full * 64, rest);
		tail[rest] = 0x80;
		nt = rest + 9 <= 64 ? 64 : 128;
		for (int i = 0; i < 8; i++)
			tail[nt - 1 - i] = (uint8_t)(bits >> (8 * i));
		blocks_ni(st, tail, nt / 64);
		for (int i = 0; i < 8; i++) {
			out[4 * i] = (uint8_t)(st[i] >> 24);
			out[4 * i + 1] = (uint8_t)(st[i] >> 16);
			out[4 * i + 2] = (uint8_t)(st[i] >> 8);
			out[4 * i + 3] = (uint8_t)st[i];
		}
		return;
	}
#endif
	crypto_hash_sha256(out, data, len);
}
