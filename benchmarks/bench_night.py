"""Person detection at night: recall against darkness, with and without each low-light path. `make bench` runs it.

Frames: every 5th frame of the four demo cameras (159 frames), darkened by the camera model of tests/night.py to
scene illuminances from 20 lux down to 0.3 lux. There are no hand-drawn boxes for this footage (footage/labels holds
stays in zones, not boxes), so the truth is the float model's confident boxes (score >= 0.40, its operating
threshold) on the original daylight frames: recall here is "what the detector still finds of what it finds by day".
The detector under test is the default int8 model at its operating threshold (0.38); a box matches one truth box
one-to-one at IoU >= 0.5, and every unmatched box is a false box.

Paths, each applied to every frame of a level (the shipped one only below its luma threshold, as in vigie):
  none          the usual input: the frame stretched to 300x300 bilinearly
  gamma         the usual input brightened by edge/lowlight.py's gamma curve
  CLAHE         the usual input, CLAHE (clip 2, 8x8 tiles) on the L channel of Lab
  gamma+CLAHE   both
  average       the frame averaged down (INTER_AREA) instead of stretched
  shipped       edge/lowlight.py: averaged down and brightened, for frames whose mean luma is below 50

Prints a table (recall and false boxes per frame per path and level; for the shipped path also its recall at the
false boxes `none` gives, by raising its threshold), the CPU cost of each path per frame, and writes
benchmarks/night_recall.png (the curves) and benchmarks/night_levels.jpg (one crop at each level, to judge by eye).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.config import DetectorConfig, LowLightConfig
from edge.detector import INPUT_SIZE, PersonDetector, preprocess
from edge.lowlight import LowLight, gamma_table, mean_luma
from tests.night import CAP_LUX, ELECTRONS_PER_LUX, FULL_SCALE_E, NightLevel, darken
from tests.test_detector_int8 import every_fifth_frame, kept

HERE = Path(__file__).resolve().parent
LEVELS = (None, 20.0, 10.0, 5.0, 2.5, 1.25, 0.6, 0.3)  # None: the daylight frames as they are
SEED = 1
SHIPPED = LowLight.from_config(LowLightConfig())
CLAHE = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
SWEEP = np.round(np.arange(0.38, 0.80, 0.01), 2)  # thresholds tried for "recall at equal false boxes"
COST_ROUNDS = 200
STRIP_FRAME = 100  # rear camera, frame 100: four people on the walkway

Batch = Callable[[list[np.ndarray]], np.ndarray]


def brighten(small: np.ndarray) -> np.ndarray:
    return cv2.LUT(small, gamma_table(mean_luma(small)))


def clahe(small_rgb: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(small_rgb, cv2.COLOR_RGB2LAB)
    lab[..., 0] = CLAHE.apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def each(transform: Callable[[np.ndarray], np.ndarray]) -> Batch:
    """The usual input, then `transform` on each 300x300 RGB image."""

    def batch(images: list[np.ndarray]) -> np.ndarray:
        out = preprocess(images)
        for i in range(len(out)):
            out[i] = transform(out[i])
        return out

    return batch


def averaged(images: list[np.ndarray]) -> np.ndarray:
    out = np.empty((len(images), INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        small = cv2.resize(img, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        cv2.cvtColor(small, cv2.COLOR_BGR2RGB, dst=out[i])
    return out


PATHS: dict[str, Batch] = {
    "none": preprocess,
    "gamma": each(brighten),
    "CLAHE": each(clahe),
    "gamma+CLAHE": each(lambda s: clahe(brighten(s))),
    "average": averaged,
    "shipped": lambda images: preprocess(images, SHIPPED),
}


@dataclass(frozen=True, slots=True)
class Score:
    recall: float
    false_per_frame: float
    false_boxes: int


@dataclass(frozen=True, slots=True)
class Bench:
    int8: PersonDetector
    truth: list[np.ndarray]

    def boxes(self, frames: list[np.ndarray], path: Batch) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each frame's int8 boxes and scores (down to the operating threshold) through `path`."""
        out = []
        for start in range(0, len(frames), 4):
            chunk = frames[start : start + 4]
            raw = self.int8.run_batch(path(chunk))
            for i, img in enumerate(chunk):
                dets = self.int8._postprocess(raw, i, img.shape, self.int8.threshold)
                out.append((dets.xyxy, dets.score))
        return out

    def score(self, found: list[tuple[np.ndarray, np.ndarray]], threshold: float) -> Score:
        total = hits = false = 0
        for truth, (xyxy, score) in zip(self.truth, found, strict=True):
            got = xyxy[score >= threshold]
            k = kept(truth, got)
            total, hits, false = total + len(truth), hits + k, false + len(got) - k
        return Score(hits / total, false / len(self.truth), false)

    def at_equal_false(self, found: list[tuple[np.ndarray, np.ndarray]], budget: int) -> tuple[float, float]:
        """Recall at the lowest threshold (from the operating one up) giving at most `budget` false boxes."""
        for t in SWEEP:
            s = self.score(found, float(t))
            if s.false_boxes <= budget:
                return s.recall, float(t)
        return 0.0, 1.0


def levels_strip(frame: np.ndarray) -> np.ndarray:
    """One crop of the rear camera at each level, side by side, labelled."""
    rng = np.random.default_rng(SEED)
    crop = (slice(130, 470), slice(250, 650))
    tiles = []
    for lux in LEVELS:
        img = frame if lux is None else darken(frame, NightLevel(lux), rng)
        tile = np.ascontiguousarray(img[crop])
        cv2.putText(tile, "day" if lux is None else f"{lux:g} lux", (8, 28), 0, 0.8, (255, 255, 255), 2)
        tiles.append(tile)
    rows = [np.hstack(tiles[:4]), np.hstack(tiles[4:])]
    return cv2.resize(np.vstack(rows), None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)


def cpu_ms(work: Callable[[], object]) -> float:
    work()
    start = time.process_time()
    for _ in range(COST_ROUNDS):
        work()
    return (time.process_time() - start) / COST_ROUNDS * 1000.0


def costs(frame: np.ndarray, int8: PersonDetector) -> None:
    dark = darken(frame, NightLevel(1.25), np.random.default_rng(SEED))
    small = preprocess([frame])[0]
    rows = {
        "luma measurement (every frame)": lambda: mean_luma(frame),
        "usual input: bilinear stretch + RGB": lambda: preprocess([frame]),
        "shipped dark input: average + gamma + RGB": lambda: preprocess([dark], SHIPPED),
        "gamma on the 300x300 input": lambda: brighten(small),
        "CLAHE on the 300x300 input": lambda: clahe(small),
        "inference, int8, one frame": lambda: int8.run_batch(small[None]),
    }
    print(f"\nCPU per frame (768x576, {COST_ROUNDS} rounds, process time):")
    for name, work in rows.items():
        print(f"  {name:45s} {cpu_ms(work):6.2f} ms")


def plot(table: dict[str, list[Score]], lumas: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["day" if lux is None else f"{lux:g} lux" for lux in LEVELS]
    labels = [f"{name}\nluma {luma:.0f}" for name, luma in zip(names, lumas, strict=True)]
    x = np.arange(len(LEVELS))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7.5), sharex=True, height_ratios=(2, 1))
    for name, scores in table.items():
        # The shipped path is the usual input above luma 50: drawn wide and pale so `none` shows through it there.
        style = {"linewidth": 5, "color": "black", "alpha": 0.35} if name == "shipped" else {"linewidth": 1.4}
        top.plot(x, [s.recall for s in scores], marker="o", label=name, **style)
        bottom.plot(x, [s.false_per_frame for s in scores], marker="o", label=name, **style)
    switch = next(i for i, luma in enumerate(lumas) if luma < SHIPPED.below_luma) - 0.5
    for axis in (top, bottom):
        axis.axvline(switch, color="grey", linestyle=":", linewidth=1)
    top.text(switch + 0.05, 0.95, f"shipped path on below luma {SHIPPED.below_luma:g}", fontsize=8, color="grey")
    top.set_ylabel("recall (of the daylight boxes)")
    top.set_ylim(0, 1.02)
    top.grid(alpha=0.3)
    top.legend(loc="lower left", fontsize=9)
    top.set_title("int8 person model at 0.38 on darkened demo footage (159 frames, IoU >= 0.5)", fontsize=11)
    bottom.set_ylabel("false boxes per frame")
    bottom.grid(alpha=0.3)
    bottom.set_xticks(x, labels, fontsize=8)
    bottom.set_xlabel(f"scene illuminance (camera of tests/night.py: fully exposed down to {CAP_LUX:.0f} lux)")
    fig.tight_layout()
    fig.savefig(HERE / "night_recall.png", dpi=90)
    plt.close(fig)


def main() -> None:
    fp32 = PersonDetector(DetectorConfig(model="fp32", threads=1, low_light=LowLightConfig(mode="off")))
    int8 = PersonDetector(DetectorConfig(model="int8", threads=1, low_light=LowLightConfig(mode="off")))
    frames = every_fifth_frame()
    truth = [fp32.detect([f])[0].xyxy for f in frames]
    bench = Bench(int8, truth)
    print(
        f"{len(frames)} frames, {sum(len(t) for t in truth)} daylight boxes (float model >= 0.40) as truth; "
        f"camera: {ELECTRONS_PER_LUX:.0f} e- per lux on white, white = {FULL_SCALE_E:.0f} e- at the gain cap "
        f"(fully exposed down to {CAP_LUX:.0f} lux)"
    )
    print(f"{'level':>9} {'luma':>5}  " + "  ".join(f"{n:>12}" for n in PATHS) + "   shipped at none's false boxes")
    table: dict[str, list[Score]] = {name: [] for name in PATHS}
    lumas = []
    for lux in LEVELS:
        rng = np.random.default_rng(SEED)
        dark = frames if lux is None else [darken(f, NightLevel(lux), rng) for f in frames]
        lumas.append(float(np.mean([mean_luma(d) for d in dark])))
        found = {name: bench.boxes(dark, path) for name, path in PATHS.items()}
        for name in PATHS:
            table[name].append(bench.score(found[name], int8.threshold))
        budget = table["none"][-1].false_boxes
        recall, at = bench.at_equal_false(found["shipped"], budget)
        cells = "  ".join(f"{s[-1].recall:6.1%} {s[-1].false_per_frame:4.2f}" for s in table.values())
        label = "day" if lux is None else f"{lux:g} lux"
        print(f"{label:>9} {lumas[-1]:5.0f}  {cells}   {recall:.1%} at {at:.2f}", flush=True)
    print("(each cell: recall, false boxes per frame)")
    darkest = len(LEVELS) - 1
    visible = LEVELS.index(0.6)
    for i in (visible, darkest):
        print(
            f"night target at {LEVELS[i]:g} lux: recall {table['none'][i].recall:.1%} before, "
            f"{table['shipped'][i].recall:.1%} after (false boxes per frame "
            f"{table['none'][i].false_per_frame:.2f} before, {table['shipped'][i].false_per_frame:.2f} after)"
        )
    plot(table, lumas)
    cv2.imwrite(str(HERE / "night_levels.jpg"), levels_strip(frames[STRIP_FRAME]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {HERE / 'night_recall.png'} and {HERE / 'night_levels.jpg'}")
    costs(frames[0], int8)


if __name__ == "__main__":
    main()
