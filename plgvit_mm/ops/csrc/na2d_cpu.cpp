// Fused 2-D neighborhood attention forward on CPU (spec: shared/design/nat.md §1).
//
// Layout: the queries of one image row sit in consecutive vector lanes ("planar" rows: head_dim
// lines of W values), so every step is lane-wise and needs no horizontal reductions. For a
// lane chunk of a query row and a window tap (a, t), the keys of the chunk's queries are
// either the planar key row shifted by (t - kx/2) * dx (interior chunks, where no window is
// clamped) or a prebuilt gathered copy (border chunks: windows clamped at the left/right edge,
// or lanes past the map). Per chunk: logits scale * q.k + bias for exactly ky * kx taps, softmax
// over the taps, weighted sum of values; the output goes to a contiguous (B, H, W, heads,
// head_dim) tensor. q, k and v are read through their strides (e.g. the unbound qkv
// projection), so the caller makes no permuted copies. Work is the exact multiply-add count
// plus lane padding; memory is planar copies of k and v (plus the border gathers) and per-thread
// scratch of O(ky * kx * lanes + head_dim * W). Forward only; wrapper: plgvit_mm/ops/na2d_cpu.py.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

constexpr int kVectorBytes = 32;

template <typename T>
struct VectorOf;
template <>
struct VectorOf<float> {
  typedef float type __attribute__((vector_size(kVectorBytes)));
  typedef int32_t index __attribute__((vector_size(kVectorBytes)));
};
template <>
struct VectorOf<double> {
  typedef double type __attribute__((vector_size(kVectorBytes)));
  typedef int64_t index __attribute__((vector_size(kVectorBytes)));
};
template <typename T>
using Vec = typename VectorOf<T>::type;
template <typename T>
using IndexVec = typename VectorOf<T>::index;  // lane indices / masks of a Vec<T>

template <typename T>
constexpr int64_t kLanes = kVectorBytes / sizeof(T);

template <typename T>
inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename T>
inline void store(T* p, Vec<T> v) {
  std::memcpy(p, &v, sizeof(v));
}

template <typename T>
inline Vec<T> broadcast(T s) {
  return Vec<T>{} + s;
}

// exp(x) lane-wise for x <= 0 (Cephes expf: round(x / ln 2), degree-6 polynomial on the
// remainder, exponent bits), ~1 ulp; lanes below -87 give exactly 0.
inline Vec<float> exp_nonpositive(Vec<float> x) {
  const Vec<float> low = broadcast(-87.0f);
  const Vec<float> xc = x < low ? low : x;
  const Vec<float> magic = broadcast(12582912.0f);  // 1.5 * 2^23: adds round to nearest
  const Vec<float> n = (xc * 1.44269504088896341f + magic) - magic;
  const Vec<float> r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  Vec<float> p = broadcast(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const IndexVec<float> bits = (__builtin_convertvector(n, IndexVec<float>) + 127) << 23;
  Vec<float> two_n;
  std::memcpy(&two_n, &bits, sizeof(two_n));
  return x < low ? Vec<float>{} : p * two_n;
}

inline Vec<double> exp_nonpositive(Vec<double> x) {
  for (int64_t i = 0; i < kLanes<double>; ++i) x[i] = std::exp(x[i]);
  return x;
}

// In-place transpose of 8 vectors of 8 floats (r[i][k] -> r[k][i]).
inline void transpose8(Vec<float>* r) {
  using I = IndexVec<float>;
  Vec<float> t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shuffle(r[i], r[i + 1], I{0, 8, 1, 9, 4, 12, 5, 13});
    t[i + 1] = __builtin_shuffle(r[i], r[i + 1], I{2, 10, 3, 11, 6, 14, 7, 15});
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = __builtin_shuffle(t[i], t[i + 2], I{0, 1, 8, 9, 4, 5, 12, 13});
    u[i + 1] = __builtin_shuffle(t[i], t[i + 2], I{2, 3, 10, 11, 6, 7, 14, 15});
    u[i + 2] = __builtin_shuffle(t[i + 1], t[i + 3], I{0, 1, 8, 9, 4, 5, 12, 13});
    u[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], I{2, 3, 10, 11, 6, 7, 14, 15});
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = __builtin_shuffle(u[i], u[i + 4], I{0, 1, 2, 3, 8, 9, 10, 11});
    r[i + 4] = __builtin_shuffle(u[i], u[i + 4], I{4, 5, 6, 7, 12, 13, 14, 15});
  }
}

// dst[c * dst_stride + i] = src[i * src_stride + c * src_step] for i < rows, c < cols; full
// 8 x 8 float blocks with unit src_step go through vector registers.
template <typename T>
void transpose(const T* src, int64_t src_stride, int64_t src_step, T* dst, int64_t dst_stride,
               int64_t rows, int64_t cols) {
  int64_t i0 = 0, c0 = 0;
  if constexpr (std::is_same_v<T, float>) {
    if (src_step == 1) {
      for (; i0 + 8 <= rows; i0 += 8)
        for (c0 = 0; c0 + 8 <= cols; c0 += 8) {
          Vec<float> r[8];
          for (int i = 0; i < 8; ++i) r[i] = load(src + (i0 + i) * src_stride + c0);
          transpose8(r);
          for (int c = 0; c < 8; ++c) store(dst + (c0 + c) * dst_stride + i0, r[c]);
        }
      // the rest: rows i0.. (all columns) and columns c0.. of rows < i0
      for (int64_t i = 0; i < i0; ++i)
        for (int64_t c = c0; c < cols; ++c) dst[c * dst_stride + i] = src[i * src_stride + c];
    }
  }
  for (int64_t i = i0; i < rows; ++i)
    for (int64_t c = 0; c < cols; ++c) dst[c * dst_stride + i] = src[i * src_stride + c * src_step];
}

// Window of every position on one axis: key of tap t is first_key[i] + t * dilation, its
// relative-position-bias index first_bias[i] + t (nat.md §1; same rule as na_windows.py).
struct AxisWindows {
  std::vector<int64_t> first_key;
  std::vector<int64_t> first_bias;
};

AxisWindows axis_windows(int64_t length, int64_t kernel, int64_t dilation) {
  AxisWindows w{std::vector<int64_t>(length), std::vector<int64_t>(length)};
  for (int64_t i = 0; i < length; ++i) {
    const int64_t group = i % dilation, inner = i / dilation;
    const int64_t group_len = length / dilation + (group < length % dilation ? 1 : 0);
    const int64_t start = std::min(std::max<int64_t>(inner - kernel / 2, 0), group_len - kernel);
    w.first_key[i] = group + start * dilation;
    w.first_bias[i] = start - inner + kernel - 1;
  }
  return w;
}

// Shapes, layouts and tables of one call.
template <typename T>
struct Plan {
  int64_t batch, height, width, heads, dim, ky, kx, dy, dx, taps;
  int64_t chunks, row;  // lane chunks per query row, chunks * lanes
  int64_t borders;      // chunks that need gathered keys
  AxisWindows wy, wx;
  std::vector<int64_t> border_slot;  // per chunk: its index among the border chunks, or -1

  Plan(const at::Tensor& q, int64_t ky_, int64_t kx_, int64_t dy_, int64_t dx_)
      : batch(q.size(0)), height(q.size(1)), width(q.size(2)), heads(q.size(3)),
        dim(q.size(4)), ky(ky_), kx(kx_), dy(dy_), dx(dx_), taps(ky_ * kx_), borders(0),
        wy(axis_windows(q.size(1), ky_, dy_)), wx(axis_windows(q.size(2), kx_, dx_)) {
    constexpr int64_t L = kLanes<T>;
    chunks = (width + L - 1) / L;
    row = chunks * L;
    border_slot.assign(chunks, -1);
    for (int64_t j = 0; j < chunks; ++j) {
      bool interior = (j + 1) * L <= width;
      for (int64_t x = j * L; interior && x < (j + 1) * L; ++x)
        interior = wx.first_key[x] == x - (kx / 2) * dx;
      if (!interior) border_slot[j] = borders++;
    }
  }

  int64_t rows() const { return batch * heads * height; }
  int64_t planar_size() const { return dim * width; }                 // per (b, h, key row)
  int64_t border_size() const { return borders * kx * dim * kLanes<T>; }  // per (b, h, key row)
};

// How the lanes of one border line (border chunk, tap t) gather their keys from a planar line:
// lane l takes plane[first + index[l]] where valid[l] (all ones), else 0. `exact`: every index
// lies in [0, lanes), so one vector load and one lane permutation build the line.
template <typename T>
struct BorderLine {
  int64_t first;
  IndexVec<T> index, valid;
  bool exact;
};

// One key row of k or v (the token-major line `in`, strides token_stride / channel_stride) ->
// its planar row (dim, W) and, per border line, the gathered keys of the chunk's lanes
// (dim, lanes).
template <typename T>
void prepare_key_row(const T* in, int64_t token_stride, int64_t channel_stride,
                     const Plan<T>& p, const std::vector<BorderLine<T>>& lines, T* planar,
                     T* border) {
  constexpr int64_t L = kLanes<T>;
  const int64_t width = p.width, dim = p.dim;
  transpose<T>(in, token_stride, channel_stride, planar, width, width, dim);
  for (size_t line = 0; line < lines.size(); ++line) {
    const BorderLine<T>& g = lines[line];
    T* dst = border + line * dim * L;
    for (int64_t c = 0; c < dim; ++c) {
      const T* plane = planar + c * width + g.first;
      if (g.exact) {
        const Vec<T> keys = __builtin_shuffle(load(plane), g.index);
        store(dst + c * L, g.valid ? keys : Vec<T>{});
      } else {
        for (int64_t l = 0; l < L; ++l) dst[c * L + l] = g.valid[l] ? plane[g.index[l]] : T(0);
      }
    }
  }
}

// k and v (B, H, W, heads, dim), strided -> planar rows and border gathers (prepare_key_row)
// of every (b, h, key row). The planar buffers hold `lanes` spare values at their end.
template <typename T>
void prepare_keys(const at::Tensor& k, const at::Tensor& v, T* k_planar, T* v_planar,
                  T* k_border, T* v_border, const Plan<T>& p) {
  constexpr int64_t L = kLanes<T>;
  std::vector<BorderLine<T>> lines(p.borders * p.kx);
  for (int64_t j = 0; j < p.chunks; ++j) {
    if (p.border_slot[j] < 0) continue;
    for (int64_t t = 0; t < p.kx; ++t) {
      BorderLine<T>& g = lines[p.border_slot[j] * p.kx + t];
      const int64_t n = std::min(L, p.width - j * L);
      g.first = p.wx.first_key[j * L] + t * p.dx;
      int64_t last = g.first;
      for (int64_t l = 0; l < n; ++l) {
        const int64_t source = p.wx.first_key[j * L + l] + t * p.dx;
        g.first = std::min(g.first, source);
        last = std::max(last, source);
      }
      g.exact = last - g.first < L;
      for (int64_t l = 0; l < L; ++l) {
        g.index[l] = l < n ? p.wx.first_key[j * L + l] + t * p.dx - g.first : 0;
        g.valid[l] = l < n ? -1 : 0;
      }
    }
  }
  at::parallel_for(0, p.rows(), 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / (p.heads * p.height), h = (item / p.height) % p.heads;
      const int64_t y = item % p.height;
      for (const auto& [src, planar, border] :
           {std::tuple<const at::Tensor*, T*, T*>{&k, k_planar, k_border},
            std::tuple<const at::Tensor*, T*, T*>{&v, v_planar, v_border}}) {
        const auto s = src->strides();
        prepare_key_row<T>(src->template const_data_ptr<T>() + b * s[0] + y * s[1] + h * s[3],
                           s[2], s[4], p, lines, planar + item * p.planar_size(),
                           border + item * p.border_size());
      }
    }
  });
}

// Relative position bias per (head, bias row, tap column t, lane x): rpb[h, row, bx(x) + t],
// zero past W.
template <typename T>
std::vector<T> bias_table(const T* rpb, const Plan<T>& p) {
  const int64_t bias_rows = 2 * p.ky - 1, bias_cols = 2 * p.kx - 1;
  std::vector<T> table(p.heads * bias_rows * p.kx * p.row, T(0));
  for (int64_t h = 0; h < p.heads; ++h)
    for (int64_t r = 0; r < bias_rows; ++r)
      for (int64_t t = 0; t < p.kx; ++t)
        for (int64_t x = 0; x < p.width; ++x)
          table[((h * bias_rows + r) * p.kx + t) * p.row + x] =
              rpb[(h * bias_rows + r) * bias_cols + p.wx.first_bias[x] + t];
  return table;
}

// out[u] = sum_c q[c] * keys[u][c] over the lanes, for N taps.
template <int N, typename T>
inline void logit_block(const T* q, int64_t q_stride, const T* const* keys, int64_t k_stride,
                        int64_t dim, Vec<T>* out) {
  Vec<T> s[N] = {};
  for (int64_t c = 0; c < dim; ++c) {
    const Vec<T> qv = load(q + c * q_stride);
    for (int u = 0; u < N; ++u) s[u] += qv * load(keys[u] + c * k_stride);
  }
  for (int u = 0; u < N; ++u) out[u] = s[u];
}

// acc[c + u] = inv * sum_tap weights[tap] * values[tap][c + u] over the lanes, for N channels.
template <int N, typename T>
inline void value_block(const T* weights, const T* const* values, int64_t taps,
                        int64_t v_stride, int64_t c, Vec<T> inv, T* acc) {
  constexpr int64_t L = kLanes<T>;
  Vec<T> o[N] = {};
  for (int64_t tap = 0; tap < taps; ++tap) {
    const Vec<T> w = load(weights + tap * L);
    const T* v = values[tap] + c * v_stride;
    for (int u = 0; u < N; ++u) o[u] += w * load(v + u * v_stride);
  }
  for (int u = 0; u < N; ++u) store(acc + (c + u) * L, o[u] * inv);
}

// Per-thread scratch of attend_row.
template <typename T>
struct RowScratch {
  std::vector<T> query;   // (dim, row) planar query row
  std::vector<T> logits;  // (taps, lanes) of one chunk
  std::vector<T> acc;     // (dim, lanes) output of one chunk
  std::vector<const T*> keys, values, bias;  // per tap: first lane of the chunk
  explicit RowScratch(const Plan<T>& p)
      : query(p.dim * p.row), logits(p.taps * kLanes<T>), acc(p.dim * kLanes<T>),
        keys(p.taps), values(p.taps), bias(p.taps) {}
};

// One (batch, head, query row) of the output.
template <typename T>
void attend_row(const Plan<T>& p, int64_t b, int64_t h, int64_t y, const at::Tensor& q,
                const T* k_planar, const T* v_planar, const T* k_border, const T* v_border,
                const T* bias, T scale, RowScratch<T>& scratch, T* out) {
  using V = Vec<T>;
  constexpr int64_t L = kLanes<T>;
  const auto qs = q.strides();
  const T* q_in = q.const_data_ptr<T>() + b * qs[0] + y * qs[1] + h * qs[3];
  T* qt = scratch.query.data();
  transpose<T>(q_in, qs[2], qs[4], qt, p.row, p.width, p.dim);
  for (int64_t c = 0; c < p.dim; ++c) std::fill(qt + c * p.row + p.width, qt + (c + 1) * p.row, T(0));
  const int64_t image = (b * p.heads + h) * p.height;
  const int64_t bias_row0 = h * (2 * p.ky - 1) + p.wy.first_bias[y];
  T* lg = scratch.logits.data();
  T* dst = out + ((b * p.height + y) * p.width * p.heads + h) * p.dim;
  for (int64_t j = 0; j < p.chunks; ++j) {
    const int64_t x0 = j * L, slot = p.border_slot[j];
    const int64_t stride = slot < 0 ? p.width : L;  // between channels of a key line
    for (int64_t a = 0; a < p.ky; ++a) {
      const int64_t key_row = image + p.wy.first_key[y] + a * p.dy;
      for (int64_t t = 0; t < p.kx; ++t) {
        const int64_t tap = a * p.kx + t;
        if (slot < 0) {
          const int64_t shift = x0 + (t - p.kx / 2) * p.dx;
          scratch.keys[tap] = k_planar + key_row * p.planar_size() + shift;
          scratch.values[tap] = v_planar + key_row * p.planar_size() + shift;
        } else {
          const int64_t at = key_row * p.border_size() + (slot * p.kx + t) * p.dim * L;
          scratch.keys[tap] = k_border + at;
          scratch.values[tap] = v_border + at;
        }
        scratch.bias[tap] = bias ? bias + ((bias_row0 + a) * p.kx + t) * p.row + x0 : nullptr;
      }
    }
    // logits, eight taps at a time
    V s[8];
    for (int64_t tap = 0; tap < p.taps;) {
      const T* const* keys = scratch.keys.data() + tap;
      const int64_t n = p.taps - tap >= 8 ? 8 : p.taps - tap >= 4 ? 4 : p.taps - tap >= 2 ? 2 : 1;
      if (n == 8) logit_block<8, T>(qt + x0, p.row, keys, stride, p.dim, s);
      if (n == 4) logit_block<4, T>(qt + x0, p.row, keys, stride, p.dim, s);
      if (n == 2) logit_block<2, T>(qt + x0, p.row, keys, stride, p.dim, s);
      if (n == 1) logit_block<1, T>(qt + x0, p.row, keys, stride, p.dim, s);
      for (int64_t u = 0; u < n; ++u, ++tap) {
        const V logit = s[u] * scale;
        store(lg + tap * L, bias ? logit + load(scratch.bias[tap]) : logit);
      }
    }
    // softmax numerators in place, 1 / denominator per lane
    V top = load(lg);
    for (int64_t tap = 1; tap < p.taps; ++tap) {
      const V l = load(lg + tap * L);
      top = l > top ? l : top;
    }
    V total{};
    for (int64_t tap = 0; tap < p.taps; ++tap) {
      const V e = exp_nonpositive(load(lg + tap * L) - top);
      store(lg + tap * L, e);
      total += e;
    }
    const V inv = broadcast(T(1)) / total;
    // weighted values, eight channels at a time
    T* acc = scratch.acc.data();
    const T* const* values = scratch.values.data();
    for (int64_t c = 0; c < p.dim;) {
      const int64_t n = p.dim - c >= 8 ? 8 : p.dim - c >= 4 ? 4 : p.dim - c >= 2 ? 2 : 1;
      if (n == 8) value_block<8, T>(lg, values, p.taps, stride, c, inv, acc);
      if (n == 4) value_block<4, T>(lg, values, p.taps, stride, c, inv, acc);
      if (n == 2) value_block<2, T>(lg, values, p.taps, stride, c, inv, acc);
      if (n == 1) value_block<1, T>(lg, values, p.taps, stride, c, inv, acc);
      c += n;
    }
    transpose<T>(acc, L, 1, dst + x0 * p.heads * p.dim, p.heads * p.dim, p.dim,
                 std::min(L, p.width - x0));
  }
}

template <typename T>
void na2d_forward_kernel(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                         const std::optional<at::Tensor>& rpb, at::Tensor& out, int64_t ky,
                         int64_t kx, int64_t dy, int64_t dx, double scale) {
  const Plan<T> p(q, ky, kx, dy, dx);
  const int64_t planar = p.rows() * p.planar_size() + kLanes<T>;  // + spare for border loads
  const int64_t border = p.rows() * p.border_size();
  at::Tensor buffer = at::empty({2 * (planar + border)}, q.options());
  T* k_planar = buffer.mutable_data_ptr<T>();
  T* v_planar = k_planar + planar;
  T* k_border = v_planar + planar;
  T* v_border = k_border + border;
  prepare_keys<T>(k, v, k_planar, v_planar, k_border, v_border, p);
  const std::vector<T> bias = rpb.has_value() ? bias_table<T>(rpb->const_data_ptr<T>(), p)
                                              : std::vector<T>();
  const T* bias_data = rpb.has_value() ? bias.data() : nullptr;
  T* out_data = out.mutable_data_ptr<T>();
  at::parallel_for(0, p.rows(), 1, [&](int64_t begin, int64_t end) {
    RowScratch<T> scratch(p);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / (p.heads * p.height), h = (item / p.height) % p.heads;
      attend_row<T>(p, b, h, item % p.height, q, k_planar, v_planar, k_border, v_border,
                    bias_data, static_cast<T>(scale), scratch, out_data);
    }
  });
}

at::Tensor na2d_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        const std::optional<at::Tensor>& rpb, at::IntArrayRef kernel_size,
                        at::IntArrayRef dilation, double scale) {
  TORCH_CHECK(q.dim() == 5, "q must be (B, H, W, heads, head_dim), got ", q.sizes());
  TORCH_CHECK(kernel_size.size() == 2 && dilation.size() == 2,
              "kernel_size and dilation must be (y, x) pairs");
  const int64_t ky = kernel_size[0], kx = kernel_size[1], dy = dilation[0], dx = dilation[1];
  TORCH_CHECK(ky >= 3 && kx >= 3 && ky % 2 == 1 && kx % 2 == 1,
              "kernel_size must be odd and > 1, got ", kernel_size);
  TORCH_CHECK(dy >= 1 && dx >= 1, "dilation must be >= 1, got ", dilation);
  TORCH_CHECK(q.scalar_type() == at::kFloat || q.scalar_type() == at::kDouble,
              "q must be float32 or float64, got ", q.scalar_type());
  for (const at::Tensor* t : {&k, &v}) {
    TORCH_CHECK(t->sizes() == q.sizes(), "k and v must have q's shape ", q.sizes(), ", got ",
                t->sizes());
    TORCH_CHECK(t->scalar_type() == q.scalar_type(), "k and v must have q's dtype");
  }
  for (const at::Tensor* t : {&q, &k, &v})
    TORCH_CHECK(t->device().is_cpu(), "q, k, v must be CPU tensors");
  TORCH_CHECK(q.size(1) >= ky * dy && q.size(2) >= kx * dx, "feature map ", q.size(1), "x",
              q.size(2), " smaller than kernel_size * dilation");
  std::optional<at::Tensor> bias;
  if (rpb.has_value()) {
    TORCH_CHECK(rpb->dim() == 3 && rpb->size(0) == q.size(3) && rpb->size(1) == 2 * ky - 1 &&
                    rpb->size(2) == 2 * kx - 1,
                "rpb must be (heads, 2*ky-1, 2*kx-1), got ", rpb->sizes());
    bias = rpb->to(q.scalar_type()).contiguous();
  }
  at::Tensor out = at::empty(q.sizes(), q.options().memory_format(at::MemoryFormat::Contiguous));
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "na2d_cpu_forward", [&] {
    na2d_forward_kernel<scalar_t>(q, k, v, bias, out, ky, kx, dy, dx, scale);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(plgvit_mm, m) {
  m.def("na2d_cpu_forward(Tensor q, Tensor k, Tensor v, Tensor? rpb, int[2] kernel_size, "
        "int[2] dilation, float scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(plgvit_mm, CPU, m) { m.impl("na2d_cpu_forward", &na2d_forward); }
