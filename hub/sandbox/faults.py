"""Deterministic fault injection for the sandbox HTTP servers.

A ``FaultPlan`` is a list of ``FaultRule``s; each rule fires on a numbered range of calls to one service
("fail calls 3–5"), counted from the moment the plan was installed.  Plans can be built in code or parsed
from a compact spec (also read from the env var ``HUB_SANDBOX_FAULTS``)::

    webshop:429@3-5:retry_after=2 ; webshop:503@7 ; webshop:slow@2:delay=5 ; webshop:truncate@4
    webshop:drop@2 ; wechat:45011@3 ; wechat:40001@2 ; wechat:45009@5-6 ; *:500@10-12 ; webshop:500@1-3:path=/orders

Kinds: ``429`` (HTTP 429 + Retry-After), any 5xx status (``500``, ``502``, ``503``, ``504``), ``slow``
(sleep ``delay`` seconds before answering: triggers client timeouts), ``stall`` (carry the request out,
then wait ``delay`` seconds before answering: the write is done, the client does not know yet — a killed
or timed-out client leaves it in doubt), ``truncate`` (announce the full Content-Length, send half the body,
close), ``drop`` (close the connection without any response), and
WeChat errcodes ``40001``, ``42001``, ``45009``, ``45011`` (HTTP 200 with errcode/errmsg, as WeChat does).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

ENV_VAR = "HUB_SANDBOX_FAULTS"
HTTP_KINDS = {"429", "500", "502", "503", "504", "slow", "stall", "truncate", "drop"}
WECHAT_KINDS = {"40001", "42001", "45009", "45011"}


@dataclass(frozen=True)
class FaultRule:
    service: str  # "webshop" | "wechat" | "*"
    kind: str
    first: int  # 1-based call number, inclusive
    last: int
    retry_after: float = 1.0
    delay: float = 5.0
    path: str = ""  # only calls whose path contains this substring are counted for this rule

    def matches(self, service: str, path: str) -> bool:
        return self.service in ("*", service) and (not self.path or self.path in path)


@dataclass
class FaultPlan:
    rules: list[FaultRule] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """Parse ``service:kind@first[-last][:key=value...]`` items separated by ``;``."""
        rules = []
        for item in (s.strip() for s in spec.replace("\n", ";").split(";")):
            if not item:
                continue
            head, _, calls_opts = item.partition("@")
            service, _, kind = head.partition(":")
            calls, *opts = calls_opts.split(":")
            first_s, _, last_s = calls.partition("-")
            kw: dict[str, object] = {}
            for o in opts:
                k, _, v = o.partition("=")
                kw[k.strip()] = v.strip() if k.strip() == "path" else float(v)
            kind = kind.strip()
            if kind not in HTTP_KINDS | WECHAT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r} in {item!r}")
            first = int(first_s)
            rules.append(FaultRule(service.strip(), kind, first, int(last_s) if last_s else first, **kw))
        return cls(rules)

    @classmethod
    def from_env(cls) -> FaultPlan:
        return cls.parse(os.environ.get(ENV_VAR, ""))

    def __bool__(self) -> bool:
        return bool(self.rules)


class FaultController:
    """Counts calls per (rule) and tells a server which fault, if any, applies to the current call.

    Thread-safe; replacing the plan (``controller.plan = ...``) resets every counter so "calls 3–5"
    always means the 3rd to 5th call after the plan was set.
    """

    def __init__(self, plan: FaultPlan | None = None):
        self._lock = threading.Lock()
        self._plan = plan or FaultPlan()
        self._counts: dict[int, int] = {}
        self.calls: dict[str, int] = {}  # total calls per service, for tests and reports
        self.fired: list[tuple[str, str, int]] = []  # (service, kind, call number)

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    @plan.setter
    def plan(self, plan: FaultPlan | str) -> None:
        with self._lock:
            self._plan = FaultPlan.parse(plan) if isinstance(plan, str) else plan
            self._counts = {}
            self.fired = []

    def next_fault(self, service: str, path: str) -> FaultRule | None:
        with self._lock:
            self.calls[service] = self.calls.get(service, 0) + 1
            hit = None
            for i, rule in enumerate(self._plan.rules):
                if not rule.matches(service, path):
                    continue
                n = self._counts.get(i, 0) + 1
                self._counts[i] = n
                if hit is None and rule.first <= n <= rule.last:
                    hit = rule
                    self.fired.append((service, rule.kind, n))
            return hit
