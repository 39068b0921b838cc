"""Residents answering a poll over HTTP at a set rate, retrying as docs/api.md tells clients to:
a 5xx, 409, 429, a timeout or a refused connection is sent again after a pause — the same
request with the same Idempotency-Key and token — until it is accepted. For the fault tests,
in a process of its own (the test process stays free to break things):

    python -m tests.support.intake_load --url http://127.0.0.1:PORT --poll POLL_ID \\
        --key jwt_private.pem --answers '{"veilig_buurt": 3}' --rate 200 \\
        --stop STOPFILE --out RESULT.json

It runs until STOPFILE exists (or ``--max-seconds`` have passed: it always stops by itself),
then finishes the submissions it has begun (each retried for at most ``--give-up`` seconds)
and writes RESULT.json: every submission (its receipt, attempts)
and the wall-clock times of every failed attempt, so a test can tell when the service was
unavailable.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from services.common import tokens
from tests.support.gateway import issue_resident_token

GM = "GM0344"
BUURTEN = ("BU03440111", "BU03440112", "BU03440211", "BU03440312")
AGE_BANDS = ("15_24", "25_44", "45_64", "65_plus", None)
SEXES = ("man", "vrouw", None)
RETRY_PAUSE = 0.25  # seconds between attempts of one submission
TIMEOUT = 10.0  # per attempt


class Load:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.parts = urlsplit(args.url)
        self.private_key = tokens.load_private_key(Path(args.key).read_text())
        self.kid = tokens.key_id(self.private_key.public_key())
        self.answers = json.loads(args.answers)
        self.stop_file = Path(args.stop)
        self.lock = threading.Lock()
        self.submissions: list[dict[str, Any]] = []
        self.failures: list[tuple[float, str]] = []  # (time.time(), what)

    def run(self) -> None:
        threads = [
            threading.Thread(target=self.client, args=(i,), daemon=True)
            for i in range(self.args.clients)
        ]
        started = time.time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        Path(self.args.out).write_text(
            json.dumps(
                {
                    "started": started,
                    "ended": time.time(),
                    "submissions": self.submissions,
                    "failures": self.failures,
                }
            )
        )

    def client(self, seed: int) -> None:
        rng = random.Random(seed)
        # This client's share of the rate; rate 0: each client sends as soon as it is answered.
        interval = self.args.clients / self.args.rate if self.args.rate > 0 else 0.0
        due = time.monotonic() + rng.random() * interval
        connection: http.client.HTTPConnection | None = None
        end = time.monotonic() + self.args.max_seconds
        while not self.stop_file.exists() and time.monotonic() < end:
            time.sleep(max(0.0, due - time.monotonic()))
            due = max(due + interval, time.monotonic() - interval)  # no catching up in bursts
            connection = self.submit(rng, connection)
        if connection is not None:
            connection.close()

    def submit(
        self, rng: random.Random, connection: http.client.HTTPConnection | None
    ) -> http.client.HTTPConnection | None:
        token = issue_resident_token(
            self.private_key,
            municipality=GM,
            buurt=rng.choice(BUURTEN),
            age_band=rng.choice(AGE_BANDS),
            sex=rng.choice(SEXES),
            self_selected=rng.random() < 0.1,
            key_id=self.kid,
        )
        body = json.dumps({"answers": {**self.answers, "veilig_buurt": rng.randint(1, 5)}})
        headers = {
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": str(uuid.uuid4()),
            "Content-Type": "application/json",
        }
        path = f"/api/v1/polls/{self.args.poll}/responses"
        record: dict[str, Any] = {"sent": time.time(), "attempts": 0, "statuses": []}
        give_up = time.monotonic() + self.args.give_up
        while True:
            record["attempts"] += 1
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(
                        self.parts.hostname, self.parts.port, timeout=TIMEOUT
                    )
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                status: Any = response.status
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
                if connection is not None:
                    connection.close()
                connection = None
            record["statuses"].append(status)
            if status == 202:
                record["receipt"] = json.loads(payload)["receipt_id"]
                record["accepted"] = time.time()
                break
            if isinstance(status, int) and status < 500 and status not in (409, 429):
                record["rejected"] = payload.decode(errors="replace")[:300]
                break  # a 4xx that a retry cannot change: a defect, the test will say so
            with self.lock:
                self.failures.append((time.time(), str(status)))
            if time.monotonic() > give_up:
                record["gave_up"] = True
                break
            time.sleep(RETRY_PAUSE)
        with self.lock:
            self.submissions.append(record)
        return connection


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.intake_load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--poll", required=True)
    parser.add_argument("--key", required=True, help="PEM file of the token signing key")
    parser.add_argument("--answers", required=True, help="JSON: the answers to send")
    parser.add_argument(
        "--rate", type=float, default=100.0, help="per second (0: as fast as it is answered)"
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--give-up", type=float, default=180.0)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--stop", required=True)
    parser.add_argument("--out", required=True)
    Load(parser.parse_args()).run()


if __name__ == "__main__":
    main()
