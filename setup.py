"""Build script for fastem's compiled kernels.

Every ``fastem/_kernels/*.pyx`` becomes an extension module. The flags are
chosen at build time for the compiler that setuptools will use (GCC, clang /
Apple clang, MSVC), each one tried on a tiny probe first:

- optimisation: ``-O3 -fno-math-errno`` (GCC, clang) or ``/O2`` (MSVC);
- OpenMP: ``-fopenmp`` (GCC, clang), ``-Xpreprocessor -fopenmp -lomp``
  (Apple clang with libomp), ``/openmp`` (MSVC). When none works the same
  sources compile serially (``prange`` degrades to ``range``);
- no floating-point contraction: ``-ffp-contract=off`` (GCC, clang; MSVC
  does not contract by default), so that a multiply-add rounds twice in
  every build and the SIMD variants below give the baseline's results bit
  for bit;
- SIMD variants, x86-64 only (GCC, clang): every kernel module but
  ``_openmp`` is built once more for each level of ``SIMD_VARIANTS``
  (``-march=x86-64-v3``: AVX2 + FMA; ``-march=x86-64-v4``: AVX-512), and
  ``fastem._kernels.load_kernels`` imports the best one the CPU runs
  (``FASTEM_SIMD`` forces one). One dispatch scheme for every kernel.

``fastem.show_config()`` reports what was chosen.

Environment variables
---------------------
FASTEM_DEBUG=1
    Debug build: bounds checks, wraparound checks and initialisation checks on,
    ``-O1 -g``. The test-suite can run under it (see README).
FASTEM_NO_OPENMP=1
    Build without OpenMP even when the compiler supports it.
FASTEM_NO_SIMD_VARIANTS=1
    Build no SIMD variant: one build of every kernel, for the baseline ISA.
FASTEM_PORTABLE_C=1
    Compile the C helpers (``fastem/_kernels/csrc/``) as MSVC does: every
    vector kernel (GCC/clang generic vectors, AVX2 intrinsics) replaced by
    its plain C reference, prefetch by ``_mm_prefetch`` (see
    ``csrc/fe_platform.h``). Same results bit for bit; for testing the MSVC
    code path with GCC or clang.
LIBOMP_PREFIX=/path
    clang / Apple clang: where libomp's ``include/`` and ``lib/`` are
    (default on macOS: ``brew --prefix libomp`` when Homebrew is there).
FASTEM_BUILD_JOBS=N
    Parallel Cython jobs (default: the number of CPUs).
"""
import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError


def _truthy(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _truthy("FASTEM_DEBUG")
NO_OPENMP = _truthy("FASTEM_NO_OPENMP")
NO_SIMD_VARIANTS = _truthy("FASTEM_NO_SIMD_VARIANTS")
PORTABLE_C = _truthy("FASTEM_PORTABLE_C")

here = os.path.dirname(os.path.abspath(__file__))
kernel_dir = os.path.join(here, "fastem", "_kernels")
# the plain C helpers every kernel module includes (a change rebuilds all)
c_helpers = sorted(glob.glob(os.path.join(kernel_dir, "csrc", "*.h")))

# Every kernel module (but SCALAR_MODULES) is also compiled for each of these
# x86-64 levels and the best one the CPU runs is chosen at import time
# (fastem/_kernels/__init__.py, which lists the same levels); the baseline
# build stays for every other CPU, so one wheel runs everywhere.
SCALAR_MODULES = ("_openmp",)
SIMD_VARIANTS = {"x86_64_v3": ["-march=x86-64-v3"], "x86_64_v4": ["-march=x86-64-v4"]}

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

# Probe programs: each one compiles (and links) only where the answer is yes.
PROBE_CLANG = "#ifndef __clang__\n#error not clang\n#endif\nint fastem_probe(void) { return 0; }\n"
PROBE_X86_64 = ("#if !defined(__x86_64__) && !defined(_M_X64)\n#error not x86-64\n#endif\n"
                "int fastem_probe(void) { return 0; }\n")
PROBE_EMPTY = "int fastem_probe(void) { return 0; }\n"
PROBE_OPENMP = (
    "#include <omp.h>\n"
    "int fastem_probe(void) { int n = 0;\n"
    "#pragma omp parallel reduction(+:n)\n"
    "n += 1;\n"
    "return n + omp_get_max_threads(); }\n"
)


@contextlib.contextmanager
def _quiet():
    """Silence the compiler's own output (a failed probe is an answer, not an error)."""
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as devnull:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(devnull.fileno(), 1), os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])


def _libomp_prefix():
    """Where libomp lives for clang: $LIBOMP_PREFIX, else Homebrew's on macOS."""
    prefix = os.environ.get("LIBOMP_PREFIX")
    if not prefix and sys.platform == "darwin" and shutil.which("brew"):
        result = subprocess.run(["brew", "--prefix", "libomp"], capture_output=True, text=True)
        prefix = result.stdout.strip() if result.returncode == 0 else None
    return prefix if prefix and os.path.isdir(prefix) else None


class BuildExt(build_ext):
    """build_ext that cythonizes, then picks the flags for the compiler in use."""

    def finalize_options(self):
        super().finalize_options()
        # compile the C of every module and SIMD variant in parallel (pip
        # passes no -j): FASTEM_BUILD_JOBS, as for cythonize, else all cores
        if not self.parallel:
            self.parallel = int(os.environ.get("FASTEM_BUILD_JOBS", os.cpu_count() or 1))

    def build_extensions(self):
        # .pyx -> .c (setuptools keeps its own bookkeeping on these objects,
        # so only their sources change)
        c_sources = {ext.name: ext.sources for ext in _cythonize(self.extensions)}
        for ext in self.extensions:
            ext.sources = c_sources[ext.name]
        config = self._configure()
        print("fastem build: " + json.dumps(config["summary"]), flush=True)
        self._apply(config)
        super().build_extensions()

    # -- probing -----------------------------------------------------------
    def _builds(self, source, compile_args=(), link_args=(), include_dirs=(), library_dirs=()):
        """True when ``source`` compiles and links into a shared library with these flags."""
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(source)
            try:
                with _quiet():
                    objects = self.compiler.compile([src], output_dir=tmp,
                                                    include_dirs=list(include_dirs),
                                                    extra_postargs=list(compile_args))
                    self.compiler.link_shared_object(
                        objects, os.path.join(tmp, "probe" + self.compiler.shared_lib_extension),
                        library_dirs=list(library_dirs), extra_postargs=list(link_args))
            except CCompilerError:
                return False
            return True

    def _family(self):
        if self.compiler.compiler_type == "msvc":
            return "msvc"
        return "clang" if self._builds(PROBE_CLANG) else "gcc"

    def _openmp(self, family):
        """(compile args, link args, include dirs, library dirs) for OpenMP, or None."""
        if family == "msvc":
            candidates = [(["/openmp"], [], [], [])]
        elif family == "gcc":
            candidates = [(["-fopenmp"], ["-fopenmp"], [], [])]
        else:  # clang: LLVM's driver takes -fopenmp, Apple's needs libomp spelled out
            prefix = _libomp_prefix()
            incs = [os.path.join(prefix, "include")] if prefix else []
            libs = [os.path.join(prefix, "lib")] if prefix else []
            candidates = [(["-fopenmp"], ["-fopenmp"], incs, libs),
                          (["-Xpreprocessor", "-fopenmp"], ["-lomp"], incs, libs)]
        for candidate in candidates:
            if self._builds(PROBE_OPENMP, *candidate):
                return candidate
        return None

    def _configure(self):
        family = self._family()
        if family == "msvc":
            # /fp:precise (MSVC's default, spelled out): no contraction, no
            # reassociation, as -ffp-contract=off without -ffast-math below
            compile_args = (["/Od", "/Zi"] if DEBUG else ["/O2"]) + ["/fp:precise"]
        else:
            # -fno-math-errno lets the compiler vectorise min/max and sqrt
            # without errno bookkeeping; no -ffast-math: reductions must stay
            # in the order the source writes them.
            # -ffp-contract=off: a * b + c is rounded twice in every build,
            # never fused into an FMA by the x86-64-v3/v4 variants only.
            compile_args = ((["-O1", "-g"] if DEBUG else ["-O3"])
                            + ["-fno-math-errno", "-ffp-contract=off"])
        link_args, include_dirs, library_dirs = [], [], []

        openmp = None if NO_OPENMP else self._openmp(family)
        if openmp:
            compile_args += openmp[0]
            link_args += openmp[1]
            include_dirs += openmp[2]
            library_dirs += openmp[3]

        x86_64 = self._builds(PROBE_X86_64)
        variants = {}
        if x86_64 and family != "msvc" and not NO_SIMD_VARIANTS:
            variants = {name: flags for name, flags in SIMD_VARIANTS.items()
                        if self._builds(PROBE_EMPTY, flags)}

        macros = [("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION"),
                  ("FASTEM_DEBUG_BUILD", "1" if DEBUG else "0"),
                  ("FASTEM_PORTABLE_C", "1" if PORTABLE_C else "0")]
        return {
            "compile_args": compile_args,
            "link_args": link_args,
            "include_dirs": include_dirs,
            "library_dirs": library_dirs,
            "macros": macros,
            "variants": variants,
            "summary": {
                "compiler": family,
                "openmp": {"compile": openmp[0], "link": openmp[1]} if openmp else None,
                "compile_args": compile_args,
                "simd_variants": sorted(variants),
                "debug": DEBUG,
                "portable_c": PORTABLE_C,
            },
        }

    # -- applying ----------------------------------------------------------
    def _apply(self, config):
        """Set every extension's flags; drop the SIMD variants this compiler cannot build."""
        # The flags are a dependency of every extension: a build with other
        # flags (debug, no OpenMP) must not reuse modules built with these.
        stamp = os.path.join(self.build_temp, "fastem-build-flags.json")
        text = json.dumps({k: config[k] for k in ("compile_args", "link_args", "macros",
                                                  "include_dirs", "library_dirs")})
        os.makedirs(self.build_temp, exist_ok=True)
        if not os.path.exists(stamp) or open(stamp).read() != text:
            with open(stamp, "w") as f:
                f.write(text)

        kept = []
        for ext in self.extensions:
            variant = VARIANT_OF.get(ext.name)
            if variant is not None and variant not in config["variants"]:
                # not built: nor may an earlier build's module go into the wheel
                stale = self.get_ext_fullpath(ext.name)
                if os.path.exists(stale):
                    os.remove(stale)
                continue
            extra = config["variants"][variant] if variant else []
            ext.extra_compile_args = config["compile_args"] + extra
            ext.extra_link_args = list(config["link_args"])
            ext.include_dirs = [kernel_dir] + config["include_dirs"] + list(ext.include_dirs)
            ext.library_dirs = list(config["library_dirs"])
            ext.define_macros = list(config["macros"])
            ext.depends = list(ext.depends) + c_helpers + [stamp]
            kept.append(ext)
        self.extensions[:] = kept


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


# Every kernel module, plus one module per SIMD variant of each module not in
# SCALAR_MODULES (VARIANT_OF: module name -> variant); BuildExt sets the flags
# and drops the variants the compiler cannot build.
extensions = []
VARIANT_OF = {}
for pyx in sorted(glob.glob(os.path.join("fastem", "_kernels", "*.pyx"))):
    stem = os.path.basename(pyx)[:-4]
    extensions.append(Extension(f"fastem._kernels.{stem}", [pyx]))
    if stem not in SCALAR_MODULES:
        for suffix in SIMD_VARIANTS:
            name = f"fastem._kernels.{stem}_{suffix}"
            extensions.append(Extension(name, [_variant_source(stem, suffix)]))
            VARIANT_OF[name] = suffix

setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
