# Fused float/double wrappers of scipy's BLAS (scipy.linalg.cython_blas).
#
# All fastem arrays are C-ordered (row-major); BLAS is column-major. A
# row-major (m x n) matrix is the column-major (n x m) matrix of its
# transpose, so ``gemm_rowmajor`` computes C = alpha * op(A) @ op(B) + beta * C
# on row-major operands by asking BLAS for C^T = op(B)^T @ op(A)^T.
from scipy.linalg.cython_blas cimport sgemm, dgemm, ssyrk, dsyrk

ctypedef fused floating:
    float
    double


cdef inline void gemm_rowmajor(bint trans_a, bint trans_b,
                               int m, int n, int k,
                               floating alpha,
                               const floating *a, int lda,
                               const floating *b, int ldb,
                               floating beta,
                               floating *c, int ldc) noexcept nogil:
    """Row-major C (m x n) = alpha op(A) op(B) + beta C.

    op(A) is m x k, op(B) is k x n; lda, ldb, ldc are row strides (elements).
    """
    # Column-major view: C^T (n x m) = op(B)^T (n x k) @ op(A)^T (k x m).
    # A row-major B that is not transposed is, seen column-major, B^T: so
    # BLAS gets 'N' for it; a transposed one gets 'T'.
    cdef char tb = b'T' if trans_b else b'N'
    cdef char ta = b'T' if trans_a else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda,
              &beta, c, &ldc)


cdef inline void syrk_upper_rowmajor(bint trans, int n, int k,
                                     floating alpha,
                                     const floating *a, int lda,
                                     floating beta,
                                     floating *c, int ldc) noexcept nogil:
    """Row-major C (n x n) = alpha op(A) op(A)^T + beta C, one triangle.

    ``trans=False``: A is n x k and C = A A^T; ``trans=True``: A is k x n and
    C = A^T A. Only the *lower* triangle of the row-major C is written (the
    upper one of its column-major view); symmetrise before use.
    """
    cdef char uplo = b'U'
    # Row-major A (n x k) is column-major A^T (k x n): A A^T is 'T' there.
    cdef char tr = b'N' if trans else b'T'
    if floating is float:
        ssyrk(&uplo, &tr, &n, &k, &alpha, <float*>a, &lda, &beta, c, &ldc)
    else:
        dsyrk(&uplo, &tr, &n, &k, &alpha, <double*>a, &lda, &beta, c, &ldc)
