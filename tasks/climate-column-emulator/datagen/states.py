"""Atmospheric column states for the task: G grid columns (latitudes 35S-35N, ocean and land)
sampled every 3 hours for NT steps.  Every profile is a smooth climatological structure
(a lapse-rate troposphere capped by a tropopause, relative humidity decreasing with height,
sheared winds) plus AR(1)-in-time anomalies of low vertical modes, so consecutive samples are
correlated and a split by time is a real extrapolation in time.  `warming` (K) shifts the
surface temperature and the tropospheric temperatures (amplified aloft, as a moist adiabat
does) at fixed relative humidity: a warmer climate."""

from __future__ import annotations

import numpy as np
from column_physics import PS, levels, qsat

L = 30


def _ar1(rng, shape, rho, sd):
    """AR(1) along axis 1 (time) with stationary std sd."""
    x = np.empty(shape)
    x[:, 0] = rng.standard_normal((shape[0],) + shape[2:]) * sd
    e = np.sqrt(1 - rho**2) * sd
    for t in range(1, shape[1]):
        x[:, t] = rho * x[:, t - 1] + e * rng.standard_normal((shape[0],) + shape[2:])
    return x


def make_states(
    seed: int, G: int = 40, NT: int = 64, warming: float = 0.0, lat_range=(-35.0, 35.0)
):
    rng = np.random.default_rng(seed)
    ph, p = levels(L)
    s = p / PS
    lat = np.deg2rad(rng.uniform(*lat_range, size=G))
    land = rng.random(G) < 0.3
    lon = rng.uniform(0, 2 * np.pi, size=G)
    hours = np.arange(NT) * 3.0
    # surface temperature: latitude + slow anomaly + (land) diurnal cycle
    hang = 2 * np.pi * hours[None, :] / 24.0 + lon[:, None] - np.pi  # hour angle, noon at 0
    Ts = 301.5 - 24.0 * np.sin(lat[:, None]) ** 2 + _ar1(rng, (G, NT), 0.97, 1.0)
    Ts = Ts + np.where(land[:, None], 5.0 * np.cos(hang - 0.4) - 1.0, 0.0) + warming
    mu = np.maximum(0.0, np.cos(lat[:, None]) * np.cos(hang) + 0.2 * np.sin(lat[:, None]) * 0.0)
    S = 1361.0 * mu * (1 + 0.0 * hang)
    Cd = np.where(land, 2.4e-3, 1.2e-3)[:, None] * np.exp(_ar1(rng, (G, NT), 0.9, 0.15))
    # temperature: air-sea difference, lapse rate, tropopause, modal anomalies
    dTsa = (
        0.8 + _ar1(rng, (G, NT), 0.8, 1.0) + np.where(land[:, None], -1.5 * np.cos(hang - 0.4), 0.0)
    )
    gam = 5.6 + _ar1(rng, (G, NT), 0.9, 0.45) - 0.8 * np.sin(lat[:, None]) ** 2  # K/km
    T0 = Ts - dTsa
    expo = RD_G * gam[..., None] / 1000.0
    # a well-mixed (dry adiabatic) layer below s_ml, deeper over land by day
    dml = np.clip(
        0.09
        + _ar1(rng, (G, NT), 0.8, 0.03)
        + np.where(land[:, None], 0.06 * np.cos(hang - 0.6), 0.0),
        0.02,
        0.25,
    )
    s_ml = (1.0 - dml)[..., None]
    T_ml = T0[..., None] * s_ml**0.2859
    Tt = np.where(
        s[None, None, :] > s_ml,
        T0[..., None] * s[None, None, :] ** 0.2859,
        T_ml * (s[None, None, :] / s_ml) ** expo,
    )
    amp = 1.0 + 0.9 * (1 - s) * (s > 0.15)  # warming aloft
    Tt = Tt + warming * (amp[None, None, :] - 1.0)
    Ttp = 196.0 + 0.35 * (Ts - 300.0 - warming) + _ar1(rng, (G, NT), 0.9, 2.0) + 0.6 * warming
    ptp_idx_T = np.maximum(Tt, Ttp[..., None])
    strat = Tt < Ttp[..., None]
    # above the tropopause: warming with height
    ptp = np.where(strat, 0.0, s[None, None, :]).min(axis=-1, initial=1.0, where=~strat)
    T = np.where(
        strat, Ttp[..., None] + 6.0 * np.log(np.maximum(ptp[..., None], 1e-3) / s), ptp_idx_T
    )
    modes = np.stack([np.sin(n * np.pi * s) for n in (1, 2, 3, 4)])  # (4, L)
    a = _ar1(rng, (G, NT, 4), 0.85, 1.0) * np.array([1.2, 0.9, 0.6, 0.4])
    T = T + np.einsum("gtm,ml->gtl", a, modes) * (s > 0.12) + 0.25 * rng.standard_normal((G, NT, L))
    # humidity: RH decreasing with height, dry/moist anomalies, capped just above saturation
    rh0 = np.clip(
        0.80 + _ar1(rng, (G, NT), 0.9, 0.08) - np.where(land[:, None], 0.12, 0.0), 0.3, 0.98
    )
    alpha = 0.9 + _ar1(rng, (G, NT), 0.9, 0.35)
    b = _ar1(rng, (G, NT, 3), 0.85, 1.0) * np.array([0.12, 0.08, 0.05])
    rh = rh0[..., None] * s[None, None, :] ** np.maximum(alpha[..., None], 0.3)
    rh = rh + np.einsum("gtm,ml->gtl", b, modes[:3]) + 0.03 * rng.standard_normal((G, NT, L))
    rh = np.clip(rh, 0.01, 1.04)
    q = rh * qsat(T, p[None, None, :])
    q = np.where(s[None, None, :] < 0.12, np.minimum(q, 4e-6), q)
    # winds: mean, shear and modes
    u0 = (
        4.0 * np.sign(np.sin(lat))[:, None] * 0
        + _ar1(rng, (G, NT), 0.95, 4.0)
        - 3.0 * np.cos(lat[:, None]) ** 8
    )
    sh = _ar1(rng, (G, NT), 0.95, 8.0) + 10.0 * np.sin(lat[:, None]) ** 2
    v0 = _ar1(rng, (G, NT), 0.9, 2.5)
    cu = _ar1(rng, (G, NT, 3), 0.85, 1.0) * np.array([2.0, 1.2, 0.8])
    cv = _ar1(rng, (G, NT, 3), 0.85, 1.0) * np.array([1.5, 1.0, 0.6])
    u = u0[..., None] + sh[..., None] * (1 - s) + np.einsum("gtm,ml->gtl", cu, modes[:3])
    v = v0[..., None] + 0.3 * sh[..., None] * (1 - s) + np.einsum("gtm,ml->gtl", cv, modes[:3])
    return dict(T=T, q=q, u=u, v=v, Ts=Ts, S=S, Cd=Cd, lat=lat, land=land, p=p, ph=ph)


RD_G = 287.0 / 9.81
