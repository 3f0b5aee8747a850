"""Writes the API server accepted (2xx) over a run, from every client: the benchmark, the operator,
and the control plane (scheduler, controllers, kwok) reacting to them.

Read from kube-apiserver's own ``apiserver_request_total`` before and after, so it counts
what the issue's "writes per Workspace (operator + control plane caused by it)" means without
instrumenting anyone. Left out, because they happen whatever the benchmark does or do not
write anything: Lease renewals (every node, controller and the operator renew theirs on a
timer) and the review requests (TokenReview, SubjectAccessReview), which are POSTs that
store nothing.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION"})
NOT_COUNTED = frozenset(
    {"leases", "tokenreviews", "subjectaccessreviews", "selfsubjectaccessreviews"}
)
_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def writes_by_resource(metrics: str) -> Counter[str]:
    """{"<resource>[/<subresource>]": writes} from a kube-apiserver /metrics page."""
    found: Counter[str] = Counter()
    for line in metrics.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group(1)))
        if labels.get("verb") not in WRITE_VERBS or labels.get("resource") in NOT_COUNTED:
            continue
        if labels.get("dry_run") or not labels.get("code", "").startswith("2"):
            continue  # a dry run or a refused request stores nothing
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        found[resource] += int(float(match.group(2)))
    return found


class ApiWrites:
    """``start()`` then ``stop()``; ``per(count)`` says how many writes each item cost."""

    def __init__(self, bin_dir: Path, kubeconfig: str) -> None:
        self.argv = [str(bin_dir / "kubectl"), "--kubeconfig", kubeconfig, "get", "--raw"]
        self.before: Counter[str] = Counter()
        self.used: Counter[str] = Counter()

    def _read(self) -> Counter[str]:
        proc = subprocess.run(
            [*self.argv, "/metrics"], capture_output=True, text=True, check=True, timeout=120
        )
        return writes_by_resource(proc.stdout)

    def start(self) -> ApiWrites:
        self.before = self._read()
        return self

    def stop(self) -> Counter[str]:
        self.used = self._read() - self.before
        return self.used

    def total(self) -> int:
        return sum(self.used.values())

    def report(self, count: int) -> str:
        parts = ", ".join(f"{name} {n / count:.2f}" for name, n in self.used.most_common())
        return f"API writes, all clients: {self.total() / count:.1f} per item ({parts})"
