# The C helpers of the Gaussian-mixture kernels (csrc/fe_gmm.h, which includes
# the scalar references of csrc/fe_gmm_ref.h), declared once for every module
# that calls them: _gaussian (the vector kernels) and the test hooks of
# _csrc_check (each vector kernel beside its fe_<name>_ref_f32 / _f64
# reference). The C headers say what each helper computes.
cdef extern from "csrc/fe_gmm.h" nogil:
    # -- small helpers -----------------------------------------------------
    double fe_wsum_f64(const double *v, const double *w, Py_ssize_t nb)
    double fe_wsum_f32(const float *v, const float *w, Py_ssize_t nb)
    int fe_estep_chol_width(int D)
    Py_ssize_t fe_stats_tied_work(Py_ssize_t K, Py_ssize_t D)
    # 1 where _gaussian runs fe_stats_full16_f32 (AVX-512 builds), else 0
    enum: FE_STATS_FULL16
    void fe_pad_rows_f64(const double *x, Py_ssize_t n, int D, int Dp, double *xp)
    void fe_pad_rows_f32(const float *x, Py_ssize_t n, int D, int Dp, float *xp)
    void fe_center_T_f64(const double *x, Py_ssize_t nb, int D, const double *c,
                         double *xcT)
    void fe_center_T_f32(const float *x, Py_ssize_t nb, int D, const float *c,
                         float *xcT)
    void fe_center_T_ref_f64(const double *x, Py_ssize_t nb, int D, const double *c,
                             double *xcT)
    void fe_center_T_ref_f32(const float *x, Py_ssize_t nb, int D, const float *c,
                             float *xcT)
    void fe_features_T_f64(const double *xcT, Py_ssize_t nb, int D, int kind, int quad,
                           double *FT)
    void fe_features_T_f32(const float *xcT, Py_ssize_t nb, int D, int kind, int quad,
                           double *FT)

    # -- E-step log-densities ----------------------------------------------
    void fe_estep_chol_f64(const double *xcT, Py_ssize_t nb, int D, int K,
                           int lower, const double *Lp, const double *cp,
                           const double *const_k, double *lp)
    void fe_estep_chol_ref_f64(const double *xcT, Py_ssize_t nb, int D, int K,
                               int lower, const double *Lp, const double *cp,
                               const double *const_k, double *lp)
    void fe_estep_chol_f32(const float *xcT, Py_ssize_t nb, int D, int K,
                           int lower, const float *Lp, const float *cp,
                           const double *const_k, float *lp)
    void fe_estep_chol_ref_f32(const float *xcT, Py_ssize_t nb, int D, int K,
                               int lower, const float *Lp, const float *cp,
                               const double *const_k, float *lp)
    void fe_tied_project_f64(const double *xcT, Py_ssize_t nb, int D, int lower,
                             const double *L, double *yT)
    void fe_tied_project_ref_f64(const double *xcT, Py_ssize_t nb, int D, int lower,
                                 const double *L, double *yT)
    void fe_tied_project_f32(const float *xcT, Py_ssize_t nb, int D, int lower,
                             const float *L, float *yT)
    void fe_tied_project_ref_f32(const float *xcT, Py_ssize_t nb, int D, int lower,
                                 const float *L, float *yT)
    void fe_estep_diag_f64(const double *xcT, Py_ssize_t nb, int D, int K,
                           const double *U, const double *V, const double *const_k,
                           double *lp, double *R)
    void fe_estep_diag_ref_f64(const double *xcT, Py_ssize_t nb, int D, int K,
                               const double *U, const double *V, const double *const_k,
                               double *lp, double *R)
    void fe_estep_diag_f32(const float *xcT, Py_ssize_t nb, int D, int K,
                           const float *U, const float *V, const double *const_k,
                           float *lp, float *R)
    void fe_estep_diag_ref_f32(const float *xcT, Py_ssize_t nb, int D, int K,
                               const float *U, const float *V, const double *const_k,
                               float *lp, float *R)
    void fe_logprob_diag_f64(const double *xcT, Py_ssize_t nb, int K, int D,
                             int spherical, const double *mu, const double *p2,
                             const double *const_k, double *acc, double *lpT)
    void fe_logprob_diag_f32(const float *xcT, Py_ssize_t nb, int K, int D,
                             int spherical, const float *mu, const float *p2,
                             const double *const_k, float *acc, float *lpT)
    void fe_logprob_diag_ref_f64(const double *xcT, Py_ssize_t nb, int K, int D,
                                 int spherical, const double *mu, const double *p2,
                                 const double *const_k, double *acc, double *lpT)
    void fe_logprob_diag_ref_f32(const float *xcT, Py_ssize_t nb, int K, int D,
                                 int spherical, const float *mu, const float *p2,
                                 const double *const_k, float *acc, float *lpT)
    void fe_logprob_chol_f64(const double *Y, Py_ssize_t nb, int K, int D, int tied,
                             const double *crow, const double *const_k, double *acc,
                             double *lp)
    void fe_logprob_chol_f32(const float *Y, Py_ssize_t nb, int K, int D, int tied,
                             const float *crow, const double *const_k, float *acc,
                             float *lp)

    # -- row normalisation -------------------------------------------------
    void fe_lse_cols_f64(double *lpT, Py_ssize_t nb, int K, double *m, double *s,
                         double *lse)
    void fe_lse_cols_f32(float *lpT, Py_ssize_t nb, int K, float *m, float *s,
                         float *lse)
    void fe_argmax_cols_f64(const double *lpT, Py_ssize_t nb, int K, double *m,
                            long long *labels)
    void fe_argmax_cols_f32(const float *lpT, Py_ssize_t nb, int K, float *m,
                            long long *labels)

    # -- statistics --------------------------------------------------------
    void fe_stats_full_f64(const double *xp, Py_ssize_t nb, int D, int Dp, int K,
                           const double *mp, const double *gT, double *Z, double *GZ,
                           double *slot, Py_ssize_t P)
    void fe_stats_full_ref_f64(const double *xp, Py_ssize_t nb, int D, int Dp, int K,
                               const double *mp, const double *gT, double *Z,
                               double *GZ, double *slot, Py_ssize_t P)
    void fe_stats_full_f32(const float *xp, Py_ssize_t nb, int D, int Dp, int K,
                           const float *mp, const float *gT, float *Z, float *GZ,
                           double *slot, Py_ssize_t P)
    void fe_stats_full_ref_f32(const float *xp, Py_ssize_t nb, int D, int Dp, int K,
                               const float *mp, const float *gT, float *Z, float *GZ,
                               double *slot, Py_ssize_t P)
    void fe_stats_full16_f32(const float *xp, Py_ssize_t nb, int D, int K,
                             const float *mp, const float *gT, float *GZ,
                             double *slot, Py_ssize_t P)
    void fe_stats_full16_ref_f32(const float *xp, Py_ssize_t nb, int D, int K,
                                 const float *mp, const float *gT, float *GZ,
                                 double *slot, Py_ssize_t P)
    void fe_stats_diag_T_f64(const double *xT, Py_ssize_t nb, int D, int K,
                             int spherical, const double *mu, const double *gT,
                             double *slot, Py_ssize_t P)
    void fe_stats_diag_T_ref_f64(const double *xT, Py_ssize_t nb, int D, int K,
                                 int spherical, const double *mu, const double *gT,
                                 double *slot, Py_ssize_t P)
    void fe_stats_diag_f32(const float *xp, Py_ssize_t nb, int D, int Dp, int K,
                           int spherical, const float *mp, const float *gT,
                           double *slot, Py_ssize_t P)
    void fe_stats_diag_ref_f32(const float *xp, Py_ssize_t nb, int D, int Dp, int K,
                               int spherical, const float *mp, const float *gT,
                               double *slot, Py_ssize_t P)
    void fe_stats_sph_f32(const float *xcT, Py_ssize_t nb, int D, int K,
                          const float *gT, const float *R, const float *mu,
                          const float *centres, const float *shift, double *slot,
                          Py_ssize_t P)
    void fe_stats_sph_ref_f32(const float *xcT, Py_ssize_t nb, int D, int K,
                              const float *gT, const float *R, const float *mu,
                              const float *centres, const float *shift, double *slot,
                              Py_ssize_t P)
    void fe_stats_tied_f32(const float *gT, Py_ssize_t nb, int D, int K,
                           const float *sw, const float *xcT, double *work,
                           double *slot, int accumulate)
    void fe_stats_tied_ref_f32(const float *gT, Py_ssize_t nb, int D, int K,
                               const float *sw, const float *xcT, double *work,
                               double *slot, int accumulate)
    # statistics about the shift as dot products (csrc/fe_gram.h); where
    # fe_gram_enabled() is 0 (baseline build, CPU without FMA) a GEMM instead
    int fe_gram_enabled()
    void fe_gram_f64(const double *G, const double *F, Py_ssize_t nb, int P, int K,
                     double *S, int accumulate)
    void fe_gram_ref_f64(const double *G, const double *F, Py_ssize_t nb, int P, int K,
                         double *S, int accumulate)
    void fe_moments_f64(const double *xcT, Py_ssize_t nb, int D, const double *sw,
                        double *work, double *slot, int accumulate)
    void fe_moments_ref_f64(const double *xcT, Py_ssize_t nb, int D, const double *sw,
                            double *work, double *slot, int accumulate)
    void fe_moments_f32(const float *xcT, Py_ssize_t nb, int D, const float *sw,
                        double *work, double *slot, int accumulate)
    void fe_moments_ref_f32(const float *xcT, Py_ssize_t nb, int D, const float *sw,
                            double *work, double *slot, int accumulate)
