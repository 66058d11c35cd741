// int4 weights x int8 activations, for a product of a weight matrix with a few rows (a decoder step).
//
// Weights: groups of 32 along the input, each with an fp16 scale and 32 values in [-8, 7] stored
// +8 as unsigned nibbles. Two groups share 32 bytes: byte j holds value j of the first (low nibble)
// and value j of the second (high nibble), so one mask and one shift unpack both.
// Activations: each row's groups of 32 are quantized to int8 on the fly with their own scale, so a
// row's result never depends on the other rows. A group's product sum_j (w_j + 8) x_j is exact in
// int32 (maddubs takes the unsigned nibbles as they are); the + 8 comes off once per group as
// 8 sum_j x_j. Built by core/int4.py with torch's extension loader, on the machine that runs it.

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "the int4 kernel needs AVX2, FMA and F16C (built with -mavx2 -mfma -mf16c)"
#endif
#include <immintrin.h>

#include "native_simd.h"

namespace {

using surtitle::horizontal_sum;

constexpr int64_t kGroup = 32;
constexpr int64_t kPair = 2 * kGroup;  // values per 32 packed bytes
constexpr int64_t kAhead = 4096;  // bytes of weights prefetched ahead: 9-11 GB/s without, 12-14 with (2-core Zen 3)
constexpr int kRowsAtOnce = 2;  // activation rows sharing each unpacked pair of groups (more: the accumulators spill)

// Activation rows quantized per group: values, scales, and each group's sum of values.
struct QuantizedRows {
  std::vector<int8_t> values;  // [m, k]
  std::vector<float> scales;   // [m, k / 32]
  std::vector<float> sums;     // [m, k / 32], as float: they only ever meet float scales
};

QuantizedRows quantize_rows(const float* x, int64_t m, int64_t k) {
  const int64_t groups = m * (k / kGroup);
  QuantizedRows q{std::vector<int8_t>(m * k), std::vector<float>(groups), std::vector<float>(groups)};
  for (int64_t i = 0; i < groups; ++i) {
    const float* src = x + i * kGroup;
    float peak = 0.f;
    for (int64_t j = 0; j < kGroup; ++j) peak = std::max(peak, std::fabs(src[j]));
    const float inverse = peak > 0.f ? 127.f / peak : 0.f;
    int32_t sum = 0;
    for (int64_t j = 0; j < kGroup; ++j) {
      const int8_t v = static_cast<int8_t>(std::nearbyint(src[j] * inverse));
      q.values[i * kGroup + j] = v;
      sum += v;
    }
    q.scales[i] = peak / 127.f;
    q.sums[i] = static_cast<float>(sum);
  }
  return q;
}

// One weight row's scales combined with each activation row's (out [rows, groups]), and what the
// stored +8 adds to each row's result: offset[r] = 8 sum_g scale_g sum_j x_j. Vectorized: a scalar
// loop here cost as much as the products themselves (a 4-cycle add chain per group).
void combine_scales(const uint16_t* ws, const float* d, const float* sums, int64_t groups, int rows, float* out,
                    float* offset) {
  __m256 acc[kRowsAtOnce];
  for (int r = 0; r < rows; ++r) acc[r] = _mm256_setzero_ps();
  int64_t g = 0;
  for (; g + 8 <= groups; g += 8) {
    const __m256 w = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ws + g)));
    for (int r = 0; r < rows; ++r) {
      const __m256 c = _mm256_mul_ps(w, _mm256_loadu_ps(d + r * groups + g));
      _mm256_storeu_ps(out + r * groups + g, c);
      acc[r] = _mm256_fmadd_ps(c, _mm256_loadu_ps(sums + r * groups + g), acc[r]);
    }
  }
  for (int r = 0; r < rows; ++r) offset[r] = horizontal_sum(acc[r]);
  for (; g < groups; ++g) {
    for (int r = 0; r < rows; ++r) {
      out[r * groups + g] = _cvtsh_ss(ws[g]) * d[r * groups + g];
      offset[r] += out[r * groups + g] * sums[r * groups + g];
    }
  }
  for (int r = 0; r < rows; ++r) offset[r] *= 8.f;
}

template <int kRows>
void dot_rows(const uint8_t* w, const float* scale, const int8_t* q, const float* offset, int64_t k,
              float* out, int64_t out_stride) {
  const int64_t groups = k / kGroup;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 even[kRows], odd[kRows];  // two chains per row, so that FMA latency never stalls the loop
  for (int r = 0; r < kRows; ++r) even[r] = odd[r] = _mm256_setzero_ps();
  for (int64_t g = 0; g < groups; g += 2) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + g * kGroup / 2));
    _mm_prefetch(reinterpret_cast<const char*>(w + g * kGroup / 2 + kAhead), _MM_HINT_T0);
    const __m256i first = _mm256_and_si256(raw, low4);
    const __m256i second = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
    for (int r = 0; r < kRows; ++r) {
      const int8_t* x = q + r * k + g * kGroup;
      const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
      const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + kGroup));
      const __m256 s0 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(first, x0), ones));
      const __m256 s1 = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(second, x1), ones));
      even[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(scale + r * groups + g), s0, even[r]);
      odd[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(scale + r * groups + g + 1), s1, odd[r]);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r * out_stride] = horizontal_sum(_mm256_add_ps(even[r], odd[r])) - offset[r];
}

void dot_block(const uint8_t* w, const float* scale, const int8_t* q, const float* offset, int64_t k, int rows,
               float* out, int64_t out_stride) {
  if (rows == 1) return dot_rows<1>(w, scale, q, offset, k, out, out_stride);
  dot_rows<2>(w, scale, q, offset, k, out, out_stride);
}

}  // namespace

// x [M, K] float32 (K a multiple of 64), packed [N, K / 2] uint8, scales [N, K / 32] float16 -> [M, N]
at::Tensor int4_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scales) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "x must be a float32 matrix");
  TORCH_CHECK(packed.scalar_type() == at::kByte && scales.scalar_type() == at::kHalf, "bad int4 weights");
  TORCH_CHECK(packed.is_contiguous() && scales.is_contiguous(), "int4 weights must be contiguous");
  const int64_t m = x.size(0), k = x.size(1), n = packed.size(0), groups = k / kGroup;
  TORCH_CHECK(k % kPair == 0 && packed.size(1) == k / 2 && scales.size(0) == n && scales.size(1) == groups,
              "x and the int4 weights do not fit");
  const at::Tensor xc = x.contiguous();
  const QuantizedRows q = quantize_rows(xc.data_ptr<float>(), m, k);
  at::Tensor out = at::empty({m, n}, x.options());
  const uint8_t* w = packed.data_ptr<uint8_t>();
  const uint16_t* ws = reinterpret_cast<const uint16_t*>(scales.data_ptr<at::Half>());
  float* o = out.data_ptr<float>();
  // the weight rows are split across torch's threads: each streams its own slice of the matrix
  at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> scale(kRowsAtOnce * groups);
    float offset[kRowsAtOnce];
    for (int64_t row = begin; row < end; ++row) {
      for (int64_t r0 = 0; r0 < m; r0 += kRowsAtOnce) {
        const int rows = static_cast<int>(std::min<int64_t>(kRowsAtOnce, m - r0));
        combine_scales(ws + row * groups, q.scales.data() + r0 * groups, q.sums.data() + r0 * groups, groups, rows,
                       scale.data(), offset);
        dot_block(w + row * (k / 2), scale.data(), q.values.data() + r0 * k, offset, k, rows, o + r0 * n + row, n);
      }
    }
  });
  return out;
}
