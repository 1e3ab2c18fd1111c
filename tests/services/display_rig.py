"""The parts of a driver's-display test, all real: the scripted alert publisher and `vigie display` as processes, and
Debian's Chromium in headless mode driven by Selenium through chromium-driver (`make test-services` installs both).

Shared by tests/test_display.py, benchmarks/bench_display.py and benchmarks/display_screenshot.py.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def have_browser() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30.0) -> object:
    """Poll until `condition` returns something truthy and return it (generous timeout: the machine may be busy)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return value


class _Process:
    """A child process whose stdout lines are collected on a thread (a blocking read never hangs the test)."""

    def __init__(self, args: list[str], log: Path, stdin: bool = False):
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def line(self, prefix: str, what: str, timeout: float = 60.0) -> str:
        def found() -> str | None:
            while not self.lines.empty():
                self.seen.append(self.lines.get())
            return next((line for line in self.seen if line.startswith(prefix)), None)

        return str(wait_for(found, what, timeout))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class Publisher(_Process):
    """tests/services/alert_publisher.py: every zone and camera stated every `period` s; commands change them."""

    def __init__(self, config: Path, endpoint: str, log: Path, period: float = 0.3):
        args = [sys.executable, "-m", "tests.services.alert_publisher", "--config", str(config)]
        super().__init__([*args, "--endpoint", endpoint, "--period", str(period)], log, stdin=True)
        self.line("ready", "the publisher to bind")

    def send(self, **command: object) -> float:
        """Apply one command (see the publisher's docstring); returns the wall-clock time it was handed over."""
        assert self.proc.stdin is not None
        sent = time.time()
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return sent

    def accepted(self) -> int:
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        counts = [int(line.split()[1]) for line in self.seen if line.startswith("accepted ")]
        return max(counts, default=0)


class DisplayServer(_Process):
    """`vigie display` as the driver's screen runs it."""

    def __init__(self, config: Path, port: int, log: Path, *extra: str):
        args = [sys.executable, "-m", "edge", "display", "--config", str(config), "--listen", f"127.0.0.1:{port}"]
        super().__init__([*args, *extra], log)
        self.url = self.line("vigie display: ", "the display to listen").split()[2]


def chromium(width: int = 1024, height: int = 600):
    """Headless Chromium; sound allowed without a touch, as a kiosk is set up (see the README)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # as root in a container
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    # The page itself at exactly this size (a 1024x600 cab screen), whatever the headless window adds around it.
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return driver
