"""Retry policies: how many attempts a task gets, how long to wait between them, and which
errors are worth retrying.

The default for a ``@task`` with no retry arguments is a single attempt (no retries): a notebook
user who hits an error wants to see it at once. ``RetryPolicy.default()`` is Cloacina's classic
policy (3 attempts, exponential backoff from 1 s, capped at 30 s, jitter on).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

_TRANSIENT_TYPES = {
    "ConnectionError",
    "ConnectionResetError",
    "ConnectionRefusedError",
    "ConnectionAbortedError",
    "BrokenPipeError",
    "TimeoutError",
    "TaskTimeoutError",
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "ConnectError",
    "ReadError",
    "RemoteProtocolError",
    "OperationalError",
}
_TRANSIENT_WORDS = ("timeout", "timed out", "temporar", "connection", "unavailable", "try again")


@dataclass(frozen=True)
class BackoffStrategy:
    """How the delay grows between attempts: ``fixed``, ``linear`` or ``exponential``."""

    kind: str = "exponential"
    factor: float = 2.0

    @staticmethod
    def fixed() -> BackoffStrategy:
        """The same delay before every retry."""
        return BackoffStrategy("fixed", 1.0)

    @staticmethod
    def linear(multiplier: float = 1.0) -> BackoffStrategy:
        """Delay ``initial * multiplier * n`` before retry ``n``."""
        return BackoffStrategy("linear", float(multiplier))

    @staticmethod
    def exponential(base: float = 2.0) -> BackoffStrategy:
        """Delay ``initial * base ** (n - 1)`` before retry ``n``."""
        return BackoffStrategy("exponential", float(base))


@dataclass(frozen=True)
class RetryCondition:
    """Which failures are retried: ``all``, ``never``, ``transient``, message ``patterns`` or
    ``error_types`` (exception type names, e.g. ``["ConnectionError"]``)."""

    kind: str = "all"
    patterns: tuple[str, ...] = ()

    @staticmethod
    def all() -> RetryCondition:
        """Retry every failure."""
        return RetryCondition("all")

    @staticmethod
    def never() -> RetryCondition:
        """Never retry."""
        return RetryCondition("never")

    @staticmethod
    def transient_only() -> RetryCondition:
        """Retry timeouts and connection-type errors only."""
        return RetryCondition("transient")

    @staticmethod
    def pattern(patterns: list[str] | tuple[str, ...]) -> RetryCondition:
        """Retry when the error message contains one of ``patterns``."""
        return RetryCondition("patterns", tuple(patterns))

    @staticmethod
    def error_types(names: list[str] | tuple[str, ...]) -> RetryCondition:
        """Retry when the error's type name is one of ``names`` (e.g. ``"ConnectionError"``)."""
        return RetryCondition("error_types", tuple(names))

    def matches(self, error_type: str, message: str) -> bool:
        """Tell whether an error of ``error_type`` with ``message`` should be retried."""
        if self.kind == "all":
            return True
        if self.kind == "never":
            return False
        if self.kind == "transient":
            low = message.lower()
            return error_type in _TRANSIENT_TYPES or any(w in low for w in _TRANSIENT_WORDS)
        if self.kind == "error_types":
            return error_type in self.patterns
        return any(p in message for p in self.patterns)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and delays for one task.

    Attributes
    ----------
    max_attempts: total attempts including the first (1 means no retry).
    initial_delay: seconds before the first retry.
    max_delay: cap on any delay, in seconds.
    backoff_strategy, retry_condition, jitter: see the classes above; jitter scales each delay
        by a random factor in [0.5, 1.0] so that many failing tasks do not retry in lockstep.
    """

    max_attempts: int = 1
    initial_delay: float = 1.0
    max_delay: float = 30.0
    backoff_strategy: BackoffStrategy = field(default_factory=BackoffStrategy)
    retry_condition: RetryCondition = field(default_factory=RetryCondition)
    jitter: bool = False

    @staticmethod
    def builder() -> RetryPolicyBuilder:
        """Start a fluent builder (``RetryPolicy.builder().max_attempts(3).build()``)."""
        return RetryPolicyBuilder()

    @staticmethod
    def default() -> RetryPolicy:
        """Cloacina's classic policy: 3 attempts, exponential from 1 s to 30 s, jitter."""
        return RetryPolicy(3, 1.0, 30.0, BackoffStrategy.exponential(2.0), RetryCondition(), True)

    @staticmethod
    def none() -> RetryPolicy:
        """A single attempt."""
        return RetryPolicy(max_attempts=1)

    @property
    def retries(self) -> int:
        """Number of retries after the first attempt."""
        return self.max_attempts - 1

    def should_retry(self, attempt: int, error_type: str, message: str) -> bool:
        """Tell whether to try again after failed attempt number ``attempt`` (1-based)."""
        return attempt < self.max_attempts and self.retry_condition.matches(error_type, message)

    def delay_for(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        b = self.backoff_strategy
        if b.kind == "fixed":
            delay = self.initial_delay
        elif b.kind == "linear":
            delay = self.initial_delay * b.factor * retry_number
        else:
            delay = self.initial_delay * b.factor ** (retry_number - 1)
        delay = min(delay, self.max_delay)
        if self.jitter:
            delay *= (rng or random).uniform(0.5, 1.0)
        return max(0.0, delay)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (used by manifests and storage)."""
        return {
            "max_attempts": self.max_attempts,
            "initial_delay": self.initial_delay,
            "max_delay": self.max_delay,
            "backoff": self.backoff_strategy.kind,
            "backoff_factor": self.backoff_strategy.factor,
            "retry_condition": self.retry_condition.kind,
            "retry_patterns": list(self.retry_condition.patterns),
            "jitter": self.jitter,
        }


class RetryPolicyBuilder:
    """Fluent builder for :class:`RetryPolicy` (Cloacina's API)."""

    def __init__(self) -> None:
        self._policy = RetryPolicy.default()

    def max_attempts(self, n: int) -> RetryPolicyBuilder:
        """Set the total number of attempts (>= 1)."""
        if n < 1:
            raise ValueError(f"max_attempts must be >= 1, got {n}")
        self._policy = replace(self._policy, max_attempts=int(n))
        return self

    def initial_delay(self, seconds: float) -> RetryPolicyBuilder:
        """Set the delay before the first retry, in seconds."""
        self._policy = replace(self._policy, initial_delay=float(seconds))
        return self

    def max_delay(self, seconds: float) -> RetryPolicyBuilder:
        """Cap every delay at ``seconds``."""
        self._policy = replace(self._policy, max_delay=float(seconds))
        return self

    def backoff_strategy(self, strategy: BackoffStrategy) -> RetryPolicyBuilder:
        """Choose how delays grow."""
        self._policy = replace(self._policy, backoff_strategy=strategy)
        return self

    def retry_condition(self, condition: RetryCondition) -> RetryPolicyBuilder:
        """Choose which failures are retried."""
        self._policy = replace(self._policy, retry_condition=condition)
        return self

    def with_jitter(self, enabled: bool = True) -> RetryPolicyBuilder:
        """Turn jitter on or off."""
        self._policy = replace(self._policy, jitter=bool(enabled))
        return self

    def build(self) -> RetryPolicy:
        """Return the policy."""
        return self._policy


def policy_from_options(
    attempts: int | None,
    backoff: str | None,
    delay_ms: int | None,
    max_delay_ms: int | None,
    condition: str | list[str] | None,
    jitter: bool | None,
) -> RetryPolicy:
    """Build a policy from ``@task``'s flat ``retry_*`` keyword arguments.

    ``attempts`` is the number of *retries* (Cloacina's ``retry_attempts``), so the policy gets
    ``attempts + 1`` total attempts.
    """
    kinds = {"fixed": BackoffStrategy.fixed(), "linear": BackoffStrategy.linear(1.0)}
    strategy = kinds.get(backoff or "exponential", BackoffStrategy.exponential(2.0))
    if backoff not in (None, "fixed", "linear", "exponential"):
        raise ValueError(
            f"retry_backoff must be 'fixed', 'linear' or 'exponential', got {backoff!r}"
        )
    if condition is None or condition == "all":
        cond = RetryCondition.all()
    elif condition == "never":
        cond = RetryCondition.never()
    elif condition == "transient":
        cond = RetryCondition.transient_only()
    elif isinstance(condition, list | tuple):
        cond = RetryCondition.pattern(list(condition))
    else:
        raise ValueError(
            "retry_condition must be 'all', 'never', 'transient' or a list of message substrings, "
            f"got {condition!r}"
        )
    if attempts is not None and attempts < 0:
        raise ValueError(f"retry_attempts must be >= 0, got {attempts}")
    return RetryPolicy(
        max_attempts=(attempts or 0) + 1,
        initial_delay=(delay_ms if delay_ms is not None else 1000) / 1000.0,
        max_delay=(max_delay_ms if max_delay_ms is not None else 30000) / 1000.0,
        backoff_strategy=strategy,
        retry_condition=cond,
        jitter=bool(jitter) if jitter is not None else False,
    )
