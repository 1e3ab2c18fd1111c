"""Plane geometry shared by the config checks and the running zones: simple polygons and the ground homography.

The config check and `GroundMap` fit the calibration with the same function, so the homography `check-config` judged
well conditioned is the one the daemon measures distances with. Everything here raises ValueError with a message
fit to follow a key path (`image: ...`), never a numpy error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# A fit closer to degenerate than this (ratio of singular values) turns a pixel of detection noise into metres; the
# demo's calibrations sit near 0.3, and points a ten-thousandth of their spread off one line come out near 1e-4.
MIN_CONDITION = 1e-4

Points = Sequence[Sequence[float]]


def without_closing_point(points: Points) -> list[tuple[float, float]]:
    """The polygon's corners, without the copy of the first one that GeoJSON-style rings repeat at the end."""
    pts = [(float(x), float(y)) for x, y in points]
    if len(pts) > 3 and pts[0] == pts[-1]:
        pts.pop()
    return pts


def _first_repeat(pts: np.ndarray) -> tuple[int, int] | None:
    for j in range(1, len(pts)):
        same = np.flatnonzero((pts[:j] == pts[j]).all(axis=1))
        if same.size:
            return int(same[0]), j
    return None


def _on_one_line(pts: np.ndarray) -> bool:
    """Whether all points lie (nearly) on one line: the second principal spread is tiny next to the first."""
    sing = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)
    return bool(sing[1] <= MIN_CONDITION * sing[0])


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])


def _within(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Whether r, known to be collinear with p-q, lies on the segment p-q."""
    lo, hi = np.minimum(p, q), np.maximum(p, q)
    return ((r >= lo) & (r <= hi)).all(axis=-1)


def _crossing_edges(pts: np.ndarray) -> tuple[int, int] | None:
    """The first pair of edges that cross or touch other than at their shared corner (all pairs at once: n <= 64)."""
    n = len(pts)
    p, q = pts, np.roll(pts, -1, axis=0)
    # Consecutive edges share a corner; they overlap only if the second one doubles back along the first.
    p2, q2 = np.roll(p, -1, axis=0), np.roll(q, -1, axis=0)
    spikes = np.flatnonzero((_cross(p, q, q2) == 0) & (np.einsum("ij,ij->i", q - p, q2 - p2) < 0))
    if spikes.size:
        k = int(spikes[0])
        return (k, (k + 1) % n) if k + 1 < n else (0, k)
    i, j = np.triu_indices(n, k=1)
    adjacent = (j == i + 1) | ((i == 0) & (j == n - 1))
    d1, d2 = _cross(p[i], q[i], p[j]), _cross(p[i], q[i], q[j])
    d3, d4 = _cross(p[j], q[j], p[i]), _cross(p[j], q[j], q[i])
    hit = ((d1 * d2 < 0) & (d3 * d4 < 0)) | ((d1 == 0) & _within(p[i], q[i], p[j]))
    hit |= ((d2 == 0) & _within(p[i], q[i], q[j])) | ((d3 == 0) & _within(p[j], q[j], p[i]))
    hit |= (d4 == 0) & _within(p[j], q[j], q[i])
    bad = np.flatnonzero(hit & ~adjacent)
    return (int(i[bad[0]]), int(j[bad[0]])) if bad.size else None


def polygon_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def check_polygon(points: Points, min_area: float, unit: str) -> None:
    """Raise ValueError unless the points (closing point already removed) make a simple polygon of some area.

    A zone that crosses itself or has no area is a zone that never fires (or fires in the wrong place), silently.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        raise ValueError("needs at least 3 points")
    repeat = _first_repeat(pts)
    if repeat is not None:
        raise ValueError(f"point {repeat[1]} repeats point {repeat[0]}")
    if _on_one_line(pts):
        raise ValueError("the points are on one line: the zone has no area")
    crossing = _crossing_edges(pts)
    if crossing is not None:
        a, b = crossing
        raise ValueError(
            f"edges {a}-{(a + 1) % len(pts)} and {b}-{(b + 1) % len(pts)} cross or overlap: "
            "the points must go once around the zone"
        )
    area = polygon_area(pts)
    if area < min_area:
        raise ValueError(f"encloses {area:.3g} {unit}, less than the {min_area:g} {unit} a zone needs")


def _normalising(pts: np.ndarray) -> np.ndarray:
    """Hartley's normalisation: centroid to the origin, mean distance sqrt(2), so the fit's numbers are comparable."""
    centre = pts.mean(axis=0)
    spread = float(np.sqrt(((pts - centre) ** 2).sum(axis=1)).mean())
    s = np.sqrt(2.0) / spread
    return np.array([[s, 0.0, -s * centre[0]], [0.0, s, -s * centre[1]], [0.0, 0.0, 1.0]])


def fit_homography(image: Points, ground: Points) -> np.ndarray:
    """The 3x3 homography taking image points to ground points (normalised DLT), or ValueError if it is degenerate.

    Degenerate means: the points do not pin down one homography (collinear or repeated image points), the one they
    give flattens the ground onto a line (collinear ground points: every distance would come out alike), or the
    points are in an order no camera could see them in (the plane would fold through the horizon between them).
    """
    src, dst = np.asarray(image, dtype=np.float64), np.asarray(ground, dtype=np.float64)
    if len(src) < 4 or len(src) != len(dst):
        raise ValueError(f"image: needs at least 4 points, as many as ground ({len(src)} and {len(dst)})")
    for name, pts in (("image", src), ("ground", dst)):
        repeat = _first_repeat(pts)
        if repeat is not None:
            raise ValueError(f"{name}: point {repeat[1]} repeats point {repeat[0]}")
        if _on_one_line(pts):
            raise ValueError(f"{name}: the points are on one line, so they cannot fix a view of the ground")
    ta, tb = _normalising(src), _normalising(dst)
    a = np.c_[src, np.ones(len(src))] @ ta.T
    b = np.c_[dst, np.ones(len(dst))] @ tb.T
    rows = np.zeros((2 * len(a), 9))
    u, v = b[:, 0:1], b[:, 1:2]
    rows[0::2, 0:3] = -a
    rows[0::2, 6:9] = a * u
    rows[1::2, 3:6] = -a
    rows[1::2, 6:9] = a * v
    try:
        _, sing, vt = np.linalg.svd(rows)
    except np.linalg.LinAlgError:
        raise ValueError("image: the points give no usable fit (collinear?)") from None
    # Eight independent constraints fix a homography; the eighth singular value says how firmly.
    hn = vt[-1].reshape(3, 3)
    hsing = np.linalg.svd(hn, compute_uv=False)
    if sing[7] < MIN_CONDITION * sing[0] or hsing[-1] < MIN_CONDITION * hsing[0]:
        # A homography keeps lines straight: three image points on a line need ground points on a line, and back.
        raise ValueError("ground: does not match image: points on one line in one must be on one line in the other")
    w = a @ hn[2]
    if not (np.all(w > 0) or np.all(w < 0)) or np.abs(w).min() < MIN_CONDITION * np.abs(w).max():
        raise ValueError("ground: the points are not in an order a camera could see them in (check the pairing)")
    h = np.linalg.inv(tb) @ hn @ ta
    return h / np.linalg.norm(h)
