// One step of Bahdanau's additive attention, forward and backward, each in one pass per sentence.
//
// Compiled on first use by rnnkit/nn/native.py (the module docstring says why it is hand-written)
// and called through ctypes from rnnkit/nn/fused_decoder.py. For every sentence b of the batch,
// over its real source positions i only (mask[b, i] != 0):
//
//   e_i = v^T tanh(k_i + q)        k_i = keys[b, i] (Ha), q = query[b] (Ha)
//   a   = softmax(e)               written into a_out[b, :] (0 at padded positions)
//   c   = sum_i a_i h_i            h_i = states[b, i] (De), written into c_out[b, :]
//
// and the backward, given dc = dL/dc (and dL/da when not null):
//
//   da_i = dc . h_i (+ dL/da_i),   de_i = a_i (da_i - sum_j a_j da_j)
//   g_i  = de_i (1 - tanh^2(k_i + q)) * v      (Ha)
//   dq  = sum_i g_i (written),  dkeys[b, i] += g_i,  dv += sum_{b, i} de_i tanh(k_i + q)
//
// One sentence's keys and states (S x Ha and S x De floats, about 170 KB each at S = 83) stay in
// the core's L2 cache while it is worked on; the sentences are shared out over OpenMP threads
// (the process's own OpenMP runtime, the one PyTorch loaded). Nothing is stored between forward
// and backward: the backward recomputes tanh. float: tanh from a vectorisable exp (range
// reduction and Cephes' polynomial, vector_math.h); double: std::tanh.

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "vector_math.h"

namespace {

inline float tanh_of(float x) {
  x = rnnkit::clamp_f32(x, -9.0f, 9.0f);  // tanh(9) rounds to 1 in float
  return 1.0f - 2.0f / (rnnkit::exp_f32_in_range(2.0f * x) + 1.0f);
}

inline double tanh_of(double x) { return std::tanh(x); }

template <typename T>
void forward(int64_t B, int64_t S, int64_t Ha, int64_t De, const T* keys, const T* query,
             const T* v, const T* states, const uint8_t* mask, T* a_out, int64_t a_stride,
             T* c_out, int64_t c_stride, int threads) {
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> e(S);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      const T* q = query + b * Ha;
      const uint8_t* m = mask + b * S;
      T top = -INFINITY;
      for (int64_t i = 0; i < S; ++i) {
        if (!m[i]) continue;
        const T* k = keys + (b * S + i) * Ha;
        T sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < Ha; ++j) sum += v[j] * tanh_of(k[j] + q[j]);
        e[i] = sum;
        top = std::fmax(top, sum);
      }
      T total = 0;
      for (int64_t i = 0; i < S; ++i) {
        if (!m[i]) continue;
        e[i] = std::exp(e[i] - top);
        total += e[i];
      }
      T* a = a_out + b * a_stride;
      T* c = c_out + b * c_stride;
      for (int64_t d = 0; d < De; ++d) c[d] = 0;
      for (int64_t i = 0; i < S; ++i) {
        if (!m[i]) {
          a[i] = 0;
          continue;
        }
        const T w = e[i] / total;
        a[i] = w;
        const T* h = states + (b * S + i) * De;
#pragma omp simd
        for (int64_t d = 0; d < De; ++d) c[d] += w * h[d];
      }
    }
  }
}

template <typename T>
void backward(int64_t B, int64_t S, int64_t Ha, int64_t De, const T* keys, const T* query,
              const T* v, const T* states, const uint8_t* mask, const T* a_in, int64_t a_stride,
              const T* dc_in, int64_t dc_stride, const T* da_in, int64_t da_stride, T* dq_out,
              T* dkeys, T* dv, T* partial, int threads) {
  std::memset(partial, 0, sizeof(T) * Ha * threads);
#pragma omp parallel num_threads(threads)
  {
    T* dv_part = partial + omp_get_thread_num() * Ha;
    std::vector<T> de(S);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      const T* q = query + b * Ha;
      const uint8_t* m = mask + b * S;
      const T* a = a_in + b * a_stride;
      const T* dc = dc_in + b * dc_stride;
      T mean = 0;
      for (int64_t i = 0; i < S; ++i) {
        if (!m[i]) continue;
        const T* h = states + (b * S + i) * De;
        T da = da_in ? da_in[b * da_stride + i] : T(0);
#pragma omp simd reduction(+ : da)
        for (int64_t d = 0; d < De; ++d) da += dc[d] * h[d];
        de[i] = da;
        mean += a[i] * da;
      }
      T* dq = dq_out + b * Ha;
      for (int64_t j = 0; j < Ha; ++j) dq[j] = 0;
      for (int64_t i = 0; i < S; ++i) {
        if (!m[i]) continue;
        const T g = a[i] * (de[i] - mean);
        const T* k = keys + (b * S + i) * Ha;
        T* dk = dkeys + (b * S + i) * Ha;
#pragma omp simd
        for (int64_t j = 0; j < Ha; ++j) {
          const T t = tanh_of(k[j] + q[j]);
          const T gv = g * (T(1) - t * t) * v[j];
          dq[j] += gv;
          dk[j] += gv;
          dv_part[j] += g * t;
        }
      }
    }
  }
  for (int p = 0; p < threads; ++p)  // in a fixed order: the same sum on every run
    for (int64_t j = 0; j < Ha; ++j) dv[j] += partial[p * Ha + j];
}

}  // namespace

#define RNNKIT_EXPORT(T, suffix)                                                                \
  extern "C" void rnnkit_attention_forward_##suffix(                                            \
      int64_t B, int64_t S, int64_t Ha, int64_t De, const T* keys, const T* query, const T* v,  \
      const T* states, const uint8_t* mask, T* a_out, int64_t a_stride, T* c_out,               \
      int64_t c_stride, int threads) {                                                          \
    forward<T>(B, S, Ha, De, keys, query, v, states, mask, a_out, a_stride, c_out, c_stride,    \
               threads);                                                                        \
  }                                                                                             \
  extern "C" void rnnkit_attention_backward_##suffix(                                           \
      int64_t B, int64_t S, int64_t Ha, int64_t De, const T* keys, const T* query, const T* v,  \
      const T* states, const uint8_t* mask, const T* a_in, int64_t a_stride, const T* dc_in,    \
      int64_t dc_stride, const T* da_in, int64_t da_stride, T* dq_out, T* dkeys, T* dv,         \
      T* partial, int threads) {                                                                \
    backward<T>(B, S, Ha, De, keys, query, v, states, mask, a_in, a_stride, dc_in, dc_stride,   \
                da_in, da_stride, dq_out, dkeys, dv, partial, threads);                         \
  }

RNNKIT_EXPORT(float, f32)
RNNKIT_EXPORT(double, f64)
