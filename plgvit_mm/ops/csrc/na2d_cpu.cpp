// Fused 2-D neighborhood attention forward on CPU (docs/design/neighborhood_attention.md).
//
// Layout: the queries of one image row sit in consecutive vector lanes ("planar" rows: head_dim
// lines of the row's W values), so every step is lane-wise and needs no horizontal reductions.
// For a lane chunk of a query row and a window tap (a, t), the keys of the chunk's queries are
// the planar key row shifted by (t - kx/2) * dx (interior chunks: no window clamped), or, in
// border chunks (windows clamped at the left/right edge, lanes past the map), one vector load
// permuted per lane (the permutation is the same for every tap); a chunk whose keys span more
// than one vector is gathered lane by lane. Two query rows of a dilation group are processed
// together, so the key rows their windows share are loaded once. Per chunk: logits
// scale * q.k + bias for exactly ky * kx taps per query, softmax over them, weighted sum of the
// values; the output is a contiguous (B, H, W, heads, head_dim) tensor. q, k and v are read
// through their strides (e.g. the unbound qkv projection): the caller makes no permuted copies.
// Work is the exact multiply-add count plus lane padding; memory is the output plus per-thread
// buffers of O((ky + 1) * head_dim * W) (planar key rows of one head, kept across calls).
// Forward only; Python wrapper: plgvit_mm/ops/na2d_cpu.py.
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
#include <type_traits>
#include <utility>
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
// relative-position-bias index first_bias[i] + t (docs/design/neighborhood_attention.md; same rule as na_windows.py).
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

// Where the keys of one lane chunk come from (see the file comment).
enum class ChunkKeys { kShift, kPermute, kGather };

template <typename T>
struct Chunk {
  ChunkKeys keys;
  int64_t first;       // kPermute/kGather: smallest key column of tap 0 over the chunk's lanes
  IndexVec<T> offset;  // lane l's key column of tap 0 minus `first` (0 for lanes past W)
};

// Shapes, layouts and tables of one call.
template <typename T>
struct Plan {
  int64_t batch, height, width, heads, dim, ky, kx, dy, dx, taps;
  int64_t chunks, row;  // lane chunks per query row, chunks * lanes
  bool gathers;         // some chunk is kGather
  AxisWindows wy, wx;
  std::vector<Chunk<T>> chunk;

  Plan(const at::Tensor& q, int64_t ky_, int64_t kx_, int64_t dy_, int64_t dx_)
      : batch(q.size(0)), height(q.size(1)), width(q.size(2)), heads(q.size(3)),
        dim(q.size(4)), ky(ky_), kx(kx_), dy(dy_), dx(dx_), taps(ky_ * kx_), gathers(false),
        wy(axis_windows(q.size(1), ky_, dy_)), wx(axis_windows(q.size(2), kx_, dx_)) {
    constexpr int64_t L = kLanes<T>;
    chunks = (width + L - 1) / L;
    row = chunks * L;
    chunk.resize(chunks);
    for (int64_t j = 0; j < chunks; ++j) {
      Chunk<T>& ch = chunk[j];
      const int64_t x0 = j * L, n = std::min(L, width - x0);
      bool interior = n == L;
      for (int64_t x = x0; interior && x < x0 + L; ++x)
        interior = wx.first_key[x] == x - (kx / 2) * dx;
      ch.first = *std::min_element(wx.first_key.begin() + x0, wx.first_key.begin() + x0 + n);
      const int64_t last =
          *std::max_element(wx.first_key.begin() + x0, wx.first_key.begin() + x0 + n);
      for (int64_t l = 0; l < L; ++l) ch.offset[l] = l < n ? wx.first_key[x0 + l] - ch.first : 0;
      ch.keys = interior ? ChunkKeys::kShift
                : last - ch.first < L ? ChunkKeys::kPermute
                                      : ChunkKeys::kGather;
      gathers = gathers || ch.keys == ChunkKeys::kGather;
    }
  }

  int64_t planar_size() const { return dim * row; }  // per (b, h, key row): lines of `row`
};

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

// The key (or value) vector of a chunk at `line`: a plain load, or for kPermute chunks lane l of
// the load at the chunk's first key column permuted to column first + offset[l].
template <bool kPermute, typename T>
inline Vec<T> key_lanes(const T* line, const IndexVec<T>& offset) {
  if constexpr (kPermute) return __builtin_shuffle(load(line), offset);
  return load(line);
}

// s[r][u] = sum_c queries[r][c] * keys[u][c] over the lanes, for N taps and R query rows (each
// key vector is loaded once for all rows). Small blocks keep P partial sums per output (channels
// c, c + 1, ... in turn) so that at least 8 independent FMA chains hide the FMA latency.
template <int N, int R, bool kPermute, typename T>
inline void logit_block(const T* const* queries, int64_t q_stride, const T* const* keys,
                        int64_t k_stride, const IndexVec<T>& offset, int64_t dim,
                        Vec<T> (*s)[8]) {
  constexpr int P = N * R >= 8 ? 1 : 8 / (N * R);
  Vec<T> acc[P][R][N] = {};
  int64_t c = 0;
  for (; c + P <= dim; c += P)
    for (int p = 0; p < P; ++p) {
      Vec<T> qv[R];
      for (int r = 0; r < R; ++r) qv[r] = load(queries[r] + (c + p) * q_stride);
      for (int u = 0; u < N; ++u) {
        Vec<T> kv = key_lanes<kPermute>(keys[u] + (c + p) * k_stride, offset);
        if constexpr (R > 1) keep_in_register(kv);
        for (int r = 0; r < R; ++r) acc[p][r][u] += qv[r] * kv;
      }
    }
  for (; c < dim; ++c)
    for (int r = 0; r < R; ++r)
      for (int u = 0; u < N; ++u)
        acc[0][r][u] += load(queries[r] + c * q_stride) *
                        key_lanes<kPermute>(keys[u] + c * k_stride, offset);
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < N; ++u) {
      Vec<T> total = acc[0][r][u];
      for (int p = 1; p < P; ++p) total += acc[p][r][u];
      s[r][u] = total;
    }
}

// acc[r][c + i] = inv[r] * sum over row r's taps of weight * value[c + i] (lanes), for N
// channels and R query rows. Union taps [0, shared_first) belong to row 0 only, [shared_first,
// shared_last) to every row, the rest to row R - 1 only; row r's own tap is union tap - off[r]
// (weights[r] are indexed by own taps, values by union taps).
template <int N, int R, bool kPermute, typename T>
inline void value_block(T* const* weights, const int64_t* off, const T* const* values,
                        int64_t taps, int64_t shared_first, int64_t shared_last,
                        int64_t v_stride, const IndexVec<T>& offset, int64_t c,
                        const Vec<T>* inv, T* const* acc) {
  constexpr int64_t L = kLanes<T>;
  Vec<T> o[R][N] = {};
  auto single = [&](int r, int64_t first, int64_t last) {
    for (int64_t u = first; u < last; ++u) {
      const Vec<T> w = load(weights[r] + (u - off[r]) * L);
      const T* v = values[u] + c * v_stride;
      for (int i = 0; i < N; ++i) o[r][i] += w * key_lanes<kPermute>(v + i * v_stride, offset);
    }
  };
  single(0, 0, shared_first);
  for (int64_t u = shared_first; u < shared_last; ++u) {
    Vec<T> w[R];
    for (int r = 0; r < R; ++r) w[r] = load(weights[r] + (u - off[r]) * L);
    const T* v = values[u] + c * v_stride;
    for (int i = 0; i < N; ++i) {
      Vec<T> vv = key_lanes<kPermute>(v + i * v_stride, offset);
      if constexpr (R > 1) keep_in_register(vv);
      for (int r = 0; r < R; ++r) o[r][i] += w[r] * vv;
    }
  }
  single(R - 1, shared_last, taps);
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < N; ++i) store(acc[r] + (c + i) * L, o[r][i] * inv[r]);
}

// Calls f(std::integral_constant<int, n>{}) with n the largest block (8, 4, 2 or 1) that fits
// in `left`, and returns n.
template <typename F>
inline int with_block_size(int64_t left, F&& f) {
  if (left >= 8) return f(std::integral_constant<int, 8>{}), 8;
  if (left >= 4) return f(std::integral_constant<int, 4>{}), 4;
  if (left >= 2) return f(std::integral_constant<int, 2>{}), 2;
  return f(std::integral_constant<int, 1>{}), 1;
}

// Logits of union taps [first, last) for R query rows: lg[r][own] = scale * q_r.k + bias, own =
// union tap - off[r]; bias[r][own] points at the bias lanes of row r's own tap; top[r] keeps
// the running maximum.
template <int R, bool kPermute, typename T>
void logit_segment(const T* const* q, T* const* lg, const T* const* const* bias,
                   const int64_t* off, const T* const* keys, int64_t first, int64_t last,
                   int64_t q_stride, int64_t k_stride, const IndexVec<T>& offset, int64_t dim,
                   T scale, Vec<T>* top) {
  constexpr int64_t L = kLanes<T>;
  Vec<T> s[R][8];
  for (int64_t u = first; u < last;) {
    const int n = with_block_size(last - u, [&](auto size) {
      logit_block<decltype(size)::value, R, kPermute, T>(q, q_stride, keys + u, k_stride, offset,
                                                         dim, s);
    });
    for (int i = 0; i < n; ++i, ++u)
      for (int r = 0; r < R; ++r) {
        const int64_t own = u - off[r];
        const Vec<T> logit = s[r][i] * scale + load(bias[r][own]);
        store(lg[r] + own * L, logit);
        top[r] = logit > top[r] ? logit : top[r];
      }
  }
}

// Planar k and v rows of one (batch, head) in a ring of `capacity` slots: key row y (group
// index y / dy) lives in slot (y / dy) % capacity, so the ky + 1 consecutive key rows of a query
// row pair never collide and consecutive pairs reuse the rows they share.
template <typename T>
struct KeyRing {
  int64_t capacity;
  std::vector<int64_t> row;  // key row held by each slot, -1 when empty
  T *k_planar, *v_planar;    // (capacity, dim, row) each, plus spare lanes for shifted loads
  KeyRing(const Plan<T>& p, int64_t capacity_)
      : capacity(capacity_), row(capacity_, -1),
        k_planar(thread_buffer<T, 0>(capacity_ * p.planar_size() + 2 * kLanes<T>)),
        v_planar(thread_buffer<T, 1>(capacity_ * p.planar_size() + 2 * kLanes<T>)) {}

  int64_t slot(int64_t key_row, const Plan<T>& p) const { return (key_row / p.dy) % capacity; }

  // Make key rows first, first + dy, ..., (count rows) of (b, h) present.
  void load_rows(const at::Tensor& k, const at::Tensor& v, int64_t b, int64_t h, int64_t first,
                 int64_t count, const Plan<T>& p) {
    for (int64_t i = 0; i < count; ++i) {
      const int64_t y = first + i * p.dy, at = slot(y, p);
      if (row[at] == y) continue;
      row[at] = y;
      for (const auto& [src, planar] : {std::pair<const at::Tensor*, T*>{&k, k_planar},
                                        std::pair<const at::Tensor*, T*>{&v, v_planar}}) {
        const auto s = src->strides();
        transpose<T>(src->template const_data_ptr<T>() + b * s[0] + y * s[1] + h * s[3], s[2],
                     s[4], planar + at * p.planar_size(), p.row, p.width, p.dim, p.row, p.dim);
      }
    }
  }
  void clear() { std::fill(row.begin(), row.end(), -1); }
};

// Per-thread scratch of attend_rows (two query rows).
template <typename T>
struct RowScratch {
  T *query, *logits, *acc;  // per row: (dim, row), (taps, lanes), (dim, lanes)
  T *gather_k, *gather_v;   // kGather chunks: (union taps, dim, lanes) keys and values
  T* head_bias;             // fill_head_bias table of head bias_head (-1: none yet)
  int64_t bias_head = -1;
  std::vector<T> zeros;                // bias lanes without rpb
  std::vector<const T*> keys, values;  // per union tap (ky + 1 key rows): chunk's first line
  std::vector<const T*> bias;          // per row and own tap: bias lanes
  std::vector<const T*> k_rows, v_rows;  // per union key row: its planar rows in the ring
  explicit RowScratch(const Plan<T>& p)
      : query(thread_buffer<T, 2>(2 * p.dim * p.row)),
        logits(thread_buffer<T, 3>(2 * p.taps * kLanes<T>)),
        acc(thread_buffer<T, 4>(2 * p.dim * kLanes<T>)),
        gather_k(thread_buffer<T, 5>(p.gathers ? (p.ky + 1) * p.kx * p.dim * kLanes<T> : 0)),
        gather_v(thread_buffer<T, 6>(p.gathers ? (p.ky + 1) * p.kx * p.dim * kLanes<T> : 0)),
        head_bias(thread_buffer<T, 7>((2 * p.ky - 1) * p.kx * p.row)), zeros(kLanes<T>, T(0)),
        keys((p.ky + 1) * p.kx), values((p.ky + 1) * p.kx), bias(2 * p.taps), k_rows(p.ky + 1),
        v_rows(p.ky + 1) {}
};

// Pointers of one chunk of a query row pair: the rows' planar queries, logits, outputs and bias
// lines; own tap of row r = union tap - off[r]; union taps [shared_first, shared_last) belong
// to both rows, earlier ones to row 0 only, later ones to row R - 1 only.
template <int R, typename T>
struct PairChunk {
  const T* q[R];
  T* lg[R];
  T* acc[R];
  const T* const* bias[R];
  int64_t off[2];
  int64_t union_taps, shared_first, shared_last;
};

// Logits, softmax and weighted values of one lane chunk for R query rows.
template <int R, bool kPermute, typename T>
void attend_chunk(const Plan<T>& p, const PairChunk<R, T>& pc, const T* const* keys,
                  const T* const* values, int64_t stride, const IndexVec<T>& offset, T scale) {
  using V = Vec<T>;
  constexpr int64_t L = kLanes<T>;
  V top[R];
  for (int r = 0; r < R; ++r) top[r] = broadcast(std::numeric_limits<T>::lowest());
  if constexpr (R == 2) {
    logit_segment<1, kPermute, T>(pc.q, pc.lg, pc.bias, pc.off, keys, 0, pc.shared_first, p.row,
                                  stride, offset, p.dim, scale, top);
    logit_segment<1, kPermute, T>(pc.q + 1, pc.lg + 1, pc.bias + 1, pc.off + 1, keys,
                                  pc.shared_last, pc.union_taps, p.row, stride, offset, p.dim,
                                  scale, top + 1);
  }
  logit_segment<R, kPermute, T>(pc.q, pc.lg, pc.bias, pc.off, keys, pc.shared_first,
                                pc.shared_last, p.row, stride, offset, p.dim, scale, top);
  // softmax numerators in place, 1 / denominator per lane
  V inv[R];
  for (int r = 0; r < R; ++r) {
    V total{};
    for (int64_t tap = 0; tap < p.taps; ++tap) {
      const V e = exp_nonpositive(load(pc.lg[r] + tap * L) - top[r]);
      store(pc.lg[r] + tap * L, e);
      total += e;
    }
    inv[r] = broadcast(T(1)) / total;
  }
  // weighted values
  for (int64_t c = 0; c < p.dim;)
    c += with_block_size(p.dim - c, [&](auto size) {
      value_block<decltype(size)::value, R, kPermute, T>(pc.lg, pc.off, values, pc.union_taps,
                                                         pc.shared_first, pc.shared_last, stride,
                                                         offset, c, inv, pc.acc);
    });
}

// Rows y[0..R) of one (batch, head): consecutive rows of one dilation group, so their windows'
// key rows overlap (R = 2: the second window starts `delta` in {0, 1} key rows later). The
// ky - delta shared key rows are loaded once for both query rows; each row attends exactly its
// own ky * kx taps.
template <int R, typename T>
void attend_rows(const Plan<T>& p, int64_t b, int64_t h, const int64_t* y, const at::Tensor& q,
                 const KeyRing<T>& ring, bool has_bias, T scale, RowScratch<T>& scratch,
                 T* out) {
  constexpr int64_t L = kLanes<T>;
  const T* bias = has_bias ? scratch.head_bias : nullptr;
  const auto qs = q.strides();
  const int64_t delta = R == 2 ? (p.wy.first_key[y[1]] - p.wy.first_key[y[0]]) / p.dy : 0;
  PairChunk<R, T> pc;
  pc.union_taps = (p.ky + delta) * p.kx;
  pc.shared_first = delta * p.kx;
  pc.shared_last = p.taps;
  pc.off[0] = 0;
  pc.off[1] = delta * p.kx;
  const T* qt[R];
  T* dst[R];
  for (int r = 0; r < R; ++r) {
    T* line = scratch.query + r * p.dim * p.row;
    transpose<T>(q.const_data_ptr<T>() + b * qs[0] + y[r] * qs[1] + h * qs[3], qs[2], qs[4],
                 line, p.row, p.width, p.dim, p.row, p.dim);
    for (int64_t c = 0; c < p.dim; ++c)
      std::fill(line + c * p.row + p.width, line + (c + 1) * p.row, T(0));
    qt[r] = line;
    pc.lg[r] = scratch.logits + r * p.taps * L;
    pc.acc[r] = scratch.acc + r * p.dim * L;
    pc.bias[r] = scratch.bias.data() + r * p.taps;
    dst[r] = out + ((b * p.height + y[r]) * p.width * p.heads + h) * p.dim;
  }
  for (int64_t kr = 0; kr < p.ky + delta; ++kr) {  // planar rows of the union, top to bottom
    const int64_t at = ring.slot(p.wy.first_key[y[0]] + kr * p.dy, p) * p.planar_size();
    scratch.k_rows[kr] = ring.k_planar + at;
    scratch.v_rows[kr] = ring.v_planar + at;
  }
  for (int64_t j = 0; j < p.chunks; ++j) {
    const int64_t x0 = j * L;
    const Chunk<T>& ch = p.chunk[j];
    for (int64_t kr = 0; kr < p.ky + delta; ++kr) {
      const T* k_row = scratch.k_rows[kr];
      const T* v_row = scratch.v_rows[kr];
      for (int64_t t = 0; t < p.kx; ++t) {
        const int64_t tap = kr * p.kx + t;
        if (ch.keys == ChunkKeys::kGather) {
          T* k_line = scratch.gather_k + tap * p.dim * L;
          T* v_line = scratch.gather_v + tap * p.dim * L;
          for (int64_t c = 0; c < p.dim; ++c)
            for (int64_t l = 0; l < L; ++l) {
              const int64_t column = c * p.row + ch.first + ch.offset[l] + t * p.dx;
              k_line[c * L + l] = k_row[column];
              v_line[c * L + l] = v_row[column];
            }
          scratch.keys[tap] = k_line;
          scratch.values[tap] = v_line;
        } else {
          const int64_t column = ch.keys == ChunkKeys::kShift ? x0 + (t - p.kx / 2) * p.dx
                                                              : ch.first + t * p.dx;
          scratch.keys[tap] = k_row + column;
          scratch.values[tap] = v_row + column;
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      pc.q[r] = qt[r] + x0;
      const T** lines = scratch.bias.data() + r * p.taps;
      for (int64_t a = 0, own = 0; a < p.ky; ++a) {
        const T* bias_row =
            bias ? bias + (p.wy.first_bias[y[r]] + a) * p.kx * p.row + x0 : nullptr;
        for (int64_t t = 0; t < p.kx; ++t, ++own)
          lines[own] = bias_row ? bias_row + t * p.row : scratch.zeros.data();
      }
    }
    const T* const* keys = scratch.keys.data();
    const T* const* values = scratch.values.data();
    if (ch.keys == ChunkKeys::kPermute)
      attend_chunk<R, true, T>(p, pc, keys, values, p.row, ch.offset, scale);
    else
      attend_chunk<R, false, T>(p, pc, keys, values,
                                ch.keys == ChunkKeys::kGather ? L : p.row, ch.offset, scale);
    for (int r = 0; r < R; ++r)
      transpose<T>(pc.acc[r], L, 1, dst[r] + x0 * p.heads * p.dim, p.heads * p.dim, p.dim,
                   std::min(L, p.width - x0), p.dim, L);
  }
}

template <typename T>
void na2d_forward_kernel(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                         const std::optional<at::Tensor>& rpb, at::Tensor& out, int64_t ky,
                         int64_t kx, int64_t dy, int64_t dx, double scale) {
  const Plan<T> p(q, ky, kx, dy, dx);
  const T* bias = rpb.has_value() ? rpb->const_data_ptr<T>() : nullptr;
  T* out_data = out.mutable_data_ptr<T>();
  // query row pairs: consecutive rows of one dilation group (a last odd row alone), in order
  std::vector<std::array<int64_t, 2>> pairs;
  for (int64_t g = 0; g < std::min(dy, p.height); ++g)
    for (int64_t y0 = g; y0 < p.height; y0 += 2 * dy)
      pairs.push_back({y0, y0 + dy < p.height ? y0 + dy : -1});
  // work items: (batch, head, segment of consecutive pairs); a thread walks its segment's pairs
  // in order, so each key row is transposed once per segment and stays in cache while used
  const int64_t n_pairs = static_cast<int64_t>(pairs.size());
  const int64_t segments = std::min(
      n_pairs, std::max<int64_t>(1, (2 * at::get_num_threads() + p.batch * p.heads - 1) /
                                        (p.batch * p.heads)));
  at::parallel_for(0, p.batch * p.heads * segments, 1, [&](int64_t begin, int64_t end) {
    RowScratch<T> scratch(p);
    KeyRing<T> ring(p, p.ky + 1);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / (p.heads * segments), h = (item / segments) % p.heads;
      const int64_t segment = item % segments;
      ring.clear();
      if (bias && scratch.bias_head != h) {
        fill_head_bias<T>(bias, h, p, scratch.head_bias);
        scratch.bias_head = h;
      }
      for (int64_t i = segment * n_pairs / segments; i < (segment + 1) * n_pairs / segments;
           ++i) {
        const auto& rows = pairs[i];
        const int64_t first = p.wy.first_key[rows[0]];
        const int64_t last = p.wy.first_key[rows[1] < 0 ? rows[0] : rows[1]];
        ring.load_rows(k, v, b, h, first, (last - first) / p.dy + p.ky, p);
        if (rows[1] < 0)
          attend_rows<1, T>(p, b, h, rows.data(), q, ring, bias != nullptr,
                            static_cast<T>(scale), scratch, out_data);
        else
          attend_rows<2, T>(p, b, h, rows.data(), q, ring, bias != nullptr,
                            static_cast<T>(scale), scratch, out_data);
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
