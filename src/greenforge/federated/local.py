"""``InProcessGrid``: a Flower Grid that hands each message to a ClientApp in this process.

Flower's simulation engine runs ClientApps in Ray actors (seconds to start, one process per
actor). For unit tests and quick local runs this Grid calls the same ``ClientApp`` object
directly, one node after the other, each node with its own persistent ``Context`` (node config
``partition-id``/``num-partitions`` as in Flower's simulation), so strategies, mods and apps
run unchanged. It is not a deployment: no isolation, no parallelism.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from greenforge.errors import ConfigError
from greenforge.federated._flwr import import_flwr

if TYPE_CHECKING:
    from flwr.app import Context, Message
    from flwr.clientapp import ClientApp

_flwr = import_flwr("the in-process grid")
_Grid: type = _flwr.serverapp.Grid


def _claim_task_identity() -> None:
    """Flower's runtimes say which run/task this process serves before any Message is built;
    here this process is the runtime, so it says so (once, when no runtime did)."""
    from flwr.supercore.task_identity import TaskIdentity

    try:
        TaskIdentity.run_id  # noqa: B018 - the property raises when unset
    except RuntimeError:
        TaskIdentity.task_id = 1
        TaskIdentity.run_id = 1
        TaskIdentity.node_id = 1  # the SuperLink's node id


class InProcessGrid(_Grid):  # type: ignore[misc]
    """Runs ``client_app`` for ``num_nodes`` simulated nodes in this process."""

    def __init__(self, client_app: ClientApp, num_nodes: int, *, run_config: Any = None) -> None:
        if not isinstance(num_nodes, int) or num_nodes < 1:
            raise ConfigError(f"bad num_nodes {num_nodes!r}: use an int >= 1.")
        self.client_app = client_app
        self._run: Any = None
        _claim_task_identity()
        flwr = _flwr
        ids = [int.from_bytes(os.urandom(7), "big") + 1 for _ in range(num_nodes)]
        self.contexts: dict[int, Context] = {
            node_id: flwr.app.Context(
                run_id=0,
                node_id=node_id,
                node_config={"partition-id": i, "num-partitions": num_nodes},
                state=flwr.app.RecordDict(),
                run_config=dict(run_config or {}),
            )
            for i, node_id in enumerate(ids)
        }
        self._ids = itertools.count(1)
        self._replies: dict[str, Message] = {}

    def set_run(self, run: Any) -> None:
        self._run = run

    @property
    def run(self) -> Any:
        return self._run

    def create_message(
        self,
        content: Any,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        msg: Message = _flwr.app.Message(
            content, dst_node_id, message_type, ttl=ttl, group_id=group_id
        )
        return msg

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        out: list[str] = []
        for msg in messages:
            node = msg.metadata.dst_node_id
            if node not in self.contexts:
                raise ConfigError(
                    f"message for unknown node {node}: nodes are {list(self.contexts)}."
                )
            msg_id = f"inprocess-{next(self._ids)}"
            # as Flower's own in-memory grid does: the link assigns the message id
            msg.metadata.__dict__["_message_id"] = msg_id
            msg.metadata.__dict__["_src_node_id"] = 0
            try:
                reply = self.client_app(msg, self.contexts[node])
            except Exception as exc:  # a client failure is a reply with an error, as in Flower
                reply = _flwr.app.Message(
                    _flwr.app.Error(code=0, reason=f"{type(exc).__name__}: {exc}"), reply_to=msg
                )
            self._replies[msg_id] = reply
            out.append(msg_id)
        return out

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return self.pull_messages(list(self.push_messages(messages)))
