/* fastsom._native: the lowest score of each row of the CPU search, and the per-unit sums of the update, as a plain CPython extension.
   Built when the package is installed (setup.py); `fastsom.native` explains it and checks it against argmin.
   No torch or numpy headers: the caller passes the addresses of float32 / int64 buffers it owns. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#ifdef _OPENMP  /* built with -fopenmp where the compiler has it: the work of a call is shared by a team of threads, taken from
                   the OpenMP runtime torch already loaded (one libgomp.so.1 per process), so no thread of torch's spins idle beside ours */
#include <omp.h>
#define TEAM_SLICE(n, lo, hi) int64_t lo = (int64_t)(n) * omp_get_thread_num() / omp_get_num_threads(), \
                                      hi = (int64_t)(n) * (omp_get_thread_num() + 1) / omp_get_num_threads()
#else
#define TEAM_SLICE(n, lo, hi) int64_t lo = 0, hi = (n)
#pragma GCC diagnostic ignored "-Wunknown-pragmas"  /* built without OpenMP: its pragmas are meant to be skipped */
#endif

/* The threads of a call: `threads`, but no more than `shares` (rows / 2, or units), so that a count far above the work
   (torch's own, on a small call) starts no thread with nothing to do, and no count asks OpenMP for threads it cannot start. */
static int team_size(int threads, int64_t shares) { return shares < threads ? (shares > 1 ? (int)shares : 1) : threads; }

/* Two versions of one kernel, for AVX-512 and for AVX2 (a plain C loop was slower than torch's own steps):
   out[r] = column of the lowest `scores[r, c] + bias[c]` of row r of a [rows, cols] float32 array whose rows start
   `row_stride` floats apart; the first column on ties, the first NaN where a row holds one: exactly argmin's answer. Each keeps, per vector lane, the lowest value and the column where it was first
   seen (a strict `<` keeps the earlier column), in CHAINS independent chains so that no compare waits on the one
   before; then merges lanes, on ties the earlier column. A running sum of the values turns NaN if one is NaN (or
   from inf - inf); only then is the row read again for its first NaN. No fast-math: +-inf keep their meaning. */
#define CHAINS 4

typedef void (*kernel_fn)(const float *, int64_t, int64_t, int64_t, const float *, int64_t *);

#if defined(__x86_64__) && defined(__GNUC__)  /* gcc and clang, Linux and macOS: chosen at run time by cpuid */
#include <immintrin.h>
#define HAVE_X86_KERNELS 1

static int64_t first_nan(const float *p, const float *bias, int64_t cols, int64_t otherwise) {
    for (int64_t c = 0; c < cols; c++) { float v = p[c] + bias[c]; if (v != v) return c; }
    return otherwise;
}

/* The column of the lowest value over CHAINS chains of lanes (each lane's lowest value and where it was first seen),
   the earlier column on ties; 0 where no lane holds a number (a row of NaN). */
__attribute__((target("avx512f"))) static inline int64_t merged_lanes_avx512(__m512 *best, __m512i *where) {
    for (int k = 1; k < CHAINS; k++) {
        __mmask16 take = _mm512_cmp_ps_mask(best[k], best[0], _CMP_LT_OQ)
                       | (_mm512_cmp_ps_mask(best[k], best[0], _CMP_EQ_OQ) & _mm512_cmplt_epi32_mask(where[k], where[0]));
        best[0] = _mm512_mask_mov_ps(best[0], take, best[k]);
        where[0] = _mm512_mask_mov_epi32(where[0], take, where[k]);
    }
    float lowest = _mm512_reduce_min_ps(best[0]);
    __mmask16 tied = _mm512_cmp_ps_mask(best[0], _mm512_set1_ps(lowest), _CMP_EQ_OQ);
    return tied ? _mm512_mask_reduce_min_epi32(tied, where[0]) : 0;
}

__attribute__((target("avx512f")))
static void first_lowest_avx512(const float *scores, int64_t rows, int64_t cols, int64_t row_stride,
                                const float *bias, int64_t *out) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 inf = _mm512_set1_ps(INFINITY);
    for (int64_t r = 0; r < rows; r++) {
        const float *p = scores + r * row_stride;
        __m512 best[CHAINS], total = _mm512_setzero_ps();
        __m512i where[CHAINS];
        for (int k = 0; k < CHAINS; k++) { best[k] = inf; where[k] = _mm512_add_epi32(lane, _mm512_set1_epi32(16 * k)); }
        int64_t c = 0;
        for (; c + 16 * CHAINS <= cols; c += 16 * CHAINS)
            for (int k = 0; k < CHAINS; k++) {
                __m512 v = _mm512_add_ps(_mm512_loadu_ps(p + c + 16 * k), _mm512_loadu_ps(bias + c + 16 * k));
                __mmask16 lower = _mm512_cmp_ps_mask(v, best[k], _CMP_LT_OQ);
                best[k] = _mm512_mask_mov_ps(best[k], lower, v);
                where[k] = _mm512_mask_mov_epi32(where[k], lower, _mm512_add_epi32(lane, _mm512_set1_epi32((int)(c + 16 * k))));
                total = _mm512_add_ps(total, v);
            }
        for (int k = 0; c < cols; c += 16, k = (k + 1) % CHAINS) {  /* last columns: missing lanes read as +inf */
            __mmask16 present = cols - c >= 16 ? 0xFFFF : (__mmask16)((1u << (cols - c)) - 1);
            __m512 v = _mm512_add_ps(_mm512_mask_loadu_ps(inf, present, p + c), _mm512_maskz_loadu_ps(present, bias + c));
            __mmask16 lower = _mm512_cmp_ps_mask(v, best[k], _CMP_LT_OQ);
            best[k] = _mm512_mask_mov_ps(best[k], lower, v);
            where[k] = _mm512_mask_mov_epi32(where[k], lower, _mm512_add_epi32(lane, _mm512_set1_epi32((int)c)));
            total = _mm512_mask_add_ps(total, present, total, v);
        }
        int64_t at = merged_lanes_avx512(best, where);
        if (_mm512_cmp_ps_mask(total, total, _CMP_UNORD_Q)) at = first_nan(p, bias, cols, at);
        out[r] = at;
    }
}

__attribute__((target("avx2")))
static void first_lowest_avx2(const float *scores, int64_t rows, int64_t cols, int64_t row_stride,
                              const float *bias, int64_t *out) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 inf = _mm256_set1_ps(INFINITY);
    for (int64_t r = 0; r < rows; r++) {
        const float *p = scores + r * row_stride;
        __m256 best[CHAINS], total = _mm256_setzero_ps();
        __m256i where[CHAINS];
        for (int k = 0; k < CHAINS; k++) { best[k] = inf; where[k] = _mm256_add_epi32(lane, _mm256_set1_epi32(8 * k)); }
        int64_t c = 0;
        for (; c + 8 * CHAINS <= cols; c += 8 * CHAINS)
            for (int k = 0; k < CHAINS; k++) {
                __m256 v = _mm256_add_ps(_mm256_loadu_ps(p + c + 8 * k), _mm256_loadu_ps(bias + c + 8 * k));
                __m256 lower = _mm256_cmp_ps(v, best[k], _CMP_LT_OQ);
                best[k] = _mm256_blendv_ps(best[k], v, lower);
                where[k] = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(where[k]),
                           _mm256_castsi256_ps(_mm256_add_epi32(lane, _mm256_set1_epi32((int)(c + 8 * k)))), lower));
                total = _mm256_add_ps(total, v);
            }
        for (int k = 1; k < CHAINS; k++) {
            __m256 take = _mm256_or_ps(_mm256_cmp_ps(best[k], best[0], _CMP_LT_OQ),
                          _mm256_and_ps(_mm256_cmp_ps(best[k], best[0], _CMP_EQ_OQ),
                                        _mm256_castsi256_ps(_mm256_cmpgt_epi32(where[0], where[k]))));
            best[0] = _mm256_blendv_ps(best[0], best[k], take);
            where[0] = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(where[0]), _mm256_castsi256_ps(where[k]), take));
        }
        __m128 m = _mm_min_ps(_mm256_castps256_ps128(best[0]), _mm256_extractf128_ps(best[0], 1));
        m = _mm_min_ps(m, _mm_movehl_ps(m, m));
        m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
        float lowest = _mm_cvtss_f32(m);
        __m256i big = _mm256_set1_epi32(INT32_MAX);  /* columns of the lanes holding `lowest`, others INT32_MAX */
        __m256i cand = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(big), _mm256_castsi256_ps(where[0]),
                                                            _mm256_cmp_ps(best[0], _mm256_set1_ps(lowest), _CMP_EQ_OQ)));
        __m128i q = _mm_min_epi32(_mm256_castsi256_si128(cand), _mm256_extracti128_si256(cand, 1));
        q = _mm_min_epi32(q, _mm_shuffle_epi32(q, _MM_SHUFFLE(1, 0, 3, 2)));
        q = _mm_min_epi32(q, _mm_shuffle_epi32(q, _MM_SHUFFLE(2, 3, 0, 1)));
        int64_t at = _mm_cvtsi128_si32(q);
        float sum = 0;
        if (at == INT32_MAX || c == 0) at = 0;  /* all NaN so far, or no whole vector: the loop below decides */
        if (c == 0) lowest = INFINITY;
        for (; c < cols; c++) {  /* the last columns come after all the others: strictly lower wins */
            float v = p[c] + bias[c];
            sum += v;
            if (v < lowest) { lowest = v; at = c; }
        }
        float lanes[8];
        _mm256_storeu_ps(lanes, total);
        for (int j = 0; j < 8; j++) sum += lanes[j];
        out[r] = sum != sum ? first_nan(p, bias, cols, at) : at;
    }
}

/* The masked search's pick, on AVX-512 processors: for each row `s` of scores `x0 @ (-2 w).T` (x0: the row `x` with
   its missing cells as 0), the column of the lowest `s[c] + (the squares of w_c over the row's present cells)`,
   argmin's answer; -1 for a row with no present cell. The squares are `||w_c||^2` (bias) plus the rows of
   `minus_sq = -(w*w).T` of the row's missing features, or, where fewer cells are present than missing, the rows of
   `sq = (w*w).T` of its present features alone, added in feature order. A row without a missing cell gets the
   complete search's bits (`s[c] + bias[c]`). The rows go by tiles of TILE_ROWS, and each tile by chunks of
   16 * CHAINS = 64 columns, so that a chunk's part of the square tables (feats x 64 floats, rows padded to whole
   cache lines by the caller) stays in L1 while the tile's rows add it: 28 ms for 100,000 rows of 64 features on
   900 units, on one core, against 37 to 40 ms reading the tables row by row from L2 (with 8 sums at a time
   instead of 4, or tiles of 8 to 64 rows: the same). Each row keeps its lanes (`first_lowest_avx512`'s lowest
   values and where they were seen) in memory from chunk to chunk; no table of corrected scores is written. */
#define TILE_ROWS 16

typedef struct { __m512 best[CHAINS], total; __m512i where[CHAINS]; } lanes_avx512;  /* one row's lanes, between chunks */

typedef struct {  /* one row of a tile: what its chunks add */
    const float *s, *t, *bias;  /* its scores, its square table, and ||w||^2 or NULL (the present features' squares alone) */
    const int32_t *feat;  /* the features whose rows of `t` it adds */
    int n;  /* how many; -1: no present cell */
} masked_row;

static int64_t masked_first_nan(const masked_row *r, int64_t t_stride, int64_t cols, int64_t otherwise) {
    for (int64_t c = 0; c < cols; c++) {  /* the sums of the vector lanes, in their order: the same bits */
        float v = r->s[c];
        for (int f = 0; f < r->n; f++) v += r->t[(int64_t)r->feat[f] * t_stride + c];
        if (r->bias) v += r->bias[c];
        if (v != v) return c;
    }
    return otherwise;
}

__attribute__((target("avx512f")))
static void masked_row_of(masked_row *r, const float *x, int64_t feats, const float *minus_sq, const float *sq, const float *bias, int32_t *list) {
    /* the row's missing and present features, listed by compressing masks; then the shorter list and its table */
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int32_t *missing = list, *present = list + feats;
    int n_missing = 0, n_present = 0;
    for (int64_t d = 0; d < feats; d += 16) {
        __mmask16 in = feats - d >= 16 ? 0xFFFF : (__mmask16)((1u << (feats - d)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(in, x + d);
        __mmask16 gap = _mm512_mask_cmp_ps_mask(in, v, v, _CMP_UNORD_Q), has = in & ~gap;
        __m512i idx = _mm512_add_epi32(lane, _mm512_set1_epi32((int)d));
        _mm512_mask_compressstoreu_epi32(missing + n_missing, gap, idx);
        _mm512_mask_compressstoreu_epi32(present + n_present, has, idx);
        n_missing += __builtin_popcount(gap); n_present += __builtin_popcount(has);
    }
    int from_missing = n_missing <= n_present;
    r->feat = from_missing ? missing : present;
    r->n = !n_present ? -1 : from_missing ? n_missing : n_present;
    r->t = from_missing ? minus_sq : sq;
    r->bias = from_missing ? bias : NULL;
}

__attribute__((target("avx512f")))
static inline void track_avx512(lanes_avx512 *l, int k, __m512 v, int64_t c) {  /* one vector of values at column c, into chain k */
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __mmask16 lower = _mm512_cmp_ps_mask(v, l->best[k], _CMP_LT_OQ);
    l->best[k] = _mm512_mask_mov_ps(l->best[k], lower, v);
    l->where[k] = _mm512_mask_mov_epi32(l->where[k], lower, _mm512_add_epi32(lane, _mm512_set1_epi32((int)c)));
}

__attribute__((target("avx512f")))
static void masked_tile_avx512(masked_row *rows, int nr, int64_t cols, int64_t t_stride, lanes_avx512 *lanes, int64_t *out) {
    const __m512 inf = _mm512_set1_ps(INFINITY);
    for (int i = 0; i < nr; i++) {
        for (int k = 0; k < CHAINS; k++) { lanes[i].best[k] = inf; lanes[i].where[k] = _mm512_setzero_si512(); }
        lanes[i].total = _mm512_setzero_ps();
    }
    int64_t c = 0;
    for (; c + 16 * CHAINS <= cols; c += 16 * CHAINS)  /* a chunk of 16 * CHAINS columns, for every row of the tile */
        for (int i = 0; i < nr; i++) {
            const masked_row *r = rows + i;
            if (r->n < 0) continue;
            __m512 a[CHAINS];
            for (int k = 0; k < CHAINS; k++) a[k] = _mm512_loadu_ps(r->s + c + 16 * k);
            for (int f = 0; f < r->n; f++) {
                const float *p = r->t + (int64_t)r->feat[f] * t_stride + c;
                for (int k = 0; k < CHAINS; k++) a[k] = _mm512_add_ps(a[k], _mm512_loadu_ps(p + 16 * k));
            }
            for (int k = 0; k < CHAINS; k++) {
                __m512 v = r->bias ? _mm512_add_ps(a[k], _mm512_loadu_ps(r->bias + c + 16 * k)) : a[k];
                track_avx512(lanes + i, k, v, c + 16 * k);
                lanes[i].total = _mm512_add_ps(lanes[i].total, v);
            }
        }
    for (int k = 0; c < cols; c += 16, k = (k + 1) % CHAINS) {  /* last columns, a vector at a time: missing lanes read as +inf */
        __mmask16 in = cols - c >= 16 ? 0xFFFF : (__mmask16)((1u << (cols - c)) - 1);
        for (int i = 0; i < nr; i++) {
            const masked_row *r = rows + i;
            if (r->n < 0) continue;
            __m512 v = _mm512_mask_loadu_ps(inf, in, r->s + c);
            for (int f = 0; f < r->n; f++) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(in, r->t + (int64_t)r->feat[f] * t_stride + c));
            if (r->bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(in, r->bias + c));
            track_avx512(lanes + i, k, v, c);
            lanes[i].total = _mm512_mask_add_ps(lanes[i].total, in, lanes[i].total, v);
        }
    }
    for (int i = 0; i < nr; i++) {
        if (rows[i].n < 0) { out[i] = -1; continue; }  /* nothing to compare: the caller names the row */
        int64_t at = merged_lanes_avx512(lanes[i].best, lanes[i].where);
        out[i] = _mm512_cmp_ps_mask(lanes[i].total, lanes[i].total, _CMP_UNORD_Q) ? masked_first_nan(rows + i, t_stride, cols, at) : at;
    }
}
#endif

/* Per-unit sums of a batch, the statistics of the update and of the reported energy: one pass over the rows, in
   row order (so the sums are those of torch's `index_add_`, and the same for any thread count), each row added
   into its unit's slot. `unit_sums`: counts, sums of squared norms, sums of rows. `masked_unit_sums`, for rows
   with missing cells (NaN): per slot, [x0 | m | x0*x0 | s*x0 | s*m] (5 * cols floats: x0 the row with its missing
   cells 0, m its presence, s = cols / (cells present)) and the sum of s * ||x0||^2. One C body, compiled for
   AVX-512, AVX2 and the baseline (the compiler vectorises the loops over columns; each column has its own sum,
   and squared norms are summed in 16 fixed lanes, so every version adds in the same order: the same bits). */
#define LANES 16

static inline int stop_at_nan(const int64_t *restrict slot, int64_t r, int64_t rows, int64_t n_slots) {
    /* a NaN cell stops the sums (1), but the units of the rows left are still checked (-1 for one out of range): a thread
       that stops early sees the same units as one that goes on, so the answer is the same for any number of threads */
    for (; r < rows; r++) if (slot[r] < 0 || slot[r] >= n_slots) return -1;
    return 1;
}

static inline __attribute__((always_inline))
int unit_sums_body(const float *restrict x, int64_t rows, int64_t cols, int64_t row_stride, const int64_t *restrict slot,
                   int64_t n_slots, int64_t lo, int64_t hi, int64_t *restrict count, float *restrict sq, float *restrict sums, float *restrict sq_lanes) {
    float probe[LANES] = {0};  /* the squares of the rows so far: NaN once a row has a NaN cell (squares are never -inf) */
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict p = x + r * row_stride;
        int64_t u = slot[r];
        if (u < 0 || u >= n_slots) return -1;
        if (r % 64 == 63) for (int l = 0; l < LANES; l++) if (probe[l] != probe[l]) return stop_at_nan(slot, r, rows, n_slots);  /* a missing cell: the caller's masked sums */
        if (u < lo || u >= hi) continue;  /* another thread's units */
        float *restrict s = sums + u * cols, *restrict lanes = sq_lanes + (u - lo) * LANES, row[LANES] = {0};
        int64_t c = 0;
        for (; c + LANES <= cols; c += LANES)
            for (int l = 0; l < LANES; l++) { float v = p[c + l]; s[c + l] += v; row[l] += v * v; }
        float tail = 0;  /* the last cols % 16 columns */
        for (; c < cols; c++) { float v = p[c]; s[c] += v; tail += v * v; }
        row[0] += tail;
        for (int l = 0; l < LANES; l++) { lanes[l] += row[l]; probe[l] += row[l]; }
        count[u] += 1;
    }
    for (int l = 0; l < LANES; l++) if (probe[l] != probe[l]) return 1;
    for (int64_t u = lo; u < hi; u++)
        for (int l = 0; l < LANES; l++) sq[u] += sq_lanes[(u - lo) * LANES + l];
    return 0;
}

static inline __attribute__((always_inline)) uint32_t present_bits(float v) {
    /* all ones where v is a number, 0 where it is NaN, by integer steps: float compares and selects keep gcc from
       vectorising the loops below anywhere but on AVX-512 */
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return (uint32_t)((int32_t)(bits & 0x7fffffffu) > 0x7f800000) - 1u;
}

static inline __attribute__((always_inline)) float masked_float(float v, uint32_t mask) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits &= mask;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static inline __attribute__((always_inline))
int masked_unit_sums_body(const float *restrict x, int64_t rows, int64_t cols, int64_t row_stride, const int64_t *restrict slot,
                          int64_t n_slots, int64_t lo, int64_t hi, float *restrict scaled_sq, float *restrict sums, float *restrict sq_lanes) {
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict p = x + r * row_stride;
        int64_t u = slot[r];
        int32_t present = 0;
        if (u < 0 || u >= n_slots) return -1;
        if (u < lo || u >= hi) continue;  /* another thread's units */
        for (int64_t c = 0; c < cols; c++) present += p[c] == p[c];
        float scale = (1.f / (float)present) * (float)cols;  /* as torch computes `cols / present`: a reciprocal, then a product */
        float *restrict a = sums + u * 5 * cols, *restrict m = a + cols, *restrict q = m + cols,
              *restrict sa = q + cols, *restrict sm = sa + cols, *restrict lanes = sq_lanes + (u - lo) * LANES, row[LANES] = {0};
        int64_t c = 0;
        for (; c + LANES <= cols; c += LANES)
            for (int l = 0; l < LANES; l++) {
                uint32_t keep = present_bits(p[c + l]);
                float v0 = masked_float(p[c + l], keep), has = masked_float(1.f, keep);
                a[c + l] += v0; m[c + l] += has; q[c + l] += v0 * v0; sa[c + l] += scale * v0; sm[c + l] += scale * has;
                row[l] += v0 * v0;
            }
        float tail = 0;
        for (; c < cols; c++) {
            uint32_t keep = present_bits(p[c]);
            float v0 = masked_float(p[c], keep), has = masked_float(1.f, keep);
            a[c] += v0; m[c] += has; q[c] += v0 * v0; sa[c] += scale * v0; sm[c] += scale * has;
            tail += v0 * v0;
        }
        row[0] += tail;
        for (int l = 0; l < LANES; l++) lanes[l] += scale * row[l];
    }
    for (int64_t u = lo; u < hi; u++)
        for (int l = 0; l < LANES; l++) scaled_sq[u] += sq_lanes[(u - lo) * LANES + l];
    return 0;
}

static inline __attribute__((always_inline))
void split_missing_body(const float *restrict x, int64_t rows, int64_t cols, int64_t row_stride, float *restrict out, int64_t out_stride) {
    /* out[r] = [x0 | m]: the row with its missing cells as 0, then 1 where a cell is present and 0 where it is missing */
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict p = x + r * row_stride;
        float *restrict o = out + r * out_stride;
        for (int64_t c = 0; c < cols; c++) {
            uint32_t keep = present_bits(p[c]);
            o[c] = masked_float(p[c], keep);
            o[cols + c] = masked_float(1.f, keep);
        }
    }
}

typedef void (*split_fn)(const float *, int64_t, int64_t, int64_t, float *, int64_t);
typedef int (*sums_fn)(const float *, int64_t, int64_t, int64_t, const int64_t *, int64_t, int64_t, int64_t, int64_t *, float *, float *, float *);
typedef int (*masked_sums_fn)(const float *, int64_t, int64_t, int64_t, const int64_t *, int64_t, int64_t, int64_t, float *, float *, float *);

#define SUMS_VERSIONS(suffix, attr) \
    attr static int unit_sums_##suffix(const float *x, int64_t rows, int64_t cols, int64_t row_stride, const int64_t *slot, \
                                       int64_t n_slots, int64_t lo, int64_t hi, int64_t *count, float *sq, float *sums, float *lanes) \
    { return unit_sums_body(x, rows, cols, row_stride, slot, n_slots, lo, hi, count, sq, sums, lanes); } \
    attr static int masked_unit_sums_##suffix(const float *x, int64_t rows, int64_t cols, int64_t row_stride, const int64_t *slot, \
                                              int64_t n_slots, int64_t lo, int64_t hi, float *scaled_sq, float *sums, float *lanes) \
    { return masked_unit_sums_body(x, rows, cols, row_stride, slot, n_slots, lo, hi, scaled_sq, sums, lanes); } \
    attr static void split_missing_##suffix(const float *x, int64_t rows, int64_t cols, int64_t row_stride, float *out, int64_t out_stride) \
    { split_missing_body(x, rows, cols, row_stride, out, out_stride); }

SUMS_VERSIONS(plain, )
#ifdef HAVE_X86_KERNELS
SUMS_VERSIONS(avx2, __attribute__((target("avx2"))))
SUMS_VERSIONS(avx512, __attribute__((target("avx512f"))))
#endif

/* The kernels this processor runs, widest first; none on other processors: fastsom then uses torch's steps. */
static kernel_fn kernels[2];
static const char *kernel_names[2];
static int n_kernels = 0;

static sums_fn sums_versions[3];  /* the versions of the per-unit sums this processor runs, widest first */
static masked_sums_fn masked_sums_versions[3];
static split_fn split_versions[3];
static const char *sums_names[3];
static int n_sums = 0;

static void find_kernels(void) {
#ifdef HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) { kernels[n_kernels] = first_lowest_avx512; kernel_names[n_kernels++] = "avx512"; }
    if (__builtin_cpu_supports("avx2")) { kernels[n_kernels] = first_lowest_avx2; kernel_names[n_kernels++] = "avx2"; }
    if (__builtin_cpu_supports("avx512f")) { sums_versions[n_sums] = unit_sums_avx512; masked_sums_versions[n_sums] = masked_unit_sums_avx512; split_versions[n_sums] = split_missing_avx512; sums_names[n_sums++] = "avx512"; }
    if (__builtin_cpu_supports("avx2")) { sums_versions[n_sums] = unit_sums_avx2; masked_sums_versions[n_sums] = masked_unit_sums_avx2; split_versions[n_sums] = split_missing_avx2; sums_names[n_sums++] = "avx2"; }
#endif
    sums_versions[n_sums] = unit_sums_plain; masked_sums_versions[n_sums] = masked_unit_sums_plain; split_versions[n_sums] = split_missing_plain; sums_names[n_sums++] = "plain";
}

static PyObject *py_first_lowest_rows(PyObject *self, PyObject *args) {
    unsigned long long scores, bias, out;
    long long rows, cols, row_stride;
    const char *name = NULL;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "KLLLKK|zi", &scores, &rows, &cols, &row_stride, &bias, &out, &name, &threads)) return NULL;
    if (threads < 1) { PyErr_Format(PyExc_ValueError, "first_lowest_rows: threads must be at least 1, got %d", threads); return NULL; }
    if (!n_kernels) { PyErr_SetString(PyExc_RuntimeError, "first_lowest_rows: no kernel for this processor"); return NULL; }
    kernel_fn kernel = kernels[0];
    if (name) {
        int i = 0;
        while (i < n_kernels && strcmp(name, kernel_names[i])) i++;
        if (i == n_kernels) { PyErr_Format(PyExc_ValueError, "first_lowest_rows: no kernel %s on this processor", name); return NULL; }
        kernel = kernels[i];
    }
    if (rows < 0 || cols < 1 || cols > INT32_MAX || (rows > 1 && row_stride < cols) || !bias || (rows > 0 && (!scores || !out))) {
        PyErr_Format(PyExc_ValueError, "first_lowest_rows: needs rows >= 0, 1 <= cols < 2**31, row_stride >= cols and "
                     "non-null buffers, got rows=%lld cols=%lld row_stride=%lld", rows, cols, row_stride);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS  /* other Python threads (another block's product) run meanwhile */
    int team = team_size(threads, rows / 2); (void)team;  /* unused without OpenMP; at least two rows a thread */
    #pragma omp parallel num_threads(team) if(team > 1)
    {
        TEAM_SLICE(rows, lo, hi);  /* this thread's rows */
        kernel((const float *)(uintptr_t)scores + lo * row_stride, hi - lo, cols, row_stride, (const float *)(uintptr_t)bias,
               (int64_t *)(uintptr_t)out + lo);
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_masked_first_lowest_rows(PyObject *self, PyObject *args) {
    unsigned long long scores, x, minus_sq, sq, bias, out;
    long long rows, cols, row_stride, feats, x_stride, t_stride;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "KLLLKLLKKLKK|i", &scores, &rows, &cols, &row_stride, &x, &feats, &x_stride, &minus_sq, &sq, &t_stride, &bias,
                          &out, &threads)) return NULL;
    if (threads < 1) { PyErr_Format(PyExc_ValueError, "masked_first_lowest_rows: threads must be at least 1, got %d", threads); return NULL; }
#ifdef HAVE_X86_KERNELS
    if (!__builtin_cpu_supports("avx512f"))
#endif
    { PyErr_SetString(PyExc_RuntimeError, "masked_first_lowest_rows: no kernel for this processor (it needs AVX-512)"); return NULL; }
    if (rows < 0 || cols < 1 || cols > INT32_MAX || feats < 1 || feats > INT32_MAX || t_stride < cols || (rows > 1 && (row_stride < cols || x_stride < feats))
        || !minus_sq || !sq || !bias || (rows > 0 && (!scores || !x || !out))) {
        PyErr_Format(PyExc_ValueError, "masked_first_lowest_rows: needs rows >= 0, 1 <= cols, feats < 2**31, row_stride >= cols, "
                     "x_stride >= feats, t_stride >= cols and non-null buffers, got rows=%lld cols=%lld row_stride=%lld feats=%lld x_stride=%lld "
                     "t_stride=%lld", rows, cols, row_stride, feats, x_stride, t_stride);
        return NULL;
    }
    int failed = 0;
#ifdef HAVE_X86_KERNELS
    Py_BEGIN_ALLOW_THREADS
    int team = team_size(threads, rows / 2); (void)team;  /* unused without OpenMP; at least two rows a thread */
    #pragma omp parallel num_threads(team) if(team > 1) reduction(|: failed)
    {
        TEAM_SLICE(rows, lo, hi);  /* this thread's rows */
        int32_t *lists = malloc(TILE_ROWS * 2 * (size_t)feats * sizeof(int32_t));
        lanes_avx512 *lanes = aligned_alloc(64, TILE_ROWS * sizeof(lanes_avx512));
        masked_row tile[TILE_ROWS];
        if (!lists || !lanes) failed = 1;
        else for (int64_t r0 = lo; r0 < hi; r0 += TILE_ROWS) {
            int nr = hi - r0 < TILE_ROWS ? (int)(hi - r0) : TILE_ROWS;
            for (int i = 0; i < nr; i++) {
                tile[i].s = (const float *)(uintptr_t)scores + (r0 + i) * row_stride;
                masked_row_of(tile + i, (const float *)(uintptr_t)x + (r0 + i) * x_stride, feats, (const float *)(uintptr_t)minus_sq,
                              (const float *)(uintptr_t)sq, (const float *)(uintptr_t)bias, lists + 2 * i * feats);
            }
            masked_tile_avx512(tile, nr, cols, t_stride, lanes, (int64_t *)(uintptr_t)out + r0);
        }
        free(lists); free(lanes);
    }
    Py_END_ALLOW_THREADS
#endif
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *names_tuple(const char **names, int n) {
    PyObject *tuple = PyTuple_New(n);
    for (int i = 0; tuple && i < n; i++) PyTuple_SET_ITEM(tuple, i, PyUnicode_FromString(names[i]));
    return tuple;
}

static PyObject *py_kernels(PyObject *self, PyObject *args) { return names_tuple(kernel_names, n_kernels); }

static PyObject *py_unit_sums(PyObject *self, PyObject *args) {
    unsigned long long x, slot, count, sq, sums;
    long long rows, cols, row_stride, n_slots;
    int masked, i = 0, threads = 1;
    const char *name = NULL;
    if (!PyArg_ParseTuple(args, "KLLLKLpKKK|zi", &x, &rows, &cols, &row_stride, &slot, &n_slots, &masked, &count, &sq, &sums, &name,
                          &threads)) return NULL;
    if (threads < 1) { PyErr_Format(PyExc_ValueError, "unit_sums: threads must be at least 1, got %d", threads); return NULL; }
    while (name && i < n_sums && strcmp(name, sums_names[i])) i++;
    if (i == n_sums) { PyErr_Format(PyExc_ValueError, "unit_sums: no version %s on this processor", name); return NULL; }
    if (rows < 0 || cols < 1 || n_slots < 1 || (rows > 1 && row_stride < cols) || (rows > 0 && (!x || !slot)) || !sq || !sums || (!masked && !count)) {
        PyErr_Format(PyExc_ValueError, "unit_sums: needs rows >= 0, cols >= 1, n_slots >= 1, row_stride >= cols and non-null buffers, "
                     "got rows=%lld cols=%lld row_stride=%lld n_slots=%lld", rows, cols, row_stride, n_slots);
        return NULL;
    }
    float *lanes = calloc((size_t)n_slots * LANES, sizeof(float));  /* squared norms per slot, in 16 lanes until the end */
    if (!lanes) return PyErr_NoMemory();
    int bad = 0;  /* bit 1: a row with a NaN cell; bit 2: a unit out of range */
    Py_BEGIN_ALLOW_THREADS
    /* each thread adds the rows of its own units, all rows read in order: the same sums for any number of threads */
    int team = team_size(threads, n_slots); (void)team;  /* unused without OpenMP; at least one unit a thread */
    #pragma omp parallel num_threads(team) if(team > 1) reduction(|: bad)
    {
        TEAM_SLICE(n_slots, lo, hi);  /* this thread's units */
        int found = masked ? masked_sums_versions[i]((const float *)(uintptr_t)x, rows, cols, row_stride, (const int64_t *)(uintptr_t)slot, n_slots,
                                                     lo, hi, (float *)(uintptr_t)sq, (float *)(uintptr_t)sums, lanes + lo * LANES)
                           : sums_versions[i]((const float *)(uintptr_t)x, rows, cols, row_stride, (const int64_t *)(uintptr_t)slot, n_slots,
                                              lo, hi, (int64_t *)(uintptr_t)count, (float *)(uintptr_t)sq, (float *)(uintptr_t)sums, lanes + lo * LANES);
        bad |= found < 0 ? 2 : found;
    }
    Py_END_ALLOW_THREADS
    free(lanes);
    if (bad & 2) { PyErr_Format(PyExc_ValueError, "unit_sums: a unit index outside [0, %lld)", n_slots); return NULL; }
    return PyBool_FromLong(bad & 1);  /* without `masked`: whether a row had a NaN cell (the sums are then unfinished) */
}

static PyObject *py_split_missing(PyObject *self, PyObject *args) {
    unsigned long long x, out;
    long long rows, cols, row_stride, out_stride;
    const char *name = NULL;
    int i = 0, threads = 1;
    if (!PyArg_ParseTuple(args, "KLLLKL|zi", &x, &rows, &cols, &row_stride, &out, &out_stride, &name, &threads)) return NULL;
    if (threads < 1) { PyErr_Format(PyExc_ValueError, "split_missing: threads must be at least 1, got %d", threads); return NULL; }
    while (name && i < n_sums && strcmp(name, sums_names[i])) i++;
    if (i == n_sums) { PyErr_Format(PyExc_ValueError, "split_missing: no version %s on this processor", name); return NULL; }
    if (rows < 0 || cols < 1 || (rows > 1 && (row_stride < cols || out_stride < 2 * cols)) || (rows > 0 && (!x || !out))) {
        PyErr_Format(PyExc_ValueError, "split_missing: needs rows >= 0, cols >= 1, row_stride >= cols, out_stride >= 2 cols and "
                     "non-null buffers, got rows=%lld cols=%lld row_stride=%lld out_stride=%lld", rows, cols, row_stride, out_stride);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    int team = team_size(threads, rows / 2); (void)team;  /* unused without OpenMP; at least two rows a thread */
    #pragma omp parallel num_threads(team) if(team > 1)
    {
        TEAM_SLICE(rows, lo, hi);  /* this thread's rows */
        split_versions[i]((const float *)(uintptr_t)x + lo * row_stride, hi - lo, cols, row_stride, (float *)(uintptr_t)out + lo * out_stride, out_stride);
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_sums_versions(PyObject *self, PyObject *args) { return names_tuple(sums_names, n_sums); }

static PyObject *py_openmp(PyObject *self, PyObject *args) {
#ifdef _OPENMP
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"openmp", py_openmp, METH_NOARGS, "Whether this module was built with OpenMP: whether `threads` shares a call's work (else it runs on one thread)."},
    {"split_missing", py_split_missing, METH_VARARGS,
     "split_missing(x, rows, cols, row_stride, out, out_stride, version=None, threads=1): out[r] = [x0 | m] for each float32 row of x: the row "
     "with NaN cells as 0, then 1.0 where a cell is present and 0 where it is NaN. `version`: one of sums_versions(); `threads`: rows shared by up to that many threads, two or more rows each."},
    {"sums_versions", py_sums_versions, METH_NOARGS, "Names of the versions of unit_sums this processor runs, the one used by default first."},
    {"unit_sums", py_unit_sums, METH_VARARGS,
     "unit_sums(x, rows, cols, row_stride, slot, n_slots, masked, count, sq, sums, version=None, threads=1): adds each float32 row of x (rows row_stride "
     "floats apart) into the int64 slot[r] of: int64 count[n_slots], float32 sq[n_slots] (squared norms) and sums[n_slots, cols]; "
     "with masked (rows with NaN cells): float32 sq[n_slots] (sum of s * ||x0||^2) and sums[n_slots, 5 * cols] = [x0 | m | x0^2 | s x0 | s m], "
     "s = cols / present cells (count unused). `version`: one of sums_versions(), default (None) the first; `threads`: slots shared by "
     "up to that many threads (one or more slots each), each reading every row and adding those of its own slots (the same sums for any number of threads)."},
    {"masked_first_lowest_rows", py_masked_first_lowest_rows, METH_VARARGS,
     "masked_first_lowest_rows(scores, rows, cols, row_stride, x, feats, x_stride, minus_sq, sq, t_stride, bias, out, threads=1): the masked search's "
     "pick, on AVX-512 processors. scores: float32 [rows, cols] = x0 @ (-2 w).T, x0 the float32 rows x [rows, feats] (NaN where missing) "
     "with NaN as 0; minus_sq and sq: float32 [feats, cols] with rows t_stride floats apart, -(w*w).T and (w*w).T; bias: float32 [cols], ||w||^2. out[r] (int64) = "
     "argmin_c scores[r, c] + (the squares of w_c over the present cells of x[r]), -1 for a row with none. `threads`: rows shared by up "
     "to that many threads, two or more rows each."},
    {"kernels", py_kernels, METH_NOARGS, "Names of the kernels this processor runs, the one used by default first."},
    {"first_lowest_rows", py_first_lowest_rows, METH_VARARGS,
     "first_lowest_rows(scores, rows, cols, row_stride, bias, out, kernel=None, threads=1): addresses of a float32 [rows, cols] table with rows "
     "row_stride floats apart, of float32 [cols] biases and of int64 [rows] results; out[r] = argmin_c scores[r, c] + bias[c]. `kernel`: one of kernels(), default the first; `threads`: rows shared by up to that many threads, two or more rows each."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "The compiled row minimum of fastsom's CPU search and the per-unit sums of its update.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__native(void) {
    find_kernels();
    return PyModule_Create(&module);
}
