// Nearest codebook centroid for a few rows (a live frame's residual quantizer), exactly.
//
// A live frame searches 32 codebooks of 2048 float32 centroids (67 MB) with one row each, so the
// search costs what reading the books costs. Here an int8 copy of each book (a quarter of the
// bytes) bounds every centroid's distance, and only the centroids whose bound reaches the best one
// are measured exactly from the float32 book. Why that is exact, with score_i = |c_i|^2 - 2 x.c_i
// (the squared distance less |x|^2, which every centroid shares):
//   c_ij = s_i q_ij + e_ij with |e_ij| <= s_i / 2 (q_i the int8 row, s_i its scale), and
//   x_j = t u_j + f_j with |f_j| <= t / 2 (u the int16 row, t its scale), so
//   |x.c_i - t s_i (u.q_i)| <= s_i (|x|_1 + t |q_i|_1) / 2,
// and the approximate score is within b_i = s_i (|x|_1 + t |q_i|_1) of the true one (plus float32
// rounding, covered by a margin twenty times its size). The nearest centroid's lower bound is at most its score, which is
// at most every other centroid's upper bound: it is always among the candidates. u.q_i is summed
// exactly in int32 (|u q| <= 32767 * 127; 16 lanes of pairs hold up to 4096 dimensions).
// Candidates are measured as sum_j (x_j - c_ij)^2 in double; ties go to the lowest index.

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#if !defined(__AVX2__)
#error "the codebook search kernel needs AVX2 (built with -mavx2)"
#endif
#include <immintrin.h>

#include "native_simd.h"

namespace {

using surtitle::horizontal_sum;

// the book is read from memory (a live step's decoder has evicted it): fetch 16 KB ahead (64 rows),
// which took a lone frame's 32 searches from 2.1 to 1.7 ms on a 2-core Xeon; 4 KB gave 1.8-2.0
constexpr int64_t kPrefetchAhead = 16384;
constexpr int kMaxRows = 4;  // rows searched together: each int8 book row is widened once for all
constexpr int64_t kMaxDim = 4096;  // int32 lanes of pair sums stay exact up to here
// b_i from the header widened by kWiden, plus kRounding times the terms' size: a margin twenty
// times float32's rounding of them (both bound paths below must use the same two)
constexpr float kWiden = 1.001f, kRounding = 1e-5f;

struct Row {
  const int16_t* u;  // [dp]
  float x_l1, step;  // |x|_1, and the int16 row's scale
};

// For the book rows [begin, end): each row's lower bound on its score (low[r * n + i]) and its
// upper bound (high[r * n + i]), from u_r . q_i summed exactly in int32.
template <int kRows>
void bound_rows(const int8_t* table, const float* scales, const float* l1, const float* norms, const Row* rows,
                int64_t dp, int64_t n, int64_t begin, int64_t end, float* low, float* high) {
  for (int64_t i = begin; i < end; ++i) {
    const int8_t* book_row = table + i * dp;
    _mm_prefetch(reinterpret_cast<const char*>(book_row + 8 * dp), _MM_HINT_T0);
    __m256i acc[kRows];
    for (int r = 0; r < kRows; ++r) acc[r] = _mm256_setzero_si256();
    for (int64_t j = 0; j < dp; j += 16) {
      const __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(book_row + j)));
      for (int r = 0; r < kRows; ++r) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[r].u + j));
        acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(w, x));
      }
    }
    for (int r = 0; r < kRows; ++r) {
      const float product = 2.f * rows[r].step * scales[i] * static_cast<float>(horizontal_sum(acc[r]));
      const float approx = norms[i] - product;
      const float bound = scales[i] * (rows[r].x_l1 + rows[r].step * l1[i]) * kWiden +
                          kRounding * (std::fabs(norms[i]) + std::fabs(product));
      low[r * n + i] = approx - bound;
      high[r * n + i] = approx + bound;
    }
  }
}

// bound_rows<1> four book rows at a time (a live frame searches with one row): four sums in flight
// hide the adds' latency, and one reduction and one vector of bound arithmetic serve all four.
void bound_one_row(const int8_t* table, const float* scales, const float* l1, const float* norms, const Row* rows,
                   int64_t dp, int64_t n, int64_t begin, int64_t end, float* low, float* high) {
  const Row& row = rows[0];
  int64_t i = begin;
  const __m128 twice_step = _mm_set1_ps(2.f * row.step), step = _mm_set1_ps(row.step);
  const __m128 x_l1 = _mm_set1_ps(row.x_l1), widen = _mm_set1_ps(kWiden), margin = _mm_set1_ps(kRounding);
  const __m128 sign = _mm_set1_ps(-0.f);
  for (; i + 4 <= end; i += 4) {
    const int8_t* book_rows = table + i * dp;
    // may reach past the table's end near it: a prefetch never faults
    for (int64_t line = 0; line < 4 * dp; line += 64)
      _mm_prefetch(reinterpret_cast<const char*>(book_rows + kPrefetchAhead + line), _MM_HINT_T0);
    __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                      _mm256_setzero_si256()};
    for (int64_t j = 0; j < dp; j += 16) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row.u + j));
      for (int c = 0; c < 4; ++c) {
        const __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(book_rows + c * dp + j)));
        acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(w, x));
      }
    }
    // [a0, a1, a2, a3] from four vectors of eight partial sums
    const __m256i pairs = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], acc[1]), _mm256_hadd_epi32(acc[2], acc[3]));
    const __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
    const __m128 s = _mm_loadu_ps(scales + i), norm = _mm_loadu_ps(norms + i);
    const __m128 product = _mm_mul_ps(_mm_mul_ps(twice_step, s), _mm_cvtepi32_ps(sums));
    const __m128 approx = _mm_sub_ps(norm, product);
    const __m128 spread = _mm_mul_ps(_mm_mul_ps(s, _mm_add_ps(x_l1, _mm_mul_ps(step, _mm_loadu_ps(l1 + i)))), widen);
    const __m128 rounding = _mm_mul_ps(margin, _mm_add_ps(_mm_andnot_ps(sign, norm), _mm_andnot_ps(sign, product)));
    const __m128 bound = _mm_add_ps(spread, rounding);
    _mm_storeu_ps(low + i, _mm_sub_ps(approx, bound));
    _mm_storeu_ps(high + i, _mm_add_ps(approx, bound));
  }
  if (i < end) bound_rows<1>(table, scales, l1, norms, rows, dp, n, i, end, low, high);
}

using BoundFn = decltype(&bound_rows<1>);
constexpr BoundFn kBound[kMaxRows] = {bound_one_row, bound_rows<2>, bound_rows<3>, bound_rows<4>};

}  // namespace

// x [M, d] float32 (M <= 4); table [N, dp] int8 (dp a multiple of 16, >= d, zero beyond d);
// scales, l1 (sum_j |q_ij|), norms (|c_i|^2) [N] float32; centroids [N, d] float32, any strides
// -> index of each row's nearest centroid [M] int64
at::Tensor nearest_centroids(const at::Tensor& x, const at::Tensor& table, const at::Tensor& scales,
                             const at::Tensor& l1, const at::Tensor& norms, const at::Tensor& centroids) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "x must be a float32 matrix");
  TORCH_CHECK(x.size(0) >= 1 && x.size(0) <= kMaxRows, "the codebook search kernel takes 1 to 4 rows");
  TORCH_CHECK(table.dim() == 2 && table.scalar_type() == at::kChar && table.is_contiguous(),
              "the search table must be a contiguous int8 matrix");
  const int64_t m = x.size(0), d = x.size(1), n = table.size(0), dp = table.size(1);
  TORCH_CHECK(dp % 16 == 0 && dp >= d && dp <= kMaxDim, "the search table's width must be a multiple of 16, >= d");
  for (const at::Tensor* t : {&scales, &l1, &norms})
    TORCH_CHECK(t->dim() == 1 && t->size(0) == n && t->scalar_type() == at::kFloat && t->is_contiguous(),
                "scales, l1 and norms must be contiguous float32 [N]");
  TORCH_CHECK(centroids.dim() == 2 && centroids.size(0) == n && centroids.size(1) == d &&
              centroids.scalar_type() == at::kFloat, "centroids must be float32 [N, d]");
  const at::Tensor xc = x.contiguous();
  const float* xp = xc.data_ptr<float>();

  // each row as int16 with its own scale, zero-padded to dp
  std::vector<int16_t> u(m * dp, 0);
  Row rows[kMaxRows];
  for (int64_t r = 0; r < m; ++r) {
    float peak = 0.f, sum = 0.f;
    for (int64_t j = 0; j < d; ++j) {
      peak = std::max(peak, std::fabs(xp[r * d + j]));
      sum += std::fabs(xp[r * d + j]);
    }
    const float inverse = peak > 0.f ? 32767.f / peak : 0.f;
    for (int64_t j = 0; j < d; ++j)
      u[r * dp + j] = static_cast<int16_t>(std::clamp(std::nearbyint(xp[r * d + j] * inverse), -32767.f, 32767.f));
    rows[r] = Row{u.data() + r * dp, sum, peak / 32767.f};
  }

  std::vector<float> low(m * n), high(m * n);
  const int8_t* tp = table.data_ptr<int8_t>();
  const float* sp = scales.data_ptr<float>();
  const float* lp = l1.data_ptr<float>();
  const float* np_ = norms.data_ptr<float>();
  at::parallel_for(0, n, 512, [&](int64_t begin, int64_t end) {
    kBound[m - 1](tp, sp, lp, np_, rows, dp, n, begin, end, low.data(), high.data());
  });

  const float* cp = centroids.data_ptr<float>();
  const int64_t c_row = centroids.stride(0), c_col = centroids.stride(1);
  at::Tensor out = at::empty({m}, x.options().dtype(at::kLong));
  int64_t* op = out.data_ptr<int64_t>();
  for (int64_t r = 0; r < m; ++r) {
    // the best upper bound is the bar a candidate's lower bound must meet
    const float bar = *std::min_element(high.begin() + r * n, high.begin() + (r + 1) * n);
    const float* row = xp + r * d;
    double best = std::numeric_limits<double>::infinity();
    int64_t best_index = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!(low[r * n + i] <= bar)) continue;
      double dist = 0.0;
      const float* c = cp + i * c_row;
      for (int64_t j = 0; j < d; ++j) {
        const double diff = static_cast<double>(row[j]) - c[j * c_col];
        dist += diff * diff;
      }
      if (dist < best) {
        best = dist;
        best_index = i;
      }
    }
    op[r] = best_index;
  }
  return out;
}
