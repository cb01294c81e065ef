// Elementary functions that GCC and Clang vectorise (no calls into libm inside a loop).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace rnnkit {

// Clamp to [lo, hi] with the comparisons that compile to vminps / vmaxps.
inline float clamp_f32(float x, float lo, float hi) { return std::max(lo, std::min(hi, x)); }

// exp(x) for float x in [-87, 88] (where the result is a normal float), unchecked: range
// reduction x = n ln2 + r and Cephes' degree-6 polynomial for exp(r), within about 2 ulp.
inline float exp_f32_in_range(float x) {
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// exp(x) for any float x, clamped to [-87, 88] first.
inline float exp_f32(float x) { return exp_f32_in_range(clamp_f32(x, -87.0f, 88.0f)); }

inline float exp_of(float x) { return exp_f32(x); }
inline double exp_of(double x) { return std::exp(x); }

}  // namespace rnnkit
