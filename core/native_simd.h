// AVX2 helpers shared by Surtitle's CPU kernels (core/*.cpp). A header is not a source the
// extension loader hashes, so core/native.py passes this file's hash as a define: editing it
// rebuilds the kernels like editing any of their sources.

#pragma once

#include <cstdint>
#include <immintrin.h>

namespace surtitle {

// the sum of a vector's 8 floats
inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// the sum of a vector's 8 int32
inline int32_t horizontal_sum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

}  // namespace surtitle
