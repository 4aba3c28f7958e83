"""Build script for fastem's compiled kernels.

Every ``fastem/_kernels/*.pyx`` becomes an extension module. OpenMP is used
when the compiler accepts ``-fopenmp``; otherwise the same sources compile
serially (``prange`` degrades to ``range``) and ``fastem.show_config()``
reports it.

Environment variables
---------------------
FASTEM_DEBUG=1
    Debug build: bounds checks, wraparound checks and initialisation checks on,
    ``-O1 -g``. The test-suite can run under it (see README).
FASTEM_NO_OPENMP=1
    Build without OpenMP even when the compiler supports it.
"""
import os
import platform
import glob
import shutil
import subprocess
import sysconfig
import tempfile

from setuptools import Extension, setup


def _truthy(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _compiler_accepts_openmp():
    """Compile and link a tiny OpenMP program with the configured C compiler."""
    if _truthy("FASTEM_NO_OPENMP"):
        return False
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    if shutil.which(cc[0]) is None:
        return False
    source = (
        "#include <omp.h>\n"
        "int main(void) { int n = 0;\n"
        "#pragma omp parallel reduction(+:n)\n"
        "n += 1; return omp_get_max_threads() > 0 && n > 0 ? 0 : 1; }\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(source)
        try:
            result = subprocess.run(
                cc + ["-fopenmp", src, "-o", os.path.join(tmp, "probe")],
                capture_output=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return result.returncode == 0


def _compiler_accepts(flags):
    """True when the C compiler compiles an empty program with ``flags``."""
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    if shutil.which(cc[0]) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("int main(void) { return 0; }\n")
        try:
            result = subprocess.run(cc + flags + ["-c", src, "-o", os.path.join(tmp, "probe.o")],
                                    capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
        return result.returncode == 0


DEBUG = _truthy("FASTEM_DEBUG")
OPENMP = _compiler_accepts_openmp()

# The K-means kernels are also compiled for x86-64-v3 (AVX2 + FMA) and chosen
# at import time when the CPU has it (fastem/_kernels/__init__.py); the
# baseline build stays for every other x86-64 CPU, so one wheel runs
# everywhere. (The Gaussian kernels dispatch inside their C helpers instead,
# see _gmm_simd.h.)
SIMD_KERNELS = ("_kmeans",)
SIMD_VARIANTS = []
if (platform.machine().lower() in {"x86_64", "amd64"}
        and not _truthy("FASTEM_NO_SIMD_VARIANTS")
        and _compiler_accepts(["-march=x86-64-v3"])):
    SIMD_VARIANTS.append(("x86_64_v3", ["-march=x86-64-v3"]))

compile_args = ["-O1", "-g"] if DEBUG else ["-O3"]
# Let the compiler vectorise min/max and sqrt without errno bookkeeping;
# no -ffast-math: reductions must stay in the order the source writes them.
compile_args += ["-fno-math-errno"]
link_args = []
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")]
if OPENMP:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")
elif _compiler_accepts(["-fopenmp-simd"]):
    # no OpenMP runtime, but '#pragma omp simd' still guides vectorisation
    compile_args.append("-fopenmp-simd")
macros.append(("FASTEM_DEBUG_BUILD", "1" if DEBUG else "0"))

compiler_directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "nonecheck": False,
    "cdivision": True,
    "cpow": True,
    "embedsignature": True,
}

here = os.path.dirname(os.path.abspath(__file__))
kernel_dir = os.path.join(here, "fastem", "_kernels")


def _extension(name, source, extra_flags=()):
    return Extension(
        name,
        [source],
        include_dirs=[kernel_dir],
        define_macros=macros,
        extra_compile_args=compile_args + list(extra_flags),
        extra_link_args=link_args,
    )


def _variant_source(stem, suffix):
    """A one-line .pyx that includes the kernel source, built under another name."""
    variant_dir = os.path.join("build", "simd-variants")
    os.makedirs(variant_dir, exist_ok=True)
    path = os.path.join(variant_dir, f"{stem}_{suffix}.pyx")
    text = f'include "{os.path.join(kernel_dir, stem + ".pyx")}"\n'
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)
    return path


extensions = []
for pyx in sorted(glob.glob(os.path.join("fastem", "_kernels", "*.pyx"))):
    stem = os.path.basename(pyx)[:-4]
    extensions.append(_extension(f"fastem._kernels.{stem}", pyx))
    if stem in SIMD_KERNELS:
        for suffix, flags in SIMD_VARIANTS:
            extensions.append(_extension(f"fastem._kernels.{stem}_{suffix}",
                                         _variant_source(stem, suffix), flags))


def _cythonize(exts):
    from Cython.Build import cythonize

    return cythonize(
        exts,
        compiler_directives=compiler_directives,
        # the build flavour is part of the generated C: keep one per flavour
        build_dir=os.path.join("build", "cython-debug" if DEBUG else "cython-release"),
        quiet=True,
        nthreads=int(os.environ.get("FASTEM_BUILD_JOBS", os.cpu_count() or 1)),
    )


setup(ext_modules=_cythonize(extensions))
