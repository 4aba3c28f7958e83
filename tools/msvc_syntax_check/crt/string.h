/* minimal stand-in for the Windows CRT's string.h (syntax check only) */
#pragma once
#include <stddef.h>
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
