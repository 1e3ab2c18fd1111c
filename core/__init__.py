"""What every part of vigie may import, and which imports no other part of vigie: errors, atomic file writing,
model loading. The direction is one way: replay → edge → recorder, uploader → core."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]  # where the bundled models, footage and configs live
