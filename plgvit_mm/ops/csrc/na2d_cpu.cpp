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
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
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

// dst[c * dst_stride + i] = src[i * src_stride + c * src_step] for i < rows, c < cols. Floats
// with unit src_step go through 8 x 8 register transposes, also for partial blocks: rows past
// `rows` (up to rows_room, the writable length of a dst line) are written as zeros, and
// columns past `cols` (up to cols_room, the readable length of a src line) are read, not stored.
template <typename T>
void transpose(const T* src, int64_t src_stride, int64_t src_step, T* dst, int64_t dst_stride,
               int64_t rows, int64_t cols, int64_t rows_room, int64_t cols_room) {
  int64_t i0 = 0;
  if constexpr (std::is_same_v<T, float>) {
    if (src_step == 1) {
      for (; i0 < rows && i0 + 8 <= rows_room; i0 += 8) {
        int64_t c0 = 0;
        for (; c0 < cols && c0 + 8 <= cols_room; c0 += 8) {
          Vec<float> r[8];
          for (int i = 0; i < 8; ++i)
            r[i] = i0 + i < rows ? load(src + (i0 + i) * src_stride + c0) : Vec<float>{};
          transpose8(r);
          for (int64_t c = 0; c < std::min<int64_t>(8, cols - c0); ++c)
            store(dst + (c0 + c) * dst_stride + i0, r[c]);
        }
        for (int64_t i = i0; i < std::min(i0 + 8, rows); ++i)  // columns past the blocks
          for (int64_t c = c0; c < cols; ++c) dst[c * dst_stride + i] = src[i * src_stride + c];
      }
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
  int64_t planar_size() const { return dim * row; }  // per (b, h, key row): lines of `row`
  int64_t border_size() const { return borders * kx * dim * kLanes<T>; }  // per (b, h, key row)
};

// How the lanes of one border line (border chunk, tap t) gather their keys from a planar line:
// lane l takes plane[first + index[l]] where valid[l] (all ones), else 0. `exact`: every index
// lies in [0, lanes), so one vector load and one lane permutation build the line.
template <typename T>
struct BorderLine {
  int64_t first;
  IndexVec<T> index;  // lanes past W take index 0: a real key, never written out
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
  transpose<T>(in, token_stride, channel_stride, planar, p.row, width, dim, p.row, dim);
  for (size_t line = 0; line < lines.size(); ++line) {
    const BorderLine<T>& g = lines[line];
    T* dst = border + line * dim * L;
    for (int64_t c = 0; c < dim; ++c) {
      const T* plane = planar + c * p.row + g.first;
      if (g.exact) {
        store(dst + c * L, __builtin_shuffle(load(plane), g.index));
      } else {
        for (int64_t l = 0; l < L; ++l) dst[c * L + l] = plane[g.index[l]];
      }
    }
  }
}

// How every border line (border chunk, tap t) gathers its lanes (see BorderLine).
template <typename T>
std::vector<BorderLine<T>> border_lines(const Plan<T>& p) {
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
      for (int64_t l = 0; l < L; ++l)
        g.index[l] = l < n ? p.wx.first_key[j * L + l] + t * p.dx - g.first : 0;
    }
  }
  return lines;
}

// Per-thread buffer of at least n values, kept across calls (grows, never shrinks); kTag
// tells a thread's buffers apart.
template <typename T, int kTag>
T* thread_buffer(size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// Relative position bias of head h per (bias row, tap column t, lane x): rpb[h, row, bx(x) + t],
// zero past W; table: (2 * ky - 1, kx, row).
template <typename T>
void fill_head_bias(const T* rpb, int64_t h, const Plan<T>& p, T* table) {
  const int64_t bias_rows = 2 * p.ky - 1, bias_cols = 2 * p.kx - 1;
  for (int64_t r = 0; r < bias_rows; ++r) {
    const T* src = rpb + (h * bias_rows + r) * bias_cols;
    for (int64_t t = 0; t < p.kx; ++t) {
      T* line = table + (r * p.kx + t) * p.row;
      for (int64_t x = 0; x < p.width; ++x) line[x] = src[p.wx.first_bias[x] + t];
      std::fill(line + p.width, line + p.row, T(0));
    }
  }
}

// Makes the compiler keep v in a register: a vector used by several FMAs is then loaded once
// instead of being re-read as a memory operand by each of them.
template <typename V>
inline void keep_in_register(V& v) {
  asm("" : "+v"(v));
}

// s[r][u] = sum_c queries[r][c] * keys[u][c] over the lanes, for N taps and R query rows (each
// key vector is loaded once for all rows).
template <int N, int R, typename T>
inline void logit_block(const T* const* queries, int64_t q_stride, const T* const* keys,
                        int64_t k_stride, int64_t dim, Vec<T> (*s)[8]) {
  Vec<T> acc[R][N] = {};
  for (int64_t c = 0; c < dim; ++c) {
    Vec<T> qv[R];
    for (int r = 0; r < R; ++r) qv[r] = load(queries[r] + c * q_stride);
    for (int u = 0; u < N; ++u) {
      Vec<T> kv = load(keys[u] + c * k_stride);
      if constexpr (R > 1) keep_in_register(kv);
      for (int r = 0; r < R; ++r) acc[r][u] += qv[r] * kv;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < N; ++u) s[r][u] = acc[r][u];
}

// acc[r][c + i] = inv[r] * sum over row r's taps of weight * value[c + i] (lanes), for N
// channels and R query rows. Union taps [0, shared_first) belong to row 0 only, [shared_first,
// shared_last) to every row, the rest to row R - 1 only; row r's own tap is union tap - off[r]
// (weights[r] are indexed by own taps, values by union taps).
template <int N, int R, typename T>
inline void value_block(T* const* weights, const int64_t* off, const T* const* values,
                        int64_t taps, int64_t shared_first, int64_t shared_last,
                        int64_t v_stride, int64_t c, const Vec<T>* inv, T* const* acc) {
  constexpr int64_t L = kLanes<T>;
  Vec<T> o[R][N] = {};
  auto single = [&](int r, int64_t first, int64_t last) {
    for (int64_t u = first; u < last; ++u) {
      const Vec<T> w = load(weights[r] + (u - off[r]) * L);
      const T* v = values[u] + c * v_stride;
      for (int i = 0; i < N; ++i) o[r][i] += w * load(v + i * v_stride);
    }
  };
  single(0, 0, shared_first);
  for (int64_t u = shared_first; u < shared_last; ++u) {
    Vec<T> w[R];
    for (int r = 0; r < R; ++r) w[r] = load(weights[r] + (u - off[r]) * L);
    const T* v = values[u] + c * v_stride;
    for (int i = 0; i < N; ++i) {
      Vec<T> vv = load(v + i * v_stride);
      if constexpr (R > 1) keep_in_register(vv);
      for (int r = 0; r < R; ++r) o[r][i] += w[r] * vv;
    }
  }
  single(R - 1, shared_last, taps);
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < N; ++i) store(acc[r] + (c + i) * L, o[r][i] * inv[r]);
}

// Largest block (8, 4, 2 or 1) that fits in `left`.
inline int block_size(int64_t left) { return left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1; }

// Logits of union taps [first, last) for R query rows: lg[r][own] = scale * q_r.k + bias, own =
// union tap - off[r]; bias[r][own] points at the bias lanes of row r's own tap; top[r] keeps
// the running maximum.
template <int R, typename T>
void logit_segment(const T* const* q, T* const* lg, const T* const* const* bias,
                   const int64_t* off, const T* const* keys, int64_t first, int64_t last,
                   int64_t q_stride, int64_t k_stride, int64_t dim, T scale, Vec<T>* top) {
  constexpr int64_t L = kLanes<T>;
  Vec<T> s[R][8];
  for (int64_t u = first; u < last;) {
    const int n = block_size(last - u);
    if (n == 8) logit_block<8, R, T>(q, q_stride, keys + u, k_stride, dim, s);
    if (n == 4) logit_block<4, R, T>(q, q_stride, keys + u, k_stride, dim, s);
    if (n == 2) logit_block<2, R, T>(q, q_stride, keys + u, k_stride, dim, s);
    if (n == 1) logit_block<1, R, T>(q, q_stride, keys + u, k_stride, dim, s);
    for (int i = 0; i < n; ++i, ++u)
      for (int r = 0; r < R; ++r) {
        const int64_t own = u - off[r];
        const Vec<T> logit = s[r][i] * scale + load(bias[r][own]);
        store(lg[r] + own * L, logit);
        top[r] = logit > top[r] ? logit : top[r];
      }
  }
}

// Planar k and v rows (prepare_key_row) of one (batch, head) in a ring of `capacity` slots:
// key row y (group index y / dy) lives in slot (y / dy) % capacity, so the ky + 1 consecutive
// key rows of a query row pair never collide and consecutive pairs reuse what they share.
template <typename T>
struct KeyRing {
  int64_t capacity;
  std::vector<int64_t> row;  // key row held by each slot, -1 when empty
  T *k_planar, *v_planar, *k_border, *v_border;
  KeyRing(const Plan<T>& p, int64_t capacity_)
      : capacity(capacity_), row(capacity_, -1),
        k_planar(thread_buffer<T, 0>(capacity_ * p.planar_size() + kLanes<T>)),  // + spare for
        v_planar(thread_buffer<T, 1>(capacity_ * p.planar_size() + kLanes<T>)),  // border loads
        k_border(thread_buffer<T, 2>(capacity_ * p.border_size())),
        v_border(thread_buffer<T, 3>(capacity_ * p.border_size())) {}

  int64_t slot(int64_t key_row, const Plan<T>& p) const { return (key_row / p.dy) % capacity; }

  // Make key rows first, first + dy, ..., (count rows) of (b, h) present.
  void load_rows(const at::Tensor& k, const at::Tensor& v, int64_t b, int64_t h, int64_t first,
                 int64_t count, const Plan<T>& p, const std::vector<BorderLine<T>>& lines) {
    for (int64_t i = 0; i < count; ++i) {
      const int64_t y = first + i * p.dy, at = slot(y, p);
      if (row[at] == y) continue;
      row[at] = y;
      for (const auto& [src, planar, border] :
           {std::tuple<const at::Tensor*, T*, T*>{&k, k_planar, k_border},
            std::tuple<const at::Tensor*, T*, T*>{&v, v_planar, v_border}}) {
        const auto s = src->strides();
        prepare_key_row<T>(src->template const_data_ptr<T>() + b * s[0] + y * s[1] + h * s[3],
                           s[2], s[4], p, lines, planar + at * p.planar_size(),
                           border + at * p.border_size());
      }
    }
  }
  void clear() { std::fill(row.begin(), row.end(), -1); }
};

// Per-thread scratch of attend_rows (two query rows).
template <typename T>
struct RowScratch {
  int64_t taps;             // ky * kx per query row
  T *query, *logits, *acc;  // per row: (dim, row), (taps, lanes), (dim, lanes)
  T* head_bias;             // fill_head_bias table of head bias_head (-1: none yet)
  int64_t bias_head = -1;
  std::vector<T> zeros;                // bias lanes without rpb
  std::vector<const T*> keys, values;  // per union tap (ky + 1 key rows): chunk's first lane
  std::vector<const T*> bias;          // per row and own tap: bias lanes
  explicit RowScratch(const Plan<T>& p)
      : taps(p.taps), query(thread_buffer<T, 4>(2 * p.dim * p.row)),
        logits(thread_buffer<T, 5>(2 * p.taps * kLanes<T>)),
        acc(thread_buffer<T, 6>(2 * p.dim * kLanes<T>)),
        head_bias(thread_buffer<T, 7>((2 * p.ky - 1) * p.kx * p.row)), zeros(kLanes<T>, T(0)),
        keys((p.ky + 1) * p.kx), values((p.ky + 1) * p.kx), bias(2 * p.taps) {}
};

// Rows y[0..R) of one (batch, head): consecutive rows of one dilation group, so their windows'
// key rows overlap (R = 2: the second window starts `delta` in {0, 1} key rows later). The
// ky - delta shared key rows are loaded once for both query rows; each row attends exactly its
// own ky * kx taps.
template <int R, typename T>
void attend_rows(const Plan<T>& p, int64_t b, int64_t h, const int64_t* y, const at::Tensor& q,
                 const KeyRing<T>& keys, bool has_bias, T scale, RowScratch<T>& scratch, T* out) {
  using V = Vec<T>;
  constexpr int64_t L = kLanes<T>;
  const T* bias = has_bias ? scratch.head_bias : nullptr;
  const auto qs = q.strides();
  const int64_t delta = R == 2 ? (p.wy.first_key[y[1]] - p.wy.first_key[y[0]]) / p.dy : 0;
  const int64_t union_taps = (p.ky + delta) * p.kx;
  const int64_t shared_first = delta * p.kx, shared_last = p.taps;  // union taps of both rows
  const int64_t off[2] = {0, delta * p.kx};  // own tap = union tap - off[r]
  const T* qt[R];
  T* lg[R];
  T* acc[R];
  T* dst[R];
  const T* const* bias_lines[R];
  for (int r = 0; r < R; ++r) {
    T* line = scratch.query + r * p.dim * p.row;
    transpose<T>(q.const_data_ptr<T>() + b * qs[0] + y[r] * qs[1] + h * qs[3], qs[2], qs[4],
                 line, p.row, p.width, p.dim, p.row, p.dim);
    for (int64_t c = 0; c < p.dim; ++c)
      std::fill(line + c * p.row + p.width, line + (c + 1) * p.row, T(0));
    qt[r] = line;
    lg[r] = scratch.logits + r * p.taps * L;
    acc[r] = scratch.acc + r * p.dim * L;
    dst[r] = out + ((b * p.height + y[r]) * p.width * p.heads + h) * p.dim;
    bias_lines[r] = scratch.bias.data() + r * p.taps;
  }
  for (int64_t j = 0; j < p.chunks; ++j) {
    const int64_t x0 = j * L, slot = p.border_slot[j];
    const int64_t stride = slot < 0 ? p.row : L;  // between channels of a key line
    for (int64_t kr = 0; kr < p.ky + delta; ++kr) {
      const int64_t key_row = keys.slot(p.wy.first_key[y[0]] + kr * p.dy, p);
      for (int64_t t = 0; t < p.kx; ++t) {
        const int64_t tap = kr * p.kx + t;
        if (slot < 0) {
          const int64_t at = key_row * p.planar_size() + x0 + (t - p.kx / 2) * p.dx;
          scratch.keys[tap] = keys.k_planar + at;
          scratch.values[tap] = keys.v_planar + at;
        } else {
          const int64_t at = key_row * p.border_size() + (slot * p.kx + t) * p.dim * L;
          scratch.keys[tap] = keys.k_border + at;
          scratch.values[tap] = keys.v_border + at;
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int64_t own = 0; own < p.taps; ++own) {
        const int64_t bias_row = p.wy.first_bias[y[r]] + own / p.kx, t = own % p.kx;
        scratch.bias[r * p.taps + own] =
            bias ? bias + (bias_row * p.kx + t) * p.row + x0 : scratch.zeros.data();
      }
    // logits: scale * q.k + bias over each row's own taps
    const T* q_chunk[R];
    for (int r = 0; r < R; ++r) q_chunk[r] = qt[r] + x0;
    const T* const* key_lines = scratch.keys.data();
    V top[R];
    for (int r = 0; r < R; ++r) top[r] = broadcast(std::numeric_limits<T>::lowest());
    if constexpr (R == 2) {
      logit_segment<1, T>(q_chunk, lg, bias_lines, off, key_lines, 0, shared_first, p.row,
                          stride, p.dim, scale, top);
      logit_segment<1, T>(q_chunk + 1, lg + 1, bias_lines + 1, off + 1, key_lines, shared_last,
                          union_taps, p.row, stride, p.dim, scale, top + 1);
    }
    logit_segment<R, T>(q_chunk, lg, bias_lines, off, key_lines, shared_first, shared_last,
                        p.row, stride, p.dim, scale, top);
    // softmax numerators in place, 1 / denominator per lane
    V inv[R];
    for (int r = 0; r < R; ++r) {
      V total{};
      for (int64_t tap = 0; tap < p.taps; ++tap) {
        const V e = exp_nonpositive(load(lg[r] + tap * L) - top[r]);
        store(lg[r] + tap * L, e);
        total += e;
      }
      inv[r] = broadcast(T(1)) / total;
    }
    // weighted values
    const T* const* values = scratch.values.data();
    for (int64_t c = 0; c < p.dim;) {
      const int n = block_size(p.dim - c);
      if (n == 8)
        value_block<8, R, T>(lg, off, values, union_taps, shared_first, shared_last, stride, c,
                             inv, acc);
      if (n == 4)
        value_block<4, R, T>(lg, off, values, union_taps, shared_first, shared_last, stride, c,
                             inv, acc);
      if (n == 2)
        value_block<2, R, T>(lg, off, values, union_taps, shared_first, shared_last, stride, c,
                             inv, acc);
      if (n == 1)
        value_block<1, R, T>(lg, off, values, union_taps, shared_first, shared_last, stride, c,
                             inv, acc);
      c += n;
    }
    for (int r = 0; r < R; ++r)
      transpose<T>(acc[r], L, 1, dst[r] + x0 * p.heads * p.dim, p.heads * p.dim, p.dim,
                   std::min(L, p.width - x0), p.dim, L);
  }
}

template <typename T>
void na2d_forward_kernel(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                         const std::optional<at::Tensor>& rpb, at::Tensor& out, int64_t ky,
                         int64_t kx, int64_t dy, int64_t dx, double scale) {
  const Plan<T> p(q, ky, kx, dy, dx);
  const std::vector<BorderLine<T>> lines = border_lines(p);
  const T* bias = rpb.has_value() ? rpb->const_data_ptr<T>() : nullptr;
  T* out_data = out.mutable_data_ptr<T>();
  // query row pairs: consecutive rows of one dilation group (a last odd row alone), in order
  std::vector<std::array<int64_t, 2>> pairs;
  for (int64_t g = 0; g < std::min(dy, p.height); ++g)
    for (int64_t y0 = g; y0 < p.height; y0 += 2 * dy)
      pairs.push_back({y0, y0 + dy < p.height ? y0 + dy : -1});
  // work items: (batch, head, segment of consecutive pairs); a thread walks its segment's pairs
  // in order, so each key row is prepared once per segment and stays in cache while used
  const int64_t n_pairs = static_cast<int64_t>(pairs.size());
  const int64_t segments = std::min(
      n_pairs, std::max<int64_t>(1, (2 * at::get_num_threads() + p.batch * p.heads - 1) /
                                        (p.batch * p.heads)));
  at::parallel_for(0, p.batch * p.heads * segments, 1, [&](int64_t begin, int64_t end) {
    RowScratch<T> scratch(p);
    KeyRing<T> keys(p, p.ky + 1);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / (p.heads * segments), h = (item / segments) % p.heads;
      const int64_t segment = item % segments;
      keys.clear();
      if (bias && scratch.bias_head != h) {
        fill_head_bias<T>(bias, h, p, scratch.head_bias);
        scratch.bias_head = h;
      }
      for (int64_t i = segment * n_pairs / segments; i < (segment + 1) * n_pairs / segments;
           ++i) {
        const auto& rows = pairs[i];
        const int64_t first = p.wy.first_key[rows[0]];
        const int64_t last = p.wy.first_key[rows[1] < 0 ? rows[0] : rows[1]];
        keys.load_rows(k, v, b, h, first, (last - first) / p.dy + p.ky, p, lines);
        if (rows[1] < 0)
          attend_rows<1, T>(p, b, h, rows.data(), q, keys, bias != nullptr, static_cast<T>(scale),
                            scratch, out_data);
        else
          attend_rows<2, T>(p, b, h, rows.data(), q, keys, bias != nullptr, static_cast<T>(scale),
                            scratch, out_data);
      }
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
