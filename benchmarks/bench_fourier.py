# SPDX-License-Identifier: Apache-2.0
"""Fourier transforms tau <-> i w at n_iw = 1025, n_tau = 10001 against a plain numpy FFT.

The baseline is the bare FFT work of the same sizes (one complex FFT of length
n_tau - 1 on the binned Matsubara data, no tail handling), timed in the same
process; the ratio is what the tail fit, the moment subtraction and the
analytic tail cost on top of it.

    python benchmarks/bench_fourier.py [--repeat 50]
"""

import argparse

import numpy as np
from _timing import median_time
from triqs_mlsolver.gf import Fourier, GfImFreq, GfImTime, SemiCircular
from triqs_mlsolver.gf import transforms as tr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--beta", type=float, default=50.0)
    args = ap.parse_args()
    n_iw, n_tau, beta = 1025, 10001, args.beta
    g = GfImFreq(beta=beta, n_points=n_iw, indices=[0])
    g << SemiCircular(1.0)
    gt = GfImTime(beta=beta, n_points=n_tau, indices=[0])
    data = g.data[:, 0, 0]
    M = n_tau - 1

    def baseline_iw_to_tau():
        bins = np.zeros(M, complex)
        np.add.at(bins, np.arange(-n_iw, n_iw) % M, data)
        return np.fft.fft(bins)

    def baseline_tau_to_iw():
        return np.fft.ifft(gt.data[:M, 0, 0])

    t_base = median_time(baseline_iw_to_tau, args.repeat)
    t_fwd = median_time(lambda: gt << Fourier(g), args.repeat)
    t_fwd_raw = median_time(lambda: tr.iw_to_tau(data, beta, n_tau), args.repeat)
    t_base2 = median_time(baseline_tau_to_iw, args.repeat)
    t_bwd = median_time(lambda: g << Fourier(gt), args.repeat)
    print(f"Fourier at n_iw={n_iw}, n_tau={n_tau}, beta={beta:g} (median of {args.repeat})")
    print(f"{'transform':34s} {'time [ms]':>10s} {'ratio to numpy FFT':>20s}")
    rows = [
        ("numpy FFT baseline iw->tau", t_base, t_base),
        ("iw->tau  g_tau << Fourier(g_iw)", t_fwd, t_base),
        ("iw->tau  transforms.iw_to_tau", t_fwd_raw, t_base),
        ("numpy FFT baseline tau->iw", t_base2, t_base2),
        ("tau->iw  g_iw << Fourier(g_tau)", t_bwd, t_base2),
    ]
    for name, t, ref in rows:
        print(f"{name:34s} {1e3 * t:10.3f} {t / ref:20.2f}")


if __name__ == "__main__":
    main()
