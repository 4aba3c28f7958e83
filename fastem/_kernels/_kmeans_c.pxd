# The C helpers of the K-means kernels (csrc/fe_kmeans.h, fe_lowd.h, and
# fe_moments.h: the column moments behind the frame shift and tolerance),
# declared once for every module that calls them: _kmeans_common.pxd, _lloyd,
# _bounded, _kmeanspp, _stats, and the test hooks of _csrc_check (each vector
# helper beside its fe_<name>_ref_f32 / _f64 reference). The C header says
# what each computes.
from libc.stdint cimport int8_t, int32_t, uint8_t, uint16_t

cdef extern from "csrc/fe_kmeans.h" nogil:
    float fe_sqdist_f32(const float *a, const float *b, Py_ssize_t n)
    float fe_sqdist_ref_f32(const float *a, const float *b, Py_ssize_t n)
    double fe_sqdist_f64(const double *a, const double *b, Py_ssize_t n)
    double fe_sqdist_ref_f64(const double *a, const double *b, Py_ssize_t n)
    float fe_sqnorm_f32(const float *a, Py_ssize_t n)
    double fe_sqnorm_f64(const double *a, Py_ssize_t n)

    # nearest (and second nearest) centre of one row
    Py_ssize_t fe_row_argmin_f32(const float *dist, const float *csq, Py_ssize_t k,
                                 float *best)
    Py_ssize_t fe_row_argmin_ref_f32(const float *dist, const float *csq, Py_ssize_t k,
                                     float *best)
    Py_ssize_t fe_row_argmin_f64(const double *dist, const double *csq, Py_ssize_t k,
                                 double *best)
    Py_ssize_t fe_row_argmin_ref_f64(const double *dist, const double *csq, Py_ssize_t k,
                                     double *best)
    Py_ssize_t fe_row_argmin2_f32(const float *dist, const float *csq, Py_ssize_t k,
                                  float *best, float *second)
    Py_ssize_t fe_row_argmin2_ref_f32(const float *dist, const float *csq, Py_ssize_t k,
                                      float *best, float *second)
    Py_ssize_t fe_row_argmin2_f64(const double *dist, const double *csq, Py_ssize_t k,
                                  double *best, double *second)

    # the k-means++ candidate pass over rows, the improvement-mask bit of
    # candidate l, and the software prefetch of gathered rows
    # (FE_PREFETCH_ROWS ahead)
    void fe_kpp_rows_f32(const float *x, Py_ssize_t d, const int32_t *todo,
                         Py_ssize_t n_todo, const float *closest, const float *sw,
                         const float *cand, Py_ssize_t L, uint16_t *improves,
                         double *sums)
    void fe_kpp_rows_ref_f32(const float *x, Py_ssize_t d, const int32_t *todo,
                             Py_ssize_t n_todo, const float *closest, const float *sw,
                             const float *cand, Py_ssize_t L, uint16_t *improves,
                             double *sums)
    void fe_kpp_rows_f64(const double *x, Py_ssize_t d, const int32_t *todo,
                         Py_ssize_t n_todo, const float *closest, const double *sw,
                         const double *cand, Py_ssize_t L, uint16_t *improves,
                         double *sums, double *pots, double scale)
    void fe_kpp_rows_ref_f64(const double *x, Py_ssize_t d, const int32_t *todo,
                             Py_ssize_t n_todo, const float *closest, const double *sw,
                             const double *cand, Py_ssize_t L, uint16_t *improves,
                             double *sums, double *pots, double scale)
    # the quantised lower bound of the candidate pass (codes padded to a
    # multiple of FE_KPP_QBLOCK bytes, candidates to a multiple of 8 rows)
    enum: FE_KPP_QBLOCK
    void fe_kpp_qbound(const uint8_t *codes, Py_ssize_t dp, const int32_t *cnorm,
                       const float *cerr, const int32_t *todo, Py_ssize_t n_todo,
                       const float *closest, double cur_factor, const int8_t *qcodes,
                       const int32_t *qnorm, const float *qerr, Py_ssize_t L,
                       float inv_step, uint8_t *maybe)
    void fe_kpp_qbound_ref(const uint8_t *codes, Py_ssize_t dp, const int32_t *cnorm,
                           const float *cerr, const int32_t *todo, Py_ssize_t n_todo,
                           const float *closest, double cur_factor, const int8_t *qcodes,
                           const int32_t *qnorm, const float *qerr, Py_ssize_t L,
                           float inv_step, uint8_t *maybe)
    # a bounded pass's exact distance from a row to its own centre
    double fe_frame_sqdist_f32(const float *x, const float *shift, const float *c,
                               Py_ssize_t d)
    double fe_frame_sqdist_ref_f32(const float *x, const float *shift, const float *c,
                                   Py_ssize_t d)
    double fe_frame_sqdist_f64(const double *x, const double *shift, const double *c,
                               Py_ssize_t d)
    double fe_frame_sqdist_ref_f64(const double *x, const double *shift,
                                   const double *c, Py_ssize_t d)
    # the bounds of the rows a bounded pass searched, from the expansion
    void fe_expansion_bounds_f32(float *best, float *second, const double *xsq,
                                 Py_ssize_t n, double err_scale, double csq_max)
    void fe_expansion_bounds_f64(double *best, double *second, const double *xsq,
                                 Py_ssize_t n, double err_scale, double csq_max)
    # step 1 of a bounded pass with one group: bounds moved, failing rows listed
    Py_ssize_t fe_moved_bounds_f32(const int32_t *labels, float *upper, float *lower,
                                   Py_ssize_t lcols, Py_ssize_t nb, Py_ssize_t k,
                                   const double *drift, const double *half_sep, double mx,
                                   double second, Py_ssize_t arg, int32_t *rows,
                                   double *m_out)
    Py_ssize_t fe_moved_bounds_f64(const int32_t *labels, double *upper, double *lower,
                                   Py_ssize_t lcols, Py_ssize_t nb, Py_ssize_t k,
                                   const double *drift, const double *half_sep, double mx,
                                   double second, Py_ssize_t arg, int32_t *rows,
                                   double *m_out)
    uint16_t fe_cand_bit(Py_ssize_t l)
    void fe_prefetch_row(const void *row, Py_ssize_t nbytes)
    enum: FE_PREFETCH_ROWS

cdef extern from "csrc/fe_lowd.h" nogil:
    # the dense Lloyd pass over one chunk at low D (d <= FE_LOWD_MAX_D):
    # distances from exact differences, no GEMM, no distance block
    enum: FE_LOWD_MAX_D
    void fe_lowd_chunk_f32(const float *x, Py_ssize_t nb, Py_ssize_t d, Py_ssize_t k,
                           const float *sw, const float *shift, const float *centres,
                           int with_norms, int32_t *labels, double *sums, double *wsum,
                           double *tail)
    void fe_lowd_chunk_ref_f32(const float *x, Py_ssize_t nb, Py_ssize_t d, Py_ssize_t k,
                               const float *sw, const float *shift, const float *centres,
                               int with_norms, int32_t *labels, double *sums,
                               double *wsum, double *tail)
    void fe_lowd_chunk_f64(const double *x, Py_ssize_t nb, Py_ssize_t d, Py_ssize_t k,
                           const double *sw, const double *shift, const double *centres,
                           int with_norms, int32_t *labels, double *sums, double *wsum,
                           double *tail)
    void fe_lowd_chunk_ref_f64(const double *x, Py_ssize_t nb, Py_ssize_t d,
                               Py_ssize_t k, const double *sw, const double *shift,
                               const double *centres, int with_norms, int32_t *labels,
                               double *sums, double *wsum, double *tail)

cdef extern from "csrc/fe_moments.h" nogil:
    # column moments of nb rows about ref, added into s0, s1, s2 (float64)
    void fe_moments_rows_f32(const float *x, Py_ssize_t nb, Py_ssize_t d, const float *sw,
                             const double *ref, double *s0, double *s1, double *s2)
    void fe_moments_rows_ref_f32(const float *x, Py_ssize_t nb, Py_ssize_t d,
                                 const float *sw, const double *ref, double *s0,
                                 double *s1, double *s2)
    void fe_moments_rows_f64(const double *x, Py_ssize_t nb, Py_ssize_t d,
                             const double *sw, const double *ref, double *s0,
                             double *s1, double *s2)
    void fe_moments_rows_ref_f64(const double *x, Py_ssize_t nb, Py_ssize_t d,
                                 const double *sw, const double *ref, double *s0,
                                 double *s1, double *s2)

cdef extern from "csrc/fe_tiles.h" nogil:
    # the dense passes' nearest centres by register-blocked tiles (every
    # build; the baseline x86-64 one only on CPUs with FMA: fe_tiles_enabled)
    enum: FE_TILE_W_F32
    enum: FE_TILE_W_F64
    int fe_tiles_enabled()
    Py_ssize_t fe_tiles_per_block(Py_ssize_t nt, Py_ssize_t d, Py_ssize_t w,
                                  Py_ssize_t itemsize)
    void fe_pack_tiles_f32(const float *centres, const float *csq, Py_ssize_t k,
                           Py_ssize_t d, float *tiles, float *tcsq)
    void fe_pack_tiles_f64(const double *centres, const double *csq, Py_ssize_t k,
                           Py_ssize_t d, double *tiles, double *tcsq)
    void fe_tiles_chunk_f32(const float *x, const int32_t *index, Py_ssize_t nb,
                            Py_ssize_t d, const float *shift, const float *tiles,
                            const float *tcsq, Py_ssize_t nt, Py_ssize_t per_block,
                            float *state, int32_t *labels, float *best, float *second,
                            Py_ssize_t gt, Py_ssize_t ng, const unsigned char *need,
                            float *gmin)
    void fe_tiles_chunk_ref_f32(const float *x, const int32_t *index, Py_ssize_t nb,
                                Py_ssize_t d, const float *shift, const float *tiles,
                                const float *tcsq, Py_ssize_t nt, Py_ssize_t per_block,
                                float *state, int32_t *labels, float *best, float *second,
                                Py_ssize_t gt, Py_ssize_t ng, const unsigned char *need,
                                float *gmin)
    void fe_tiles_chunk_f64(const double *x, const int32_t *index, Py_ssize_t nb,
                            Py_ssize_t d, const double *shift, const double *tiles,
                            const double *tcsq, Py_ssize_t nt, Py_ssize_t per_block,
                            double *state, int32_t *labels, double *best, double *second,
                            Py_ssize_t gt, Py_ssize_t ng, const unsigned char *need,
                            double *gmin)
    void fe_tiles_chunk_ref_f64(const double *x, const int32_t *index, Py_ssize_t nb,
                                Py_ssize_t d, const double *shift, const double *tiles,
                                const double *tcsq, Py_ssize_t nt, Py_ssize_t per_block,
                                double *state, int32_t *labels, double *best,
                                double *second, Py_ssize_t gt, Py_ssize_t ng,
                                const unsigned char *need, double *gmin)
    void fe_tile_values_f32(const float *x, const int32_t *index, Py_ssize_t n,
                            Py_ssize_t d, const float *shift, const float *centres,
                            const float *csq, const int32_t *near, float *out)
    void fe_tile_values_f64(const double *x, const int32_t *index, Py_ssize_t n,
                            Py_ssize_t d, const double *shift, const double *centres,
                            const double *csq, const int32_t *near, double *out)
