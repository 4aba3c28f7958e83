#!/bin/sh
# The C helpers (fastem/_kernels/csrc/) as MSVC's front end sees them,
# approximated by clang in MSVC mode (no Windows SDK needed: crt/ holds
# minimal stand-ins for the few CRT headers they include). check.c fails to
# compile unless the portable path (FE_PORTABLE) is taken. Syntax only.
set -e
here=$(dirname "$0")
inc="$here/../../fastem/_kernels"
clang --target=x86_64-pc-windows-msvc -fms-compatibility -fms-extensions \
    -fsyntax-only -Wall -isystem "$here/crt" -I "$inc" "$here/check.c"
# MSVC's C compiler is not clang: take the branches meant for cl.exe too
clang --target=x86_64-pc-windows-msvc -fms-compatibility -U__clang__ \
    -Wno-builtin-macro-redefined -fsyntax-only -Wall -isystem "$here/crt" \
    -I "$inc" "$here/check.c"
clang --driver-mode=cl --target=x86_64-pc-windows-msvc /Zs /W4 \
    /imsvc "$here/crt" /I "$inc" "$here/check.c"
echo "MSVC-mode syntax check of csrc/: OK"
