// Token cross-entropy with label smoothing, forward and backward, each in one pass over the logits.
//
// Compiled with bahdanau_attention.cpp by rnnkit/nn/native.py (whose docstring says why) and
// called from its cross_entropy(). For every row i with target y_i != ignore (x = logits[i], V
// classes, eps the label smoothing, as torch.nn.functional.cross_entropy defines it):
//
//   lse_i  = log sum_v exp(x_v)
//   loss_i = (1 - eps) (lse_i - x_{y_i}) + eps (lse_i - mean_v x_v)
//
// and rows with target == ignore have loss 0. The backward writes, for a scale s (dL/dloss over
// the number of real rows):  grad[i, v] = s (exp(x_v - lse_i) - eps / V - (1 - eps) [v = y_i]),
// and zeros on ignored rows. One row (V floats, 32 KB at V = 8000) stays in the core's cache
// between the passes over it; rows are shared out over the process's OpenMP threads.

#include <omp.h>

#include <cmath>
#include <cstdint>

#include "vector_math.h"

namespace {

using rnnkit::exp_of;

template <typename T>
void forward(int64_t M, int64_t V, const T* logits, int64_t stride, const int64_t* target,
             int64_t ignore, T eps, T* lse_out, T* loss_out, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < M; ++i) {
    if (target[i] == ignore) {
      lse_out[i] = 0;
      loss_out[i] = 0;
      continue;
    }
    const T* x = logits + i * stride;
    T top = x[0];
#pragma omp simd reduction(max : top)
    for (int64_t v = 0; v < V; ++v) top = x[v] > top ? x[v] : top;
    T sum = 0, total = 0;
#pragma omp simd reduction(+ : sum, total)
    for (int64_t v = 0; v < V; ++v) {
      sum += exp_of(x[v] - top);
      total += x[v];
    }
    const T lse = top + std::log(sum);
    lse_out[i] = lse;
    loss_out[i] = (T(1) - eps) * (lse - x[target[i]]) + eps * (lse - total / T(V));
  }
}

template <typename T>
void backward(int64_t M, int64_t V, const T* logits, int64_t stride, const int64_t* target,
              int64_t ignore, T eps, const T* lse, T scale, T* grad, int threads) {
  const T off = scale * eps / T(V);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < M; ++i) {
    T* g = grad + i * V;
    if (target[i] == ignore) {
      for (int64_t v = 0; v < V; ++v) g[v] = 0;
      continue;
    }
    const T* x = logits + i * stride;
    const T l = lse[i];
#pragma omp simd
    for (int64_t v = 0; v < V; ++v) g[v] = scale * exp_of(x[v] - l) - off;
    g[target[i]] -= scale * (T(1) - eps);
  }
}

}  // namespace

#define RNNKIT_EXPORT(T, suffix)                                                               \
  extern "C" void rnnkit_cross_entropy_forward_##suffix(                                       \
      int64_t M, int64_t V, const T* logits, int64_t stride, const int64_t* target,            \
      int64_t ignore, T eps, T* lse_out, T* loss_out, int threads) {                           \
    forward<T>(M, V, logits, stride, target, ignore, eps, lse_out, loss_out, threads);         \
  }                                                                                            \
  extern "C" void rnnkit_cross_entropy_backward_##suffix(                                      \
      int64_t M, int64_t V, const T* logits, int64_t stride, const int64_t* target,            \
      int64_t ignore, T eps, const T* lse, T scale, T* grad, int threads) {                    \
    backward<T>(M, V, logits, stride, target, ignore, eps, lse, scale, grad, threads);         \
  }

RNNKIT_EXPORT(float, f32)
RNNKIT_EXPORT(double, f64)
