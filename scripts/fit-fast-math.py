#!/usr/bin/env python3
"""Fits the float32 polynomial coefficients of LossKit's FAST elementary functions.

Writes nothing: prints every constant as a hex float literal, the form in which it is copied, unchanged,
into src/main/java/losskit/cpu/FastMath.java and cuda-kernels/include/fast_math.cuh (both languages read
0x1.62e43p-1f as the same float). Needs Python 3 with NumPy and mpmath:

    python3 scripts/fit-fast-math.py

Method, per polynomial c0 + c1 t + ... + cn t^n approximating g on [a, b]:
  1. g is evaluated at 4000 Chebyshev points in 60-digit mpmath (the g below are quotients with removable
     singularities at 0 and heavy cancellation: float64 would not do);
  2. near-minimax float64 coefficients by Lawson's algorithm (iteratively reweighted least squares on the
     variable scaled to [-1, 1]; the weights converge to the equioscillating set of the minimax fit);
  3. the coefficients are rounded to float32 one at a time, lowest degree first, refitting the remaining
     higher ones after each rounding (those matter less and absorb the error of the ones fixed);
  4. the max |g - p| of the final float32 polynomial is evaluated exactly (mpmath) on a 20001-point grid.
The printed error is of the polynomial with exact arithmetic; FastMathTest measures the functions.
The committed literals are this script's output with NumPy 2.4 and mpmath 1.3; another BLAS under NumPy's
least squares may round a coefficient to the neighbouring float (as good a fit). Changing any literal changes
bits: it must change in Java and CUDA together (FastMathEmulatedTest compares them).
"""
import math
import struct

import mpmath as mp
import numpy as np

mp.mp.dps = 60


def f32(x):
    """x rounded to the nearest float32 (through float64: fine for coefficients, which are not ties)."""
    return struct.unpack('<f', struct.pack('<f', float(x)))[0]


def hexf(x):
    """A float32 as a C/Java hex float literal, e.g. 0x1.62e43p-1f."""
    if x == 0:
        return '0x0p+0f'
    s = float(x).hex()  # '-0x1.62e4300000000p-1'
    mant, exp = s.split('p')
    mant = mant.rstrip('0').rstrip('.')
    return f'{mant}p{int(exp)}f'


def lawson(t, g, powers, wt, iters=400):
    """float64 near-minimax coefficients of sum c_j t^powers[j] for the samples g(t), error weighted by wt."""
    scale = max(abs(t[0]), abs(t[-1]))
    u = t / scale
    a = np.stack([u ** p for p in powers], axis=1) * wt[:, None]
    g = g * wt
    w = np.full(len(t), 1.0 / len(t))
    c = None
    for _ in range(iters):
        sw = np.sqrt(w)
        c, *_ = np.linalg.lstsq(a * sw[:, None], g * sw, rcond=None)
        err = np.abs(a @ c - g)
        w = w * err
        s = w.sum()
        if s == 0:
            break
        w /= s
    return [cj / scale ** p for cj, p in zip(c, powers)]


def fit(name, func, lo, hi, degree, weight, fixed=None):
    """Float32 coefficients c0..cn of a near-minimax fit of func on [lo, hi], minimising max |weight(t) (func - p)|
    (the weight says how an error of p reaches the function's result); fixed: {degree: value}."""
    fixed = dict(fixed or {})
    n = 4000
    nodes = [mp.mpf(lo) + (mp.mpf(hi) - mp.mpf(lo)) * (1 - mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n)) / 2 for k in range(n)]
    gm = [func(x) for x in nodes]
    t = np.array([float(x) for x in nodes])
    wt = np.array([float(weight(x)) for x in nodes])
    coeffs = {}
    coeffs.update(fixed)
    for j in range(degree + 1):
        if j in coeffs:
            continue
        free = [p for p in range(degree + 1) if p not in coeffs]
        rest = np.array([float(gm[i] - sum(mp.mpf(coeffs[p]) * nodes[i] ** p for p in coeffs)) for i in range(n)])
        c = lawson(t, rest, free, wt)
        coeffs[j] = f32(c[free.index(j)])
    grid = [mp.mpf(lo) + (mp.mpf(hi) - mp.mpf(lo)) * k / 20000 for k in range(20001)]
    worst = max(abs(weight(x) * (func(x) - sum(mp.mpf(coeffs[p]) * x ** p for p in coeffs))) for x in grid)
    print(f'{name}: degree {degree} on [{lo}, {hi}], max |w (g - p)| = {mp.nstr(worst, 3)} = 2^{float(mp.log(worst, 2)):.1f}')
    for p in range(degree + 1):
        print(f'    c{p} = {hexf(coeffs[p]):>18}   ({coeffs[p]!r})')
    return coeffs


def series_guard(x, direct, limit):
    return limit if x == 0 else direct(x)


def main():
    ln2 = mp.log(2)
    print('Constants')
    l2h = f32(ln2)
    l2l = f32(ln2 - mp.mpf(l2h))
    print(f'    LOG2E = {hexf(f32(1 / ln2))}  (1/ln 2)')
    print(f'    exp:  L2H = {hexf(l2h)}, L2L = {hexf(l2l)}  (ln 2 = L2H + L2L + {mp.nstr(ln2 - l2h - l2l, 3)})')
    l2h13 = float(mp.floor(ln2 * 2 ** 13) / 2 ** 13)  # 13 significant bits: e·L2H13 exact for |e| < 2^11
    l2l13 = f32(ln2 - mp.mpf(l2h13))
    print(f'    log:  L2H13 = {hexf(l2h13)}, L2L13 = {hexf(l2l13)}  (ln 2 = L2H13 + L2L13 + {mp.nstr(ln2 - l2h13 - l2l13, 3)})')
    c3h = f32(mp.mpf(2) / 3)
    c3l = f32(mp.mpf(2) / 3 - mp.mpf(c3h))
    print(f'    C3H = {hexf(c3h)}, C3L = {hexf(c3l)}  (2/3 = C3H + C3L + {mp.nstr(mp.mpf(2) / 3 - c3h - c3l, 3)})')
    smax = (mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)
    print(f'    log reduction: |s| <= {mp.nstr(smax, 8)}, s^2 <= {mp.nstr(smax ** 2, 8)}')
    print()

    # e^r = 1 + r + r^2/2 + r^3 P(r), |r| <= ln2/2 (+ the rounding of k = rint(x log2e)).
    def p_exp(r):
        return series_guard(r, lambda r: (mp.exp(r) - 1 - r - r * r / 2) / r ** 3, mp.mpf(1) / 6)
    # weight r^2: the error of r^3 P relative to e^r - 1 ~ r (expm1 near 0; exp needs less)
    fit('exp: P(r) = (e^r - 1 - r - r^2/2) / r^3', p_exp, -0.35, 0.35, 4, lambda r: r * r)

    # log(1+f) = 2 atanh(s) = 2s + (2/3) s^3 + s^5 Q(s^2), s = f/(2+f), f = m - 1, m in [sqrt(1/2), sqrt(2)).
    def q_log(z):
        def direct(z):
            s = mp.sqrt(z)
            return (2 * mp.atanh(s) - 2 * s - 2 * s ** 3 / 3) / s ** 5
        return series_guard(z, direct, mp.mpf(2) / 5)
    # weight z^2: the error of s^5 Q relative to log(1+f) ~ 2s
    fit('log: Q(z) = (2 atanh(s) - 2s - 2s^3/3) / s^5, z = s^2', q_log, 0, 0.0295, 3, lambda z: z * z / 2)

    # tanh a = a + a^3 T(a^2), 0 <= a < 0.25.
    def t_tanh(z):
        def direct(z):
            a = mp.sqrt(z)
            return (mp.tanh(a) - a) / a ** 3
        return series_guard(z, direct, -mp.mpf(1) / 3)
    # weight z: the error of a^3 T relative to tanh a ~ a
    fit('tanh: T(z) = (tanh a - a) / a^3, z = a^2', t_tanh, 0, 0.0625, 3, lambda z: z)


if __name__ == '__main__':
    main()
