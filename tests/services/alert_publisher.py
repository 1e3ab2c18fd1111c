"""A scripted stand-in for the daemon's alert bus: a real ZeroMQ PUB socket speaking vigie.alert/1, in its own process
so a test can SIGKILL it (a daemon dying) or SIGSTOP it (a daemon hanging) like the real one.

It states every zone and every camera's health every `--period` seconds, as the daemon does (zones every
`alerts.repeat_s`, cameras on the heartbeat), and applies commands read from stdin, one JSON object a line, publishing
each change at once:

    {"zone": "right/blind-spot", "level": "warning", "tracks": [3], "nearest_m": 1.2}
    {"health": "left", "status": "stalled", "detail": "no frame for 1.6 s"}     (a camera, recorder, vehicle, events)
    {"raw": ["alert", "not json"]}                                               (frames sent as they are)

It prints `ready` once bound, and `accepted N` each time a subscriber connects (N connections so far).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
import tomllib
from pathlib import Path

import zmq
from zmq.utils.monitor import parse_monitor_message

SCHEMA = "vigie.alert/1"


class Script:
    def __init__(self, config: dict):
        self.bus_id = config["bus"]["id"]
        self.sides = {c["name"]: c["side"] for c in config["cameras"]}
        self.zones = {
            f"{c['name']}/{z['name']}": {"level": "clear", "tracks": [], "nearest_m": None}
            for c in config["cameras"]
            for z in c["zones"]
        }
        self.health = {name: {"status": "ok", "detail": "frames arriving"} for name in self.sides}

    def alert(self, key: str) -> list[bytes]:
        camera, zone = key.split("/", 1)
        z = self.zones[key]
        msg = {
            "schema": SCHEMA,
            "bus_id": self.bus_id,
            "camera": camera,
            "side": self.sides[camera],
            "level": z["level"],
            "zone": zone,
            "track_ids": z["tracks"],
            "nearest_m": z["nearest_m"],
            "frame_ts": time.time(),
            "sent_ts": time.time(),
        }
        return [b"alert", json.dumps(msg).encode()]

    def status(self, name: str) -> list[bytes]:
        h = self.health[name]
        msg = {"schema": SCHEMA, "bus_id": self.bus_id, "camera": name, **h, "sent_ts": time.time()}
        return [b"health", json.dumps(msg).encode()]

    def everything(self) -> list[list[bytes]]:
        return [self.alert(k) for k in self.zones] + [self.status(n) for n in self.health]

    def apply(self, command: dict) -> list[list[bytes]]:
        if "zone" in command:
            key = command["zone"]
            self.zones[key] = {
                "level": command["level"],
                "tracks": command.get("tracks", []),
                "nearest_m": command.get("nearest_m"),
            }
            return [self.alert(key)]
        if "health" in command:
            name = command["health"]
            self.health[name] = {"status": command["status"], "detail": command.get("detail", "")}
            return [self.status(name)]
        return [[part.encode() for part in command["raw"]]]


def read_commands(out: queue.Queue) -> None:
    for line in sys.stdin:
        if line.strip():
            out.put(json.loads(line))


def report_accepts(monitor: zmq.Socket) -> None:
    accepted = 0
    while True:
        try:
            event = parse_monitor_message(monitor.recv_multipart())["event"]
        except zmq.ZMQError:
            return
        if event == zmq.EVENT_ACCEPTED:
            accepted += 1
            print(f"accepted {accepted}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True, help="bus config: its bus id, cameras, sides, zones")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--period", type=float, default=0.3)
    args = parser.parse_args()
    script = Script(tomllib.loads(args.config.read_text()))
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    monitor = pub.get_monitor_socket(zmq.EVENT_ACCEPTED)
    pub.bind(args.endpoint)
    threading.Thread(target=report_accepts, args=(monitor,), daemon=True).start()
    commands: queue.Queue = queue.Queue()
    threading.Thread(target=read_commands, args=(commands,), daemon=True).start()
    print("ready", flush=True)
    next_round = time.monotonic()
    while True:
        if time.monotonic() >= next_round:
            next_round = time.monotonic() + args.period
            for frames in script.everything():
                pub.send_multipart(frames)
        try:
            command = commands.get(timeout=max(0.0, next_round - time.monotonic()))
        except queue.Empty:
            continue
        for frames in script.apply(command):
            pub.send_multipart(frames)


if __name__ == "__main__":
    main()
