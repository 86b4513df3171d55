"""A simplified but physically structured single-column physics package (numpy, deterministic).

This file generates the task's data; it lives OUTSIDE repo/ on purpose: an agent that could read
the scheme could code it into its "emulator" and score R^2 = 1 without learning anything.

Column state on L full levels (index 0 = model top, L-1 = lowest level), pressures p (Pa):
  T (K), q (kg/kg), u, v (m/s); surface: Ts (K), S (W/m^2, incoming solar at the top), Cd (bulk
  transfer coefficient).  One physics time step DT is applied with sequential process splitting,
  like a GCM physics package:
  1. large-scale condensation: supersaturation condenses, latent heat warms (local, conditional);
  2. convection: simplified Betts-Miller (Frierson 2007): a parcel lifted from the lowest level
     (dry adiabat, then saturated pseudo-adiabat); if it is buoyant (CAPE > 100 J/kg, CIN < 80
     J/kg) the layer from the surface to the level of neutral buoyancy relaxes to the parcel
     profile and to 70% relative humidity with respect to it, over 2 h; enthalpy is conserved
     by a uniform shift of the reference profile; precipitation must be positive in both
     budgets (else no convection); convective momentum transport mixes u, v in that layer
     (non-local in the vertical and conditional);
  3. boundary layer: bulk surface fluxes of heat, moisture and momentum, deposited over a
     boundary layer whose top is where a surface parcel (with a flux-dependent excess) stops
     being buoyant, plus mixing toward the layer mean (non-local, depends on stability);
  4. radiation: gray longwave two-stream with water-vapour, well-mixed gas and cloud optical
     depths (clouds where relative humidity exceeds 75%), shortwave absorption by water vapour,
     an ozone-like absorber aloft and cloud reflection (non-local: every layer sees the emission
     of all others and the shading of the layers above).
Targets: the total tendencies (final - initial) / DT of T (K/day), q (g/kg/day), u, v (m/s/day),
plus surface precipitation (mm/day) and downwelling longwave at the surface (W/m^2).
"""

from __future__ import annotations

import numpy as np

CP, RD, RV, LV, G, SIG = 1004.0, 287.0, 461.5, 2.5e6, 9.81, 5.67e-8
KAPPA, EPS = RD / CP, 0.622
DT = 1800.0  # physics time step (s)
DAY = 86400.0
PS = 1.0e5  # surface pressure (Pa)


def levels(L: int = 30):
    s = np.linspace(0.0, 1.0, L + 1)
    ph = (10.0 + 990.0 * (1.0 - (1.0 - s) ** 1.3)) * 100.0  # half levels, Pa
    p = 0.5 * (ph[1:] + ph[:-1])
    return ph, p


def qsat(T, p):
    es = 611.2 * np.exp(17.67 * (T - 273.15) / (T - 29.65))
    return EPS * es / np.maximum(p - (1.0 - EPS) * es, 0.1 * p)


def dqsat_dT(T, p):
    return qsat(T, p) * 17.67 * 243.5 / (T - 29.65) ** 2


def _condense(T, q, p):
    """Saturation adjustment: amount condensed (kg/kg) so that q = qsat(T + L c / cp)."""
    qs = qsat(T, p)
    return np.maximum(q - qs, 0.0) / (1.0 + LV / CP * dqsat_dT(T, p))


def large_scale_condensation(T, q, p, dp):
    c = _condense(T, q, p)
    return T + LV / CP * c, q - c, (c * dp / G).sum(1) / DT  # precip kg/m2/s


def parcel_profile(T, q, p):
    N, L = T.shape
    Tp = np.empty_like(T)
    Tp[:, -1] = T[:, -1]
    qp = q[:, -1].copy()
    for k in range(L - 2, -1, -1):
        Tk = Tp[:, k + 1] * (p[k] / p[k + 1]) ** KAPPA
        for _ in range(2):
            c = _condense(Tk, qp, p[k])
            Tk = Tk + LV / CP * c
            qp = qp - c
        Tp[:, k] = Tk
    return Tp


def convection(T, q, u, v, p, ph, dp, tau=7200.0, tau_cmt=10800.0, rh_ref=0.5):
    N, L = T.shape
    Tp = parcel_profile(T, q, p)
    b = Tp - T
    dlnp = np.log(ph[1:] / ph[:-1])
    state = np.zeros(N, dtype=np.int8)
    cape = np.zeros(N)
    cin = np.zeros(N)
    top = np.full(N, L - 1)
    for k in range(L - 2, -1, -1):
        pos = b[:, k] > 0
        s0 = state == 0
        cin += np.where(s0 & ~pos, -RD * b[:, k] * dlnp[k], 0.0)
        state[s0 & pos] = 1
        s1 = state == 1
        cont = s1 & pos
        cape += np.where(cont, RD * b[:, k] * dlnp[k], 0.0)
        top[cont] = k
        state[s1 & ~pos] = 2
    trig = (cape > 100.0) & (cin < 80.0) & (top < L - 2)
    M = (np.arange(L)[None, :] >= top[:, None]) & trig[:, None]
    qref = rh_ref * qsat(Tp, p)
    dT = -(T - Tp) / tau * M
    dq = -(q - qref) / tau * M
    Pq = -(dq * dp / G).sum(1)
    PT = (dT * dp / G).sum(1) * CP / LV
    deep = trig & (Pq > 0) & (PT > 0)
    mass = np.maximum((M * dp / G).sum(1), 1e-9)
    dT = dT - ((PT - Pq) * LV / CP / mass)[:, None] * M
    Md = M & deep[:, None]
    dT = dT * Md
    dq = dq * Md
    w = Md * dp
    wsum = np.maximum(w.sum(1, keepdims=True), 1e-9)
    um = (u * w).sum(1, keepdims=True) / wsum
    vm = (v * w).sum(1, keepdims=True) / wsum
    du = -(u - um) / tau_cmt * Md
    dv = -(v - vm) / tau_cmt * Md
    return dT, dq, du, dv, np.where(deep, Pq, 0.0), dict(cape=cape, deep=deep, top=top)


def boundary_layer(T, q, u, v, Ts, Cd, p, dp):
    N, L = T.shape
    k1 = L - 1
    rho = p[k1] / (RD * T[:, k1])
    V = np.sqrt(u[:, k1] ** 2 + v[:, k1] ** 2 + 1.0)
    ex = (PS / p) ** KAPPA
    theta = T * ex
    SH = rho * CP * Cd * V * (Ts - theta[:, k1])  # W/m2 (Ts is at PS: theta_s = Ts)
    LH = rho * LV * Cd * V * (qsat(Ts, PS) - q[:, k1])  # W/m2
    taux = -rho * Cd * V * u[:, k1]
    tauy = -rho * Cd * V * v[:, k1]
    thv = theta * (1.0 + 0.61 * q)
    thv_s = thv[:, k1] + 0.2 + np.clip(SH / 60.0, 0.0, 3.0)
    inside = np.ones(N, dtype=bool)
    top = np.full(N, k1 - 1)
    for k in range(k1 - 1, 4, -1):
        inside &= thv[:, k] < thv_s
        top[inside] = k
    M = np.arange(L)[None, :] >= top[:, None]
    mass = (M * dp).sum(1)  # Pa
    dth = G * SH / (CP * mass)
    dT = dth[:, None] / ex * M
    dq = (G * LH / LV / mass)[:, None] * M
    du = (G * taux / mass)[:, None] * M
    dv = (G * tauy / mass)[:, None] * M
    tau_mix = np.where(SH > 0, 3600.0, 6.0 * 3600.0)[:, None]
    w = M * dp

    def mix(x):
        m = (x * w).sum(1, keepdims=True) / mass[:, None]
        return -(x - m) / tau_mix * M

    dT = dT + mix(theta) / ex
    dq = dq + mix(q)
    du = du + mix(u)
    dv = dv + mix(v)
    return dT, dq, du, dv, dict(SH=SH, LH=LH, top=top)


def radiation(T, q, Ts, S, p, ph, dp):
    N, L = T.shape
    rh = q / qsat(T, p)
    cf = np.clip((rh - 0.75) / 0.25, 0.0, 1.0) ** 2
    wvp = np.maximum(q, 0.0) * dp / G  # kg/m2 per layer
    tau_lw = 1.66 * 0.9 * (dp / PS) * (p / PS) + 1.66 * 0.11 * wvp * (p / PS) ** 0.5 + 2.5 * cf
    eps = 1.0 - np.exp(-tau_lw)
    B = SIG * T**4
    up = np.empty((N, L + 1))
    dn = np.empty((N, L + 1))
    up[:, L] = SIG * Ts**4
    for k in range(L - 1, -1, -1):
        up[:, k] = up[:, k + 1] * (1 - eps[:, k]) + eps[:, k] * B[:, k]
    dn[:, 0] = 0.0
    for k in range(L):
        dn[:, k + 1] = dn[:, k] * (1 - eps[:, k]) + eps[:, k] * B[:, k]
    lw = G / (CP * dp) * ((up[:, 1:] - up[:, :-1]) + (dn[:, :-1] - dn[:, 1:]))
    mu = np.maximum(S / 1361.0, 0.05)
    tau_sw = (0.025 * wvp + 2.0 * (dp / PS) * np.exp(-p / 4000.0)) / mu[:, None]
    F = S.copy()
    sw = np.zeros_like(T)
    for k in range(L):
        R = 0.3 * cf[:, k] * F
        A = (1.0 - np.exp(-tau_sw[:, k])) * (F - R)
        sw[:, k] = G / (CP * dp[k]) * A
        F = F - R - A
    return lw + sw, dict(olr=up[:, 0], flwds=dn[:, L], sws=F, cf=cf)


def physics(T, q, u, v, Ts, S, Cd, p, ph):
    """One physics step.

    Returns (dT K/day, dq g/kg/day, du, dv m/s/day, precip mm/day, flwds W/m2)."""
    dp = np.diff(ph)
    T0, q0, u0, v0 = T, q, u, v
    T1, q1, P_ls = large_scale_condensation(T, q, p, dp)
    cT, cq, cu, cv, P_c, cinfo = convection(T1, q1, u, v, p, ph, dp)
    T2, q2, u2, v2 = T1 + DT * cT, q1 + DT * cq, u + DT * cu, v + DT * cv
    bT, bq, bu, bv, binfo = boundary_layer(T2, q2, u2, v2, Ts, Cd, p, dp)
    T3, q3, u3, v3 = T2 + DT * bT, q2 + DT * bq, u2 + DT * bu, v2 + DT * bv
    rT, rinfo = radiation(T3, q3, Ts, S, p, ph, dp)
    T4 = T3 + DT * rT
    out = (
        (T4 - T0) / DT * DAY,
        (q3 - q0) / DT * DAY * 1e3,
        (u3 - u0) / DT * DAY,
        (v3 - v0) / DT * DAY,
        (P_ls + P_c) * DAY,
        rinfo["flwds"],
    )
    info = dict(
        deep=cinfo["deep"],
        cape=cinfo["cape"],
        ctop=cinfo["top"],
        pbltop=binfo["top"],
        SH=binfo["SH"],
        LH=binfo["LH"],
        olr=rinfo["olr"],
        cf=rinfo["cf"],
        P_ls=P_ls * DAY,
    )
    return out, info
