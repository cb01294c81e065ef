// The LSTM cell's element-wise work for one step, forward and backward, each in one pass.
//
// Compiled with the other kernels by rnnkit/nn/native.py (whose docstring says why) and called
// from rnnkit/nn/fused_decoder.py once per step instead of some ten PyTorch operators each way.
// With the pre-activations gates = [z_i, z_f, z_g, z_o] (B x 4H, PyTorch's order):
//
//   i, f, o = sigmoid(z_i, z_f, z_o), g = tanh(z_g)      written into act (B x 4H)
//   m = f m_prev + i g,  tm = tanh(m),  h = o tm          written into m, tm and h
//
// and the backward, given dh = dL/dh and dm = dL/dm from the steps after this one:
//
//   dm' = dm + dh o (1 - tm^2)
//   dz_i = dm' g i (1 - i),  dz_f = dm' m_prev f (1 - f),  dz_g = dm' i (1 - g^2),
//   dz_o = dh tm o (1 - o),  and dL/dm_prev = dm' f                      (dm is overwritten)

#include <omp.h>

#include <cmath>
#include <cstdint>

#include "vector_math.h"

namespace {

inline float sigmoid_of(float x) {
  return 1.0f / (1.0f + rnnkit::exp_f32_in_range(-rnnkit::clamp_f32(x, -87.0f, 87.0f)));
}
inline double sigmoid_of(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline float tanh_of(float x) {
  x = rnnkit::clamp_f32(x, -9.0f, 9.0f);  // tanh(9) rounds to 1 in float
  return 1.0f - 2.0f / (rnnkit::exp_f32_in_range(2.0f * x) + 1.0f);
}
inline double tanh_of(double x) { return std::tanh(x); }

template <typename T>
void forward(int64_t B, int64_t H, const T* gates, const T* m_prev, T* act, T* m_out, T* tm_out,
             T* h_out, int64_t h_stride, T* h_copy, int64_t copy_stride, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    const T* z = gates + b * 4 * H;
    T* a = act + b * 4 * H;
    const T* mp = m_prev + b * H;
    T* m = m_out + b * H;
    T* tm = tm_out + b * H;
    T* h = h_out + b * h_stride;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T i = sigmoid_of(z[j]), f = sigmoid_of(z[H + j]);
      const T g = tanh_of(z[2 * H + j]), o = sigmoid_of(z[3 * H + j]);
      a[j] = i;
      a[H + j] = f;
      a[2 * H + j] = g;
      a[3 * H + j] = o;
      const T mj = f * mp[j] + i * g;
      const T t = tanh_of(mj);
      m[j] = mj;
      tm[j] = t;
      h[j] = o * t;
    }
    if (h_copy != nullptr) {
      T* c = h_copy + b * copy_stride;
      for (int64_t j = 0; j < H; ++j) c[j] = h[j];
    }
  }
}

template <typename T>
void backward(int64_t B, int64_t H, const T* act, const T* m_prev, const T* tm_in, const T* dh_in,
              const T* dh_extra, int64_t extra_stride, T* dm, T* d_gates, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    const T* a = act + b * 4 * H;
    const T* mp = m_prev + b * H;
    const T* tm = tm_in + b * H;
    const T* dh0 = dh_in + b * H;
    const T* dh1 = dh_extra ? dh_extra + b * extra_stride : nullptr;
    T* dmb = dm + b * H;
    T* dz = d_gates + b * 4 * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T dh = dh1 ? dh0[j] + dh1[j] : dh0[j];
      const T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j], t = tm[j];
      const T d = dmb[j] + dh * o * (T(1) - t * t);
      dz[j] = d * g * i * (T(1) - i);
      dz[H + j] = d * mp[j] * f * (T(1) - f);
      dz[2 * H + j] = d * i * (T(1) - g * g);
      dz[3 * H + j] = dh * t * o * (T(1) - o);
      dmb[j] = d * f;
    }
  }
}

}  // namespace

#define RNNKIT_EXPORT(T, suffix)                                                               \
  extern "C" void rnnkit_lstm_cell_forward_##suffix(                                           \
      int64_t B, int64_t H, const T* gates, const T* m_prev, T* act, T* m_out, T* tm_out,      \
      T* h_out, int64_t h_stride, T* h_copy, int64_t copy_stride, int threads) {               \
    forward<T>(B, H, gates, m_prev, act, m_out, tm_out, h_out, h_stride, h_copy, copy_stride,  \
               threads);                                                                       \
  }                                                                                            \
  extern "C" void rnnkit_lstm_cell_backward_##suffix(                                          \
      int64_t B, int64_t H, const T* act, const T* m_prev, const T* tm_in, const T* dh_in,     \
      const T* dh_extra, int64_t extra_stride, T* dm, T* d_gates, int threads) {               \
    backward<T>(B, H, act, m_prev, tm_in, dh_in, dh_extra, extra_stride, dm, d_gates,          \
                threads);                                                                      \
  }

RNNKIT_EXPORT(float, f32)
RNNKIT_EXPORT(double, f64)
