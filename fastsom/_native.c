/* fastsom._native: the lowest score of each row of the CPU search, as a plain CPython extension.
   Built when the package is installed (setup.py); `fastsom.native` explains it and checks it against argmin.
   No torch or numpy headers: the caller passes the addresses of float32 / int64 buffers it owns. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

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
        for (int k = 1; k < CHAINS; k++) {
            __mmask16 take = _mm512_cmp_ps_mask(best[k], best[0], _CMP_LT_OQ)
                           | (_mm512_cmp_ps_mask(best[k], best[0], _CMP_EQ_OQ) & _mm512_cmplt_epi32_mask(where[k], where[0]));
            best[0] = _mm512_mask_mov_ps(best[0], take, best[k]);
            where[0] = _mm512_mask_mov_epi32(where[0], take, where[k]);
        }
        float lowest = _mm512_reduce_min_ps(best[0]);
        __mmask16 tied = _mm512_cmp_ps_mask(best[0], _mm512_set1_ps(lowest), _CMP_EQ_OQ);
        int64_t at = tied ? _mm512_mask_reduce_min_epi32(tied, where[0]) : 0;  /* none tied: the row is all NaN */
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
#endif

/* The kernels this processor runs, widest first; none on other processors: fastsom then uses torch's steps. */
static kernel_fn kernels[2];
static const char *kernel_names[2];
static int n_kernels = 0;

static void find_kernels(void) {
#ifdef HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) { kernels[n_kernels] = first_lowest_avx512; kernel_names[n_kernels++] = "avx512"; }
    if (__builtin_cpu_supports("avx2")) { kernels[n_kernels] = first_lowest_avx2; kernel_names[n_kernels++] = "avx2"; }
#endif
}

static PyObject *py_first_lowest_rows(PyObject *self, PyObject *args) {
    unsigned long long scores, bias, out;
    long long rows, cols, row_stride;
    const char *name = NULL;
    if (!PyArg_ParseTuple(args, "KLLLKK|s", &scores, &rows, &cols, &row_stride, &bias, &out, &name)) return NULL;
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
    kernel((const float *)(uintptr_t)scores, rows, cols, row_stride, (const float *)(uintptr_t)bias,
                      (int64_t *)(uintptr_t)out);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_kernels(PyObject *self, PyObject *args) {
    PyObject *names = PyTuple_New(n_kernels);
    for (int i = 0; names && i < n_kernels; i++) PyTuple_SET_ITEM(names, i, PyUnicode_FromString(kernel_names[i]));
    return names;
}

static PyMethodDef methods[] = {
    {"kernels", py_kernels, METH_NOARGS, "Names of the kernels this processor runs, the one used by default first."},
    {"first_lowest_rows", py_first_lowest_rows, METH_VARARGS,
     "first_lowest_rows(scores, rows, cols, row_stride, bias, out, kernel=None): addresses of a float32 [rows, cols] table with rows "
     "row_stride floats apart, of float32 [cols] biases and of int64 [rows] results; out[r] = argmin_c scores[r, c] + bias[c]. `kernel`: one of kernels(), default the first."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "The compiled row minimum of fastsom's CPU search.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__native(void) {
    find_kernels();
    return PyModule_Create(&module);
}
