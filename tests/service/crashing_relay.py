"""Run the outbox relay once and die by SIGKILL after publishing, before marking rows sent.

python tests/service/crashing_relay.py DATABASE_URL AMQP_URI SERVICE
"""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa  # noqa: E402

from services.common import outbox  # noqa: E402
from services.common.amqp import ConfirmingPublisher  # noqa: E402


def die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


outbox.mark_sent = die
url, amqp_uri, service = sys.argv[1:4]
outbox.relay_pending(sa.create_engine(url), ConfirmingPublisher(amqp_uri), service=service)
sys.exit("the relay was expected to die")
