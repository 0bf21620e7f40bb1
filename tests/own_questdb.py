"""A QuestDB server of the test's own, which the test may stop, start and configure.

The shared QuestDB is never stopped; tests that need an outage or server-side credentials use this
one (its ports from ``SEAMFILL_OWN_QUESTDB_*``, data under ``SEAMFILL_OWN_QUESTDB_DIR``). One test
at a time holds it (an exclusive file lock), so parallel test processes take turns.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["OwnQuestDB", "own_questdb"]

JAR = Path(os.environ.get("SEAMFILL_CACHE", Path.home() / ".cache/seamfill")) / (
    "questdb-9.3.4.jar"
)
ROOT = Path(os.environ.get("SEAMFILL_OWN_QUESTDB_DIR", "/tmp/faults-qdb"))
HTTP = int(os.environ.get("SEAMFILL_OWN_QUESTDB_HTTP_PORT", "9100"))
PG = int(os.environ.get("SEAMFILL_OWN_QUESTDB_PG_PORT", "8912"))
ILP = int(os.environ.get("SEAMFILL_OWN_QUESTDB_ILP_PORT", "9109"))
MIN_PORT = int(os.environ.get("SEAMFILL_OWN_QUESTDB_MIN_PORT", "9103"))


class OwnQuestDB:
    """One QuestDB process on the own ports; ``user``/``password`` set server-side auth."""

    def __init__(self, user: str = "", password: str = "") -> None:
        self.user, self.password = user, password
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = f"http://127.0.0.1:{HTTP}"

    @property
    def url(self) -> str:
        """The HTTP address with the credentials in it, percent-encoded."""
        if not self.user:
            return self.http
        q = urllib.parse.quote
        return f"http://{q(self.user, safe='')}:{q(self.password, safe='')}@127.0.0.1:{HTTP}"

    def _conf(self) -> str:
        lines = [
            f"http.bind.to=127.0.0.1:{HTTP}",
            f"http.min.net.bind.to=127.0.0.1:{MIN_PORT}",
            f"pg.net.bind.to=127.0.0.1:{PG}",
            f"line.tcp.net.bind.to=127.0.0.1:{ILP}",
            "line.udp.enabled=false",
            "telemetry.enabled=false",
        ]
        if self.user:
            lines += [
                f"http.user={self.user}",
                f"http.password={self.password}",
                f"pg.user={self.user}",
                f"pg.password={self.password}",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        (ROOT / "conf").mkdir(parents=True, exist_ok=True)
        (ROOT / "conf" / "server.conf").write_text(self._conf())
        with (ROOT / "stdout.log").open("ab") as log:
            self.proc = self._spawn(log)
        deadline = time.monotonic() + 90
        while not self.up():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"own QuestDB did not start: see {ROOT / 'stdout.log'}")
            time.sleep(0.1)

    @staticmethod
    def _spawn(log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                "java",
                "-Xms128m",
                "-Xmx1g",
                "-p",
                str(JAR),
                "-m",
                "io.questdb/io.questdb.ServerMain",
                "-d",
                str(ROOT),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def up(self) -> bool:
        req = urllib.request.Request(f"{self.http}/exec?query=select%201")
        if self.user:
            import base64

            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def kill(self) -> None:
        """SIGKILL: the outage a crash gives (no clean shutdown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@contextmanager
def own_questdb(user: str = "", password: str = "") -> Iterator[OwnQuestDB]:
    """Start a fresh own QuestDB (empty data dir), yield it, stop it; one holder at a time."""
    if not JAR.exists() or shutil.which("java") is None:
        raise AssertionError(f"the QuestDB jar ({JAR}) and java are needed: run `make services`")
    ROOT.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{ROOT}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(ROOT, ignore_errors=True)
        server = OwnQuestDB(user, password)
        server.start()
        try:
            yield server
        finally:
            server.stop()
