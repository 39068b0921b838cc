"""Private RabbitMQ nodes for fault tests: started and killed by the test, never the shared
broker on 5672.

Each node has its own name (``bp<run>_<i>@localhost``), AMQP port, distribution port, data,
log and config directories, and no plugins; the nodes of a cluster share an Erlang cookie
through a private HOME (rabbitmqctl is run with the same HOME). ``RabbitCluster`` joins them
into one cluster. The nodes register with the machine's epmd (port 4369) like any Erlang node;
that is the only thing they share with the shared broker.

    cluster = RabbitCluster(tmp_path, size=3).start()
    cluster.amqp_uri()           # amqp://…:p1/;amqp://…:p2/;amqp://…:p3/ (kombu fails over)
    cluster.kill(cluster.nodes[1])        # kill -9
    cluster.restart(cluster.nodes[1])     # same name and data: it rejoins
    cluster.stop()
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.gateway import free_port

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")
QUEUES = Path("/usr/lib/rabbitmq/bin/rabbitmq-queues")
START_TIMEOUT = 120


def available() -> bool:
    return SERVER.exists() and CTL.exists()


@dataclass
class RabbitNode:
    name: str  # Erlang node name: short@localhost
    port: int  # AMQP
    dist_port: int  # Erlang distribution (inter-node)
    base: Path
    home: Path  # shared by the cluster's nodes: the Erlang cookie
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.base / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.base / "node.pid"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            # rabbitmqctl's own distribution ports, away from every other node's
            "RABBITMQ_CTL_DIST_PORT_MIN": str(self.dist_port + 1),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(self.dist_port + 9),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(self.base / "plugins-expand"),
            "RABBITMQ_ENABLED_PLUGINS": "",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            # inter-node traffic on loopback only, like everything else here
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def prepare(self) -> None:
        for sub in ("mnesia", "log", "plugins-expand"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "rabbitmq-env.conf").write_text("# private node: everything set by env\n")
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "advanced.config").write_text("[].\n")
        (self.base / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    f"listeners.tcp.default = 127.0.0.1:{self.port}",
                    "loopback_users = none",
                    "disk_free_limit.absolute = 50MB",
                    "vm_memory_high_watermark.relative = 0.2",
                    "log.console = false",
                    "log.file.level = warning",
                    # A node killed -9 is noticed by its peers within seconds.
                    "net_ticktime = 10",
                    "cluster_partition_handling = pause_minority",
                    "",
                ]
            )
        )

    def start(self) -> RabbitNode:
        self.prepare()
        self.process = subprocess.Popen(  # noqa: S603 - the installed server script
            [str(SERVER)],
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def ctl(self, *args: str, timeout: float = 60, check: bool = True) -> str:
        result = subprocess.run(  # noqa: S603
            [str(CTL), "-n", self.name, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.stderr or result.stdout}")
        return result.stdout

    def await_startup(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"node {self.name} exited: {self.tail()}")
            try:
                self.ctl("await_startup", "--timeout", "10", timeout=30)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"node {self.name} did not start: {self.tail()}") from None
                time.sleep(1)

    def beam_pid(self) -> int:
        return int(self.pid_file.read_text().split()[0])

    def kill(self) -> None:
        """kill -9 of the Erlang VM: no goodbye to its peers or its clients."""
        os.kill(self.beam_pid(), signal.SIGKILL)
        self.kills += 1
        if self.process is not None:
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.ctl("stop", timeout=60, check=False)
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def amqp_url(self, vhost: str = "/") -> str:
        from urllib.parse import quote

        return f"amqp://guest:guest@127.0.0.1:{self.port}/{quote(vhost, safe='')}"

    def tail(self, lines: int = 30) -> str:
        logs = sorted((self.base / "log").glob("*.log")) + [self.log]
        text = "\n".join(p.read_text(errors="replace") for p in logs if p.exists())
        return "\n".join(text.splitlines()[-lines:])


class RabbitCluster:
    """``size`` private nodes joined into one cluster (one node: a private broker)."""

    def __init__(self, base: Path, size: int = 3):
        run = uuid.uuid4().hex[:6]
        home = base / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        self.nodes = [
            RabbitNode(
                name=f"bp{run}_{i}@localhost",
                port=free_port(),
                dist_port=free_port(),
                base=base / f"node{i}",
                home=home,
            )
            for i in range(1, size + 1)
        ]

    def start(self) -> RabbitCluster:
        for node in self.nodes:
            node.start()
        try:
            for node in self.nodes:
                node.await_startup()
            first = self.nodes[0]
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.name)
                node.ctl("start_app")
            for node in self.nodes:
                node.await_startup()
        except BaseException:
            self.stop()
            raise
        return self

    def amqp_uri(self, vhost: str = "/") -> str:
        """Every node, for kombu's failover (``;`` between full URLs)."""
        return ";".join(node.amqp_url(vhost) for node in self.nodes)

    def running(self) -> list[RabbitNode]:
        return [node for node in self.nodes if node.running]

    def ctl(self, *args: str, **kwargs: Any) -> str:
        """rabbitmqctl against a running node."""
        return self.running()[0].ctl(*args, **kwargs)

    def kill(self, node: RabbitNode) -> None:
        node.kill()

    def restart(self, node: RabbitNode) -> None:
        node.start()
        node.await_startup()

    def node_named(self, name: str) -> RabbitNode:
        (node,) = [n for n in self.nodes if n.name == name]
        return node

    def queue_leader(self, queue: str, vhost: str = "/") -> RabbitNode:
        """The node holding the quorum queue's leader."""
        out = self.ctl("list_queues", "-p", vhost, "--no-table-headers", "-q", "name", "leader")
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == queue:
                return self.node_named(parts[1])
        raise LookupError(f"no quorum queue {queue} in {out!r}")

    def queue_members_online(self, queue: str, vhost: str = "/") -> set[str]:
        out = self.ctl("list_queues", "-p", vhost, "--no-table-headers", "-q", "name", "online")
        for line in out.splitlines():
            name, _, rest = line.partition("\t")
            if name == queue:
                return set(rest.strip("[] \n").replace("'", "").replace(",", " ").split())
        return set()

    def queue_types(self, vhost: str = "/") -> dict[str, tuple[str, bool, bool]]:
        """name → (type, durable, auto_delete) of every queue in ``vhost``."""
        out = self.ctl(
            "list_queues",
            "-p",
            vhost,
            "--no-table-headers",
            "-q",
            "name",
            "type",
            "durable",
            "auto_delete",
        )
        found = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 4:
                found[parts[0]] = (parts[1], parts[2] == "true", parts[3] == "true")
        return found

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def remove(self) -> None:
        for node in self.nodes:
            shutil.rmtree(node.base, ignore_errors=True)
