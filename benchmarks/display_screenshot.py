"""Screenshots of the driver's display for the README, from the real page in headless Chromium.

    .venv/bin/python benchmarks/display_screenshot.py   # writes benchmarks/display-{day,night}.png

The page is fed by the scripted alert publisher (tests/services/alert_publisher.py) with the demo bus's cameras: a
warning on the right, two people on the left, the front clear and the rear camera unable to see in the dark.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from edge.config import DEMO_CONFIG  # noqa: E402
from tests.conftest import free_port, to_toml  # noqa: E402
from tests.services.display_rig import DisplayServer, Publisher, chromium, wait_for  # noqa: E402

SCENE = [
    {"zone": "right/blind-spot", "level": "warning", "tracks": [3], "nearest_m": 1.2},
    {"zone": "left/blind-spot", "level": "info", "tracks": [1, 2], "nearest_m": 3.4},
    {"health": "rear", "status": "degraded", "detail": "dark"},
    {"zone": "rear/behind", "level": "unknown"},
]
ATTR = "return document.getElementById('side-{}').dataset.{}"
HOLD_BLINK = """
for (const el of document.querySelectorAll('.side[data-level=warning]'))
  el.style.setProperty('border-color', 'var(--warn)', 'important');  // CSSOM: allowed by the page's CSP
"""


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="vigie-screenshot-"))
    data = tomllib.loads(DEMO_CONFIG.read_text())
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    data["alerts"]["endpoint"] = endpoint
    config = folder / "bus.toml"
    config.write_text(to_toml(data))
    publisher = Publisher(config, endpoint, folder / "publisher.log")
    display = DisplayServer(config, free_port(), folder / "display.log")
    driver = chromium(1024, 600)
    try:
        for theme in ("day", "night"):
            driver.get(f"{display.url}?theme={theme}")
            wait_for(lambda: driver.execute_script(ATTR.format("front", "level")) == "clear", "the page live")
            for command in SCENE:
                publisher.send(**command)
            wait_for(lambda: driver.execute_script(ATTR.format("rear", "health")) == "degraded", "the scene")
            wait_for(lambda: driver.execute_script(ATTR.format("right", "level")) == "warning", "the warning")
            # The warning's edge blinks: hold it lit so the picture is the same every time.
            driver.execute_script(HOLD_BLINK)
            out = HERE / f"display-{theme}.png"
            driver.save_screenshot(str(out))
            print(out)
    finally:
        driver.quit()
        display.stop()
        publisher.stop(signal.SIGKILL)


if __name__ == "__main__":
    main()
