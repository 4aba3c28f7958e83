/* minimal stand-in for the Windows CRT's math.h (syntax check only) */
#pragma once
#define INFINITY ((float)(1e300 * 1e300))
double sqrt(double); double log(double); double exp(double); float fminf(float, float);
