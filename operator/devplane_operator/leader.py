"""Lease-based leader election (coordination.k8s.io/v1), so two replicas are safe.

Only the replica holding the Lease watches and reconciles; the other waits, serving /healthz
and /metrics, and takes over when the Lease is not renewed for ``lease_seconds`` (the leader
died or was partitioned). A leader that cannot renew in time exits at once rather than risk
two replicas writing (crash-only, like client-go's leaderelection with ReleaseOnCancel); the
Deployment restarts it as a standby. On a clean shutdown the leader releases the Lease, so
the standby takes over in about one retry period instead of a full lease duration.

Expiry is judged by the local monotonic clock ("the record has not changed for a lease
duration"), not by comparing renewTime with our wall clock, so clock skew between nodes
does not matter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from .kube import Kube, KubeError
from .metrics import LEADER

log = logging.getLogger(__name__)


class LostLeadership(RuntimeError):
    """The Lease could not be renewed in time; the process must stop reconciling now."""


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self, kube: Kube, namespace: str, name: str, identity: str, lease_seconds: float
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.retry = max(1.0, lease_seconds / 5)
        self.renew_every = lease_seconds / 3
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._lease: dict[str, Any] | None = None

    def _spec(self, transitions: int, acquire_time: str) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_seconds),
            "acquireTime": acquire_time,
            "renewTime": _micro_time(),
            "leaseTransitions": transitions,
        }

    async def _try_acquire(self) -> bool:
        lease = await self.kube.get("Lease", self.namespace, self.name)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(0, _micro_time()),
            }
            return await self._write(self.kube.create("Lease", body))
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime") or "")
        now = time.monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        expired = now - self._observed_at >= float(spec.get("leaseDurationSeconds") or 15)
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
        lease["spec"] = self._spec(transitions, _micro_time())
        # PUT with the resourceVersion we read: only one contender can win.
        return await self._write(self.kube.replace("Lease", lease))

    async def _write(self, write: Coroutine[Any, Any, dict[str, Any]]) -> bool:
        """Whether this contender's write of the Lease won (a conflict: someone else did)."""
        try:
            self._lease = await write
        except KubeError as err:
            if err.conflict:
                return False
            raise
        return True

    async def acquire(self) -> None:
        """Wait until this replica holds the Lease."""
        log.info("waiting for the Lease %s/%s as %s", self.namespace, self.name, self.identity)
        while True:
            try:
                if await self._try_acquire():
                    LEADER.set(1)
                    log.info("became the leader")
                    return
            except KubeError as err:
                log.warning("leader election: %s", err)
            await asyncio.sleep(self.retry)

    async def keep(self) -> None:
        """Renew the Lease until cancelled; raise LostLeadership if renewal fails too long."""
        last_renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                assert self._lease is not None
                self._lease["spec"]["renewTime"] = _micro_time()
                self._lease = await self.kube.replace("Lease", self._lease)
                last_renewed = time.monotonic()
                continue
            except KubeError as err:
                log.warning("could not renew the leader Lease: %s", err)
                if err.conflict:  # someone else wrote it: we are no longer the leader
                    LEADER.set(0)
                    raise LostLeadership("the Lease was taken over") from err
            if time.monotonic() - last_renewed > self.lease_seconds * 2 / 3:
                LEADER.set(0)
                raise LostLeadership("could not renew the Lease in time")

    async def release(self) -> None:
        """Give the Lease up (clean shutdown), so a standby takes over quickly."""
        LEADER.set(0)
        if self._lease is None:
            return
        self._lease["spec"]["holderIdentity"] = None
        self._lease["spec"]["leaseDurationSeconds"] = 1
        try:
            await self.kube.replace("Lease", self._lease)
        except KubeError as err:
            log.warning("could not release the leader Lease: %s", err)
