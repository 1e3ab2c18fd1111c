"""The view-quality monitor (edge/view.py): false alarms, time to flag, and where its default thresholds come from.

Prints what the README quotes, all in footage time (frame number / 10 fps), so a busy machine changes nothing but
the CPU figure:

1. false `degraded` on the demo footage: each of the four bundled cameras looped, as a file camera plays it, for ten
   minutes (forty camera-minutes, every loop point included), through the monitor with its defaults;
2. seconds from the moment a view goes bad to `degraded`, and from the moment it is good again to the end of it;
3. the measurements behind each default: how many of its people the bundled model still finds as the footage
   darkens or blurs, what share of the view the monitor calls blind in each case and in every other bundled scene,
   and how much a still picture changes between frames with and without sensor noise;
4. CPU per update (process time, not wall time: the machine is shared), next to the detector's per frame.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.config import DetectorConfig
from edge.detector import PersonDetector
from edge.view import ViewMonitor, measure, small_grey
from edge.view_config import ViewConfig
from tests.test_detector_int8 import kept
from tests.view_footage import (
    CAMERAS,
    FOOTAGE,
    FPS,
    darkened,
    glare,
    half_covered,
    iter_clip,
    read_clip,
    smeared,
    write_clip,
)

MINUTES = 10.0
DEFAULTS = ViewConfig()


def false_degraded() -> None:
    print(f"1. demo footage, each camera looped for {MINUTES:g} min of footage, default thresholds")
    total_frames = total_raises = 0
    cpu = 0.0
    for name in CAMERAS:
        monitor, frames, raises, degraded = ViewMonitor(DEFAULTS), 0, 0, False
        while frames < MINUTES * 60 * FPS:
            for image in iter_clip(FOOTAGE / f"cam_{name}.mp4"):  # reopened at its end, as a file camera is
                start = time.process_time()
                state = monitor.update(image, frames / FPS)
                cpu += time.process_time() - start
                raises += state.degraded and not degraded
                degraded = state.degraded
                frames += 1
        print(f"   {name:5s} {frames} frames ({frames / FPS / 60:.1f} min): degraded {raises} times")
        total_frames, total_raises = total_frames + frames, total_raises + raises
    print(
        f"   all: {total_raises} false degraded in {total_frames / FPS / 60:.0f} camera-minutes; "
        f"monitor CPU {cpu / total_frames * 1000:.3f} ms per frame (target 0.5)"
    )


def time_to_flag() -> None:
    print(f"2. seconds to flag and to clear (raise_s {DEFAULTS.raise_s:g}, clear_s {DEFAULTS.clear_s:g}; target 3)")
    clip = read_clip("right", limit=60)
    views: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
        "darkened": lambda f, i: darkened(f, seed=i),
        "smeared lens": lambda f, i: smeared(f),
        "half covered, black": lambda f, i: half_covered(f, "black"),
        "half covered, smeared": lambda f, i: half_covered(f, "smear"),
        "glare": lambda f, i: glare(f),
        "frozen": lambda f, i: clip[29],
    }
    for what, spoil in views.items():
        good_then_bad = clip[:30] + [spoil(clip[i % 30], i) for i in range(60)] + clip * 4
        monitor = ViewMonitor(DEFAULTS)
        raised = cleared = None
        reasons: set[str] = set()
        for i, image in enumerate(good_then_bad):
            state = monitor.update(image, i / FPS)
            reasons |= set(state.reasons)
            raised = i / FPS if raised is None and state.degraded else raised
            cleared = i / FPS if raised is not None and cleared is None and not state.degraded else cleared
        # Bad from 3.0 s (frozen: from 2.9 s, when the picture that stays was captured) to 9.0 s.
        began = 2.9 if what == "frozen" else 3.0
        flag = "never" if raised is None else f"{raised - began:.1f} s"
        back = "never" if cleared is None else f"{cleared - 9.0:.1f} s"
        print(f"   {what:22s} {'/'.join(sorted(reasons)) or '-':8s} flagged after {flag}, cleared {back} after")
    encoded_freezes(clip)


def encoded_freezes(clip: list[np.ndarray]) -> None:
    """A camera's encoder keeps coding a frozen picture: the first keyframe after the freeze still changes it, so
    the delay depends on where the freeze falls between keyframes (mp4v: one every 12 frames, 1.2 s here)."""
    delays = []
    with tempfile.TemporaryDirectory() as tmp:
        for frozen_from in range(30, 42):
            frames = clip[:frozen_from] + [clip[frozen_from - 1]] * 40 + clip[frozen_from:]
            monitor = ViewMonitor(DEFAULTS)
            for i, image in enumerate(iter_clip(write_clip(Path(tmp) / "frozen.mp4", frames))):
                if monitor.update(image, i / FPS).degraded:
                    delays.append(i / FPS - (frozen_from - 1) / FPS)
                    break
    print(
        f"   frozen, through mp4v   frozen   flagged after {min(delays):.1f}-{max(delays):.1f} s "
        f"({len(delays)} of 12 freeze positions across a keyframe interval)"
    )


def sampled_frames(step: int = 10) -> list[np.ndarray]:
    return [f for name in CAMERAS for i, f in enumerate(iter_clip(FOOTAGE / f"cam_{name}.mp4")) if i % step == 5]


def still_scenes() -> list[Path]:
    """The other bundled pictures: a corridor, fruit, a portrait, a collage, the empty walkway."""
    return [*sorted(FOOTAGE.glob("images/*")), *sorted(FOOTAGE.glob("faces/*.jpg")), FOOTAGE / "people/background.jpg"]


def blind_share(images: list[np.ndarray]) -> tuple[float, float]:
    shares = [measure(small_grey(f), None, DEFAULTS).blind for f in images]
    return min(shares), max(shares)


def calibration() -> None:
    print("3. what the defaults rest on (the bundled int8 model at its own threshold, every 10th demo frame)")
    detector = PersonDetector(DetectorConfig())
    frames = sampled_frames()
    reference = [d.xyxy for d in detector.detect(frames)]
    total = sum(len(r) for r in reference)

    def found(images: list[np.ndarray]) -> float:
        got = detector.detect(images)
        return sum(kept(r, g.xyxy) for r, g in zip(reference, got, strict=True)) / total

    print(f"   darkened (gamma 1.5, gain g, noise 3 grey levels): people found of {total} in the plain footage")
    for gain in (0.4, 0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.06):
        images = [darkened(f, seed=i, gain=gain) for i, f in enumerate(frames)]
        luma = np.mean([cv2.mean(small_grey(f))[0] for f in images])
        print(f"     gain {gain:4.2f}: mean grey level {luma:5.1f}, found {found(images):4.0%}")
    print(f"   -> dark_luma {DEFAULTS.dark_luma:g}: the model finds about half its people there")
    print("   smeared (Gaussian blur, sigma in pixels at 768x576): found, and the share of the view judged blind")
    for sigma in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0):
        images = [smeared(f, sigma) for f in frames]
        lo, hi = blind_share(images)
        print(f"     sigma {sigma:3.0f}: found {found(images):4.0%}, blind {lo:4.0%}-{hi:4.0%}")
    print(f"   blind share elsewhere (blocked from {DEFAULTS.blocked_area:.0%}):")
    others = {
        "demo footage, every 10th frame": frames,
        "demo, darkened to gain 0.15 (not dark)": [darkened(f, seed=i, gain=0.15) for i, f in enumerate(frames)],
        "demo, half covered (black)": [half_covered(f, "black") for f in frames],
        "demo, half covered (smeared)": [half_covered(f, "smear") for f in frames],
        "footage/images/*, faces/*.jpg, people/background.jpg": [cv2.imread(str(p)) for p in still_scenes()],
        "footage/faces/pan.mp4 (a window sliding over a collage)": list(iter_clip(FOOTAGE / "faces" / "pan.mp4")),
    }
    for what, images in others.items():
        lo, hi = blind_share(images)
        print(f"     {what:56s} {lo:4.0%}-{hi:4.0%}")
    glares = [measure(small_grey(glare(f)), None, DEFAULTS).glare for f in frames[:10]]
    plain = max(measure(small_grey(f), None, DEFAULTS).glare for f in frames)
    print(f"   saturated share: demo at most {plain:.1%}; with the test's sun blob {min(glares):.0%}-{max(glares):.0%}")
    print(f"     (glare from {DEFAULTS.glare_area:.0%})")
    change_margins(frames)


def change_margins(frames: list[np.ndarray]) -> None:
    changes = []
    for name in CAMERAS:
        previous = None
        for image in iter_clip(FOOTAGE / f"cam_{name}.mp4"):
            grey = small_grey(image)
            if previous is not None:
                changes.append(measure(grey, previous, DEFAULTS).change)
            previous = grey
    rng = np.random.default_rng(0)
    picture = frames[3]

    def noisy(sigma: float) -> np.ndarray:
        return np.clip(picture + rng.normal(0, sigma, picture.shape), 0, 255).astype(np.uint8)

    def encoded_changes(clip: list[np.ndarray]) -> list[float]:
        """Changes between frames once a clip has been through mp4v (keyframe every 12 frames)."""
        with tempfile.TemporaryDirectory() as tmp:
            greys = [small_grey(f) for f in iter_clip(write_clip(Path(tmp) / "c.mp4", clip))]
        return [measure(b, a, DEFAULTS).change for a, b in itertools.pairwise(greys)]

    frozen = encoded_changes([picture] * 60)[24:]  # past the encoder's first two keyframes
    still = encoded_changes([noisy(1.0) for _ in range(60)])[24:]
    print(f"   change between frames (frozen below {DEFAULTS.frozen_change:g}):")
    print(f"     demo footage, all four cameras: at least {min(changes):.2f}")

    def live(sigma: float) -> float:
        return measure(small_grey(noisy(sigma)), small_grey(noisy(sigma)), DEFAULTS).change

    print(f"     a still scene, sensor noise 0.5 / 1 grey level: {live(0.5):.2f} / {live(1.0):.2f}")
    print(f"     the same still scene through mp4v: {max(still):.2f} at its keyframes, {np.median(still):.3f} between")
    print(f"     a frozen picture through mp4v: at most {max(frozen):.3f} (its keyframes); an identical frame 0")


def cpu_against_the_detector() -> None:
    frame = read_clip("front", limit=1)[0]
    detector = PersonDetector(DetectorConfig(threads=1))
    monitor = ViewMonitor(DEFAULTS)
    monitor.update(frame, 0.0)
    detector.detect([frame])
    n = 2000
    start = time.process_time()
    for i in range(n):
        monitor.update(frame, i / FPS)
    view_ms = (time.process_time() - start) / n * 1000
    start = time.process_time()
    for _ in range(50):
        detector.detect([frame])
    detect_ms = (time.process_time() - start) / 50 * 1000
    print(
        f"4. CPU per frame, same run: view monitor {view_ms:.3f} ms, person detector (1 thread) {detect_ms:.1f} ms: "
        f"the monitor adds {view_ms / detect_ms:.1%}"
    )


def main() -> None:
    false_degraded()
    time_to_flag()
    calibration()
    cpu_against_the_detector()


if __name__ == "__main__":
    main()
