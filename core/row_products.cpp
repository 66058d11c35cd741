// A float32 weight matrix times a few rows: the codec's products for a live frame (2 rows).
//
// Such a product reads every weight to use it on a row or two, so it is as fast as the weights
// stream in. MKL's few-row kernels read at 6-7 GB/s inside a compiled step on a 2-core AMD Zen 3
// (the codec transformer's 100 MB: 15 ms a frame); here each thread streams its own band of
// weight rows in order, prefetching ahead, and keeps every input row's sum in registers.

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

#if !defined(__AVX2__) || !defined(__FMA__)
#error "the row product kernel needs AVX2 and FMA (built with -mavx2 -mfma)"
#endif
#include <immintrin.h>

#include "native_simd.h"

namespace {

using surtitle::horizontal_sum;

constexpr int kMaxRows = 4;
constexpr int64_t kAhead = 1024;  // floats of weights prefetched ahead (4 KB)

// out[r * n + i] = x_r . w_i for the weight rows [begin, end)
template <int kRows>
void rows_times(const float* w, const float* x, int64_t k, int64_t n, int64_t begin, int64_t end, float* out) {
  for (int64_t i = begin; i < end; ++i) {
    const float* row = w + i * k;
    __m256 even[kRows], odd[kRows];  // two chains per row: FMA latency never stalls the loop
    for (int r = 0; r < kRows; ++r) even[r] = odd[r] = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= k; j += 16) {
      _mm_prefetch(reinterpret_cast<const char*>(row + j + kAhead), _MM_HINT_T0);
      const __m256 w0 = _mm256_loadu_ps(row + j), w1 = _mm256_loadu_ps(row + j + 8);
      for (int r = 0; r < kRows; ++r) {
        even[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + r * k + j), even[r]);
        odd[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + r * k + j + 8), odd[r]);
      }
    }
    for (int r = 0; r < kRows; ++r) {
      float sum = horizontal_sum(_mm256_add_ps(even[r], odd[r]));
      for (int64_t t = j; t < k; ++t) sum += row[t] * x[r * k + t];
      out[r * n + i] = sum;
    }
  }
}

using RowsFn = decltype(&rows_times<1>);
constexpr RowsFn kRowsTimes[kMaxRows] = {rows_times<1>, rows_times<2>, rows_times<3>, rows_times<4>};

}  // namespace

// x [M, K] float32 (1 <= M <= 4), w [N, K] float32 contiguous -> x @ w^T [M, N]
at::Tensor few_rows_linear(const at::Tensor& x, const at::Tensor& w) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "x must be a float32 matrix");
  TORCH_CHECK(x.size(0) >= 1 && x.size(0) <= kMaxRows, "the row product kernel takes 1 to 4 rows");
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == at::kFloat && w.is_contiguous(),
              "the weights must be a contiguous float32 matrix");
  TORCH_CHECK(w.size(1) == x.size(1), "x and the weights do not fit");
  const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  const at::Tensor xc = x.contiguous();
  at::Tensor out = at::empty({m, n}, x.options());
  const float* wp = w.data_ptr<float>();
  const float* xp = xc.data_ptr<float>();
  float* op = out.data_ptr<float>();
  // bands of at least 64 KB of weights a thread: fewer hand-offs than there are rows
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(k, 1));
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    kRowsTimes[m - 1](wp, xp, k, n, begin, end, op);
  });
  return out;
}
