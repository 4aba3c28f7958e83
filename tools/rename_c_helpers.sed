# Renames of the C helpers moved to fastem/_kernels/csrc/ (issue 12): one
# prefix (fe_), a _f32/_f64 suffix on every function of float data.
# Reapply to a .pyx/.pxd with:  sed -E -i -f tools/rename_c_helpers.sed FILE
# headers
s#"_simd\.h"#"csrc/fe_kmeans.h"#g
s#"_gmm_simd\.h"#"csrc/fe_gmm.h"#g
s#"_openmp_shim\.h"#"csrc/fe_openmp.h"#g
s#\b_gmm_simd\.h\b#csrc/fe_gmm.h#g
s#(^|[^_a-z/])_simd\.h\b#\1csrc/fe_kmeans.h#g
# K-means helpers: fastem_ -> fe_
s/\bfastem_(sqdist|sqnorm|row_argmin2|row_argmin|kpp_rows|lanes_sum)_(f32|f64)\b/fe_\1_\2/g
s/\bfastem_(sqdist|sqnorm|row_argmin2|row_argmin|kpp_rows)_(\*|\b)/fe_\1_\2/g
s/\bfastem_cand_bit\b/fe_cand_bit/g
s/\bfastem_prefetch_row\b/fe_prefetch_row/g
s/\bFASTEM_PREFETCH_ROWS\b/FE_PREFETCH_ROWS/g
# mixture helpers: _d -> _f64, _f -> _f32; the unsuffixed float64 ones
# (calls and declarations only: "name(")
s/\bfe_lse_cols\(/fe_lse_cols_f64(/g
s/\bfe_argmax_cols\(/fe_argmax_cols_f64(/g
s/\bfe_exp_neg\(/fe_exp_neg_f64(/g
s/\bfe_expf_neg\(/fe_exp_neg_f32(/g
s/\bfe_log_ge1\(/fe_log_ge1_f64(/g
s/\bfe_logf_ge1\(/fe_log_ge1_f32(/g
s/\b(fe_[A-Za-z0-9_]*[A-Za-z0-9])_d\b/\1_f64/g
s/\b(fe_[A-Za-z0-9_]*[A-Za-z0-9])_f\b/\1_f32/g
