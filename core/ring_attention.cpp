// One query step of attention over a ring of keys and values stored in bfloat16, or in int8 with a
// scale per slot and head (a compiled CPU step).
//
// torch.compile turned the float32-query, bfloat16-ring attention into loops that recomputed the
// query's rotation for every key, reduced each key's dot product alone and walked every value
// column eight times: 1.2 ms a layer for the 1b's 750-slot ring (6 MB), a third of the memory bus.
// Here each (stream, head) reads its keys once, then its values once, widening bfloat16 to float32
// with a shift as they arrive, and skips the slots the mask leaves out (a young stream's ring is
// mostly empty). Heads are split across torch's threads. An int8 ring halves the bytes again: a
// key's scale multiplies its dot product, a value's its softmax weight, once per slot.

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

#if !defined(__AVX2__) || !defined(__FMA__)
#error "the ring attention kernel needs AVX2 and FMA (built with -mavx2 -mfma)"
#endif
#include <immintrin.h>

#include "native_simd.h"

namespace {

using surtitle::horizontal_sum;

constexpr int64_t kAhead = 8;  // slots prefetched ahead: 8.3 -> 9.6 GB/s over a full ring (2-core Zen 3)

// 8 bfloat16 -> 8 float32: a bfloat16 is the high half of a float32
inline __m256 widen(const uint16_t* p) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
}

// 8 int8 -> 8 float32 (the slot's scale is applied once per slot, not per value)
inline __m256 widen(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// out[d] = sum_c softmax(q . k_c * scale)_c v_c[d] over the slots where mask is set; d a multiple of 8.
// T: uint16_t (bfloat16) or int8_t, whose k_c and v_c are then the stored values times ks[c] and vs[c].
template <typename T>
void one_head(const float* q, const T* k, const T* v, const float* ks, const float* vs, const bool* mask,
              int64_t slots, int64_t d, float scale, float* scores, float* out) {
  constexpr bool kScaled = std::is_same_v<T, int8_t>;
  float peak = -std::numeric_limits<float>::infinity();
  for (int64_t c = 0; c < slots; ++c) {
    if (!mask[c]) continue;
    const T* key = k + c * d;
    for (int64_t line = 0; line < d * int64_t(sizeof(T)); line += 64)  // a few slots ahead: the next keys are already on their way
      _mm_prefetch(reinterpret_cast<const char*>(key + kAhead * d) + line, _MM_HINT_T0);
    __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= d; i += 16) {
      even = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), widen(key + i), even);
      odd = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), widen(key + i + 8), odd);
    }
    for (; i < d; i += 8) even = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), widen(key + i), even);
    scores[c] = horizontal_sum(_mm256_add_ps(even, odd)) * (kScaled ? scale * ks[c] : scale);
    peak = std::max(peak, scores[c]);
  }
  for (int64_t i = 0; i < d; ++i) out[i] = 0.f;
  if (peak == -std::numeric_limits<float>::infinity()) {  // nothing to attend to: SDPA gives NaN
    for (int64_t i = 0; i < d; ++i) out[i] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  float total = 0.f;
  for (int64_t c = 0; c < slots; ++c) {
    if (!mask[c]) continue;
    scores[c] = std::exp(scores[c] - peak);
    total += scores[c];
    if constexpr (kScaled) scores[c] *= vs[c];  // the value's scale rides on its weight (the total is taken before)
  }
  // values in column blocks of 64: eight accumulators stay in registers while the slots stream by
  for (int64_t i0 = 0; i0 < d; i0 += 64) {
    const int64_t width = std::min<int64_t>(64, d - i0);
    __m256 acc[8];
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t c = 0; c < slots; ++c) {
      if (!mask[c]) continue;
      const __m256 p = _mm256_set1_ps(scores[c]);
      const T* value = v + c * d + i0;
      for (int64_t line = 0; line < width * int64_t(sizeof(T)); line += 64)
        _mm_prefetch(reinterpret_cast<const char*>(value + kAhead * d) + line, _MM_HINT_T0);
      for (int j = 0; j < width / 8; ++j) acc[j] = _mm256_fmadd_ps(p, widen(value + 8 * j), acc[j]);
    }
    const __m256 inverse = _mm256_set1_ps(1.f / total);
    for (int j = 0; j < width / 8; ++j) _mm256_storeu_ps(out + i0 + 8 * j, _mm256_mul_ps(acc[j], inverse));
  }
}

}  // namespace

// q [B, H, 1, D] float32; keys and values [B, Hkv, C, D] bfloat16, or int8 with key_scales and
// value_scales [B, Hkv, C] float32 (none for bfloat16); mask [B, 1, 1, C] bool -> [B, H, 1, D]
at::Tensor ring_attention(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                          const at::Tensor& mask, const std::optional<at::Tensor>& key_scales,
                          const std::optional<at::Tensor>& value_scales) {
  TORCH_CHECK(q.dim() == 4 && q.size(2) == 1 && q.scalar_type() == at::kFloat, "q must be [B, H, 1, D] float32");
  const bool int8 = keys.scalar_type() == at::kChar;
  TORCH_CHECK((keys.scalar_type() == at::kBFloat16 || int8) && values.scalar_type() == keys.scalar_type(),
              "the ring must be bfloat16 or int8");
  TORCH_CHECK(keys.is_contiguous() && values.is_contiguous() && keys.sizes() == values.sizes(),
              "keys and values must be contiguous rings of one shape");
  const int64_t b = q.size(0), h = q.size(1), d = q.size(3), kv_heads = keys.size(1), slots = keys.size(2);
  TORCH_CHECK(keys.size(0) == b && keys.size(3) == d && h % kv_heads == 0 && d % 8 == 0, "q and the ring do not fit");
  TORCH_CHECK(mask.scalar_type() == at::kBool && mask.numel() == b * slots, "mask must be [B, 1, 1, C] bool");
  if (int8) {
    for (const std::optional<at::Tensor>* t : {&key_scales, &value_scales})
      TORCH_CHECK(t->has_value() && (*t)->scalar_type() == at::kFloat && (*t)->is_contiguous() &&
                  (*t)->numel() == b * kv_heads * slots, "an int8 ring needs contiguous float32 scales [B, Hkv, C]");
  }
  const at::Tensor qc = q.contiguous(), mc = mask.contiguous();
  at::Tensor out = at::empty({b, h, 1, d}, q.options());
  const float* qp = qc.data_ptr<float>();
  const bool* mp = mc.data_ptr<bool>();
  float* op = out.data_ptr<float>();
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  const int64_t group = h / kv_heads;
  const float* ksp = int8 ? key_scales->data_ptr<float>() : nullptr;
  const float* vsp = int8 ? value_scales->data_ptr<float>() : nullptr;
  const void* kp = keys.data_ptr();  // int8_t or bfloat16's uint16_t, by `int8`
  const void* vp = values.data_ptr();
  at::parallel_for(0, b * h, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(slots);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t row = bh / h, kv = (bh % h) / group;
      const int64_t head = row * kv_heads + kv, ring = head * slots * d;
      if (int8) {
        one_head(qp + bh * d, static_cast<const int8_t*>(kp) + ring, static_cast<const int8_t*>(vp) + ring,
                 ksp + head * slots, vsp + head * slots, mp + row * slots, slots, d, scale, scores.data(), op + bh * d);
      } else {
        one_head(qp + bh * d, static_cast<const uint16_t*>(kp) + ring, static_cast<const uint16_t*>(vp) + ring,
                 nullptr, nullptr, mp + row * slots, slots, d, scale, scores.data(), op + bh * d);
      }
    }
  });
  return out;
}
