// Fused unpack-and-matmul for group-wise affine low-bit weights (2, 3, 4 and 8 bits) on the
// CPU, for few activation rows (decode: batch 1, one token). Registered as the torch op
// `trustbits_lowbit::mm` (see kernels/_cpu_ext.py, which builds this file on first use).
//
// Math (QTensor semantics): W[n, k] = (c[n, k] - z[n, g]) * s[n, g], g = k / group_size, so
//   y[m, n] = sum_g s[n, g] * (sum_{k in g} c[n, k] * x[m, k]  -  z[n, g] * xsum[m, g])
// with xsum[m, g] = sum_{k in g} x[m, k]. Activations stay float32, codes are turned into
// float32 16 at a time and accumulated per group with fused multiply-adds; the scale and zero
// are applied once per group. The result equals dequantize-then-matmul up to float32
// summation order.
//
// Packed layout (built by kernels/cpu_lowbit.py), one row of W after another, each row padded
// to Kp = a multiple of 64 input columns with code 0 (the padded x columns are 0 too):
//   8 bits: byte k = code k.
//   4 bits: per 32 columns, 16 bytes; byte j = c[j] | c[16 + j] << 4.
//   2 bits: per 64 columns, 16 bytes; byte j = c[j] | c[16+j] << 2 | c[32+j] << 4 | c[48+j] << 6.
//   3 bits: per 64 columns, 24 bytes: the low two bits as the 2-bit layout (16 bytes), then the
//           third bits as one little-endian 64-bit word (bit j = bit 2 of c[j]).
// so every 16 consecutive codes come from one 16-byte load and one shift, with no
// cross-lane shuffles. Rows are exactly Kp * bits / 8 bytes: no slack beyond the padding.
//
// Written with GCC/Clang vector extensions (no intrinsics): the same source compiles to
// AVX-512 with -march=native where the CPU has it, and to AVX2 or NEON elsewhere.

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <cstdint>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <cstring>
#include <vector>

namespace {

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef uint8_t v16b __attribute__((vector_size(16)));

constexpr int kLanes = 16;
constexpr int kPrefetchRows = 8;  // how far ahead (in output rows) codes are prefetched

// 16 bytes -> 16 int32 lanes, zero-extended. GCC 12 scalarizes __builtin_convertvector for
// u8 -> i32 (and a shuffle-based form round-trips through the stack), so this one step uses
// intrinsics where they exist: one vpmovzxbd on AVX-512, two on AVX2.
inline v16i widen(const uint8_t* p) {
#if defined(__AVX512F__)
  return (v16i)_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#elif defined(__AVX2__)
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  v16i w;
  const __m256i lo = _mm256_cvtepu8_epi32(b), hi = _mm256_cvtepu8_epi32(_mm_srli_si128(b, 8));
  std::memcpy(&w, &lo, 32);
  std::memcpy(reinterpret_cast<char*>(&w) + 32, &hi, 32);
  return w;
#else
  v16i w;
  for (int i = 0; i < 16; ++i) w[i] = p[i];
  return w;
#endif
}

// The 64 codes of columns [64 * blk, 64 * blk + 64) of one packed row, as four float32
// vectors of 16 (one unpack serves four vectors: the shifts are the only per-vector work).
template <int BITS>
inline void load_block(const uint8_t* row, int64_t blk, v16f c[4]) {
  if constexpr (BITS == 8) {
    const uint8_t* p = row + blk * 64;
    for (int j = 0; j < 4; ++j) c[j] = __builtin_convertvector(widen(p + 16 * j), v16f);
  } else if constexpr (BITS == 4) {
    const uint8_t* p = row + blk * 32;
    const v16i w0 = widen(p), w1 = widen(p + 16);
    c[0] = __builtin_convertvector(w0 & 15, v16f);
    c[1] = __builtin_convertvector(w0 >> 4, v16f);
    c[2] = __builtin_convertvector(w1 & 15, v16f);
    c[3] = __builtin_convertvector(w1 >> 4, v16f);
  } else if constexpr (BITS == 2) {
    const v16i w = widen(row + blk * 16);
    c[0] = __builtin_convertvector(w & 3, v16f);
    c[1] = __builtin_convertvector((w >> 2) & 3, v16f);
    c[2] = __builtin_convertvector((w >> 4) & 3, v16f);
    c[3] = __builtin_convertvector(w >> 6, v16f);
  } else {  // 3 bits: the 2-bit plane, plus the third bits from one 64-bit word
    const uint8_t* p = row + blk * 24;
    const v16i w = widen(p);
    uint64_t high;
    std::memcpy(&high, p + 16, sizeof(high));
#if defined(__AVX512F__)
    // The 16 third bits of a vector are a lane mask: one masked add of 4.
    const __m512i four = _mm512_set1_epi32(4);
    for (int j = 0; j < 4; ++j) {
      const __m512i low = (__m512i)((w >> (2 * j)) & 3);
      c[j] = __builtin_convertvector((v16i)_mm512_mask_add_epi32(low, (__mmask16)(high >> (16 * j)), low, four), v16f);
    }
#else
    const v16i lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    for (int j = 0; j < 4; ++j) {
      const v16i hb = ((v16i{} + (int32_t)((high >> (16 * j)) & 0xFFFF)) >> lane) & 1;
      c[j] = __builtin_convertvector(((w >> (2 * j)) & 3) | (hb << 2), v16f);
    }
#endif
  }
}

inline float hsum(v16f v) {
  float s = 0.f;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}

inline float half_to_float(uint16_t bits) { return static_cast<float>(c10::Half(bits, c10::Half::from_bits())); }

struct Problem {
  const float* x;      // [M, Kp] activations, zero-padded
  const float* xsum;   // [M, G] per-group sums of x
  const uint8_t* w;    // [N, row_bytes] packed codes
  const uint16_t* sz;  // [N, G, 2] float16 bits: (scale, zero) per row and group
  float* y;            // [M, N]
  int64_t M, N, Kp, G, group_size, row_bytes;
};

// Rows [m0, m0 + MB) of y, for output columns [n0, n1). The codes of a row are unpacked
// once per 64 columns and reused for all MB activation rows; the scale and zero of a group
// are applied when the group's last 16 columns are done (groups are multiples of 16).
template <int BITS, int MB>
void run_block(const Problem& p, int64_t m0, int64_t n0, int64_t n1) {
  const float* x = p.x + m0 * p.Kp;
  const float* xsum = p.xsum + m0 * p.G;
  const int64_t blocks = p.Kp / 64;
  // Rows are short (144-1536 bytes), so the hardware prefetcher barely starts on one before
  // the next; fetch the codes and scales of a row kPrefetchRows ahead explicitly.
  const int64_t sz_bytes = p.G * 4;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = p.w + n * p.row_bytes;
    const uint16_t* sz = p.sz + n * p.G * 2;
    if (n + kPrefetchRows < n1) {
      const char* ahead = reinterpret_cast<const char*>(row + kPrefetchRows * p.row_bytes);
      for (int64_t b = 0; b < p.row_bytes; b += 64) __builtin_prefetch(ahead + b);
      const char* sz_ahead = reinterpret_cast<const char*>(sz + kPrefetchRows * p.G * 2);
      for (int64_t b = 0; b < sz_bytes; b += 64) __builtin_prefetch(sz_ahead + b);
    }
    // One partial sum per (activation row, vector of the block): four independent FMA chains,
    // so the FMA latency (4 cycles) is hidden even for a single activation row.
    v16f acc[MB] = {}, gacc[MB][4] = {};
    float zero_term[MB] = {};
    int64_t g = 0, left = p.group_size;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      v16f c[4];
      load_block<BITS>(row, blk, c);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const int64_t k = blk * 64 + 16 * j;
#pragma GCC unroll 4
        for (int mb = 0; mb < MB; ++mb) {
          v16f xv;
          std::memcpy(&xv, x + mb * p.Kp + k, sizeof(xv));
          gacc[mb][j] += c[j] * xv;
        }
        left -= kLanes;
        if (left == 0 || k + kLanes == p.Kp) {  // end of group g: apply its scale and zero
          const float s = half_to_float(sz[2 * g]);
          const float sz_prod = s * half_to_float(sz[2 * g + 1]);
          for (int mb = 0; mb < MB; ++mb) {
            acc[mb] += ((gacc[mb][0] + gacc[mb][1]) + (gacc[mb][2] + gacc[mb][3])) * s;
            for (int i = 0; i < 4; ++i) gacc[mb][i] = v16f{};
            zero_term[mb] += sz_prod * xsum[mb * p.G + g];
          }
          ++g;
          left = p.group_size;
        }
      }
    }
    for (int mb = 0; mb < MB; ++mb) p.y[(m0 + mb) * p.N + n] = hsum(acc[mb]) - zero_term[mb];
  }
}

template <int BITS>
void run_rows(const Problem& p, int64_t n0, int64_t n1) {
  int64_t m0 = 0;
  for (; m0 + 4 <= p.M; m0 += 4) run_block<BITS, 4>(p, m0, n0, n1);
  switch (p.M - m0) {
    case 3: run_block<BITS, 3>(p, m0, n0, n1); break;
    case 2: run_block<BITS, 2>(p, m0, n0, n1); break;
    case 1: run_block<BITS, 1>(p, m0, n0, n1); break;
    default: break;
  }
}

// y [M, N] = x [M, K] @ W^T (+ bias), W given as packed codes [N, Kp * bits / 8] (uint8) and
// scale/zero pairs sz [N, G, 2] (float16), G = ceil(Kp / group_size).
at::Tensor lowbit_mm(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& sz, int64_t bits,
                     int64_t group_size, const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous(), "x must be a contiguous float32 [M, K] tensor");
  TORCH_CHECK(packed.dim() == 2 && packed.scalar_type() == at::kByte && packed.is_contiguous(), "packed must be contiguous uint8 [N, row_bytes]");
  TORCH_CHECK(sz.dim() == 3 && sz.size(2) == 2 && sz.scalar_type() == at::kHalf && sz.is_contiguous(), "sz must be contiguous float16 [N, G, 2]");
  TORCH_CHECK(bits == 2 || bits == 3 || bits == 4 || bits == 8, "bits must be 2, 3, 4 or 8");
  TORCH_CHECK(group_size > 0 && group_size % kLanes == 0, "group_size must be a positive multiple of 16");
  const int64_t M = x.size(0), K = x.size(1), N = packed.size(0), G = sz.size(1);
  const int64_t Kp = (K + 63) / 64 * 64;
  TORCH_CHECK(packed.size(1) * 8 == Kp * bits, "packed rows hold ", packed.size(1), " bytes, expected ", Kp * bits / 8);
  TORCH_CHECK(sz.size(0) == N && G == (Kp + group_size - 1) / group_size, "sz has the wrong shape");

  // Zero-padded activations [M, Kp] and their per-group sums [M, G]: O(M * K), negligible.
  std::vector<float> xpad(M * Kp, 0.f), xsum(M * G, 0.f);
  const float* xd = x.data_ptr<float>();
  for (int64_t m = 0; m < M; ++m) {
    std::memcpy(xpad.data() + m * Kp, xd + m * K, K * sizeof(float));
    for (int64_t k = 0; k < K; ++k) xsum[m * G + k / group_size] += xd[m * K + k];
  }
  at::Tensor y = at::empty({M, N}, x.options());
  Problem p{xpad.data(), xsum.data(), packed.data_ptr<uint8_t>(), reinterpret_cast<const uint16_t*>(sz.data_ptr<at::Half>()),
            y.data_ptr<float>(), M, N, Kp, G, group_size, packed.size(1)};
  // Chunks of at least ~32k weights, so small layers do not pay for waking threads.
  const int64_t grain = std::max<int64_t>(1, 32768 / Kp);
  at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) {
    switch (bits) {
      case 2: run_rows<2>(p, n0, n1); break;
      case 3: run_rows<3>(p, n0, n1); break;
      case 4: run_rows<4>(p, n0, n1); break;
      default: run_rows<8>(p, n0, n1); break;
    }
  });
  if (bias.has_value()) y.add_(*bias);
  return y;
}

}  // namespace

TORCH_LIBRARY(trustbits_lowbit, m) {
  m.def("mm(Tensor x, Tensor packed, Tensor sz, int bits, int group_size, Tensor? bias) -> Tensor", &lowbit_mm);
}
