"""Retry policies: how many attempts a task gets, how long to wait between them, and which
errors are worth retrying.

Defaults are Cloacina's: a ``@task`` with no retry arguments gets :meth:`RetryPolicy.default` —
3 attempts in total, exponential backoff (base 2) from 1 s capped at 60 s, jitter on, every
error retried. ``retry_attempts=N`` is the total number of attempts (0 and 1: a single one).
A run can switch retries off as a whole (``execute_workflow(..., retries=False)``,
``%cloaca_run --no-retry``).
"""

from __future__ import annotations

import difflib
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
_TRANSIENT_WORDS = (
    "timeout",
    "timed out",
    "temporar",
    "connection",
    "network",
    "unavailable",
    "busy",
    "overloaded",
    "rate limit",
    "try again",
)
_KEYWORDS = ("all", "never", "transient")


def _num(x: float) -> str:
    # how Cloacina's reprs print a float: 2.0 as "2", 0.5 as "0.5"
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True)
class BackoffStrategy:
    """How the delay grows between attempts: ``fixed``, ``linear`` or ``exponential``.

    ``factor`` is the linear multiplier or the exponential base; ``multiplier`` scales an
    exponential delay (Cloacina's ``Exponential { base, multiplier }``).
    """

    kind: str = "exponential"
    factor: float = 2.0
    multiplier: float = 1.0

    @staticmethod
    def fixed() -> BackoffStrategy:
        """The same delay before every retry."""
        return BackoffStrategy("fixed", 1.0)

    @staticmethod
    def linear(multiplier: float = 1.0) -> BackoffStrategy:
        """Delay ``initial * multiplier * n`` before retry ``n``."""
        return BackoffStrategy("linear", float(multiplier))

    @staticmethod
    def exponential(base: float = 2.0, multiplier: float | None = None) -> BackoffStrategy:
        """Delay ``initial * multiplier * base ** (n - 1)`` before retry ``n``."""
        return BackoffStrategy(
            "exponential", float(base), 1.0 if multiplier is None else float(multiplier)
        )

    def __repr__(self) -> str:
        if self.kind == "fixed":
            return "BackoffStrategy.Fixed"
        if self.kind == "linear":
            return f"BackoffStrategy.Linear(multiplier={_num(self.factor)})"
        return (
            f"BackoffStrategy.Exponential(base={_num(self.factor)}, "
            f"multiplier={_num(self.multiplier)})"
        )


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
    def all_errors() -> RetryCondition:
        """Retry every failure (Cloacina's name for :meth:`all`)."""
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
        """Retry when the error message contains one of ``patterns`` (case-insensitive)."""
        return RetryCondition("patterns", tuple(patterns))

    @staticmethod
    def error_pattern(patterns: list[str] | tuple[str, ...]) -> RetryCondition:
        """Cloacina's name for :meth:`pattern`."""
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
        low = message.lower()
        return any(p.lower() in low for p in self.patterns)

    def __repr__(self) -> str:
        names = {"all": "AllErrors", "never": "Never", "transient": "TransientOnly"}
        if self.kind in names:
            return f"RetryCondition.{names[self.kind]}"
        label = "ErrorPattern" if self.kind == "patterns" else "ErrorTypes"
        listed = ", ".join('"' + p.replace('"', '\\"') + '"' for p in self.patterns)
        return f"RetryCondition.{label}(patterns=[{listed}])"


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

    ``RetryPolicy()`` is Cloacina's default policy (see the module docstring).
    """

    max_attempts: int = 3
    initial_delay: float = 1.0
    max_delay: float = 60.0
    backoff_strategy: BackoffStrategy = field(default_factory=BackoffStrategy)
    retry_condition: RetryCondition = field(default_factory=RetryCondition)
    jitter: bool = True

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_attempts={self.max_attempts}, "
            f"initial_delay={_num(self.initial_delay)}s, max_delay={_num(self.max_delay)}s, "
            f"jitter={str(self.jitter).lower()})"
        )

    @staticmethod
    def builder() -> RetryPolicyBuilder:
        """Start a fluent builder (``RetryPolicy.builder().max_attempts(3).build()``)."""
        return RetryPolicyBuilder()

    @staticmethod
    def default() -> RetryPolicy:
        """Cloacina's default: 3 attempts, exponential (base 2) from 1 s to 60 s, jitter."""
        return RetryPolicy()

    @staticmethod
    def none() -> RetryPolicy:
        """A single attempt."""
        return RetryPolicy(max_attempts=1)

    @property
    def retries(self) -> int:
        """Number of retries after the first attempt."""
        return self.max_attempts - 1

    def with_jitter(self) -> bool:
        """Whether delays are jittered (Cloacina's accessor)."""
        return self.jitter

    def should_retry(self, attempt: int, error_type: str, message: str = "") -> bool:
        """Tell whether to try again after failed attempt number ``attempt`` (1-based)."""
        return attempt < self.max_attempts and self.retry_condition.matches(error_type, message)

    def calculate_delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based), jitter included."""
        return self.delay_for(attempt)

    def delay_for(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        b = self.backoff_strategy
        if b.kind == "fixed":
            delay = self.initial_delay
        elif b.kind == "linear":
            delay = self.initial_delay * b.factor * retry_number
        else:
            try:
                delay = self.initial_delay * b.multiplier * b.factor ** (retry_number - 1)
            except OverflowError:
                delay = self.max_delay
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
        """Set the total number of attempts (0 and 1: a single attempt)."""
        if n < 0:
            raise ValueError(f"max_attempts must be >= 0, got {n}")
        self._policy = replace(self._policy, max_attempts=max(1, int(n)))
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


def condition_from_option(condition: str | list[str] | tuple[str, ...] | None) -> RetryCondition:
    """The condition ``@task(retry_condition=...)`` names.

    ``"all"`` (or None), ``"never"``, ``"transient"``, a list of message substrings, or — as in
    Cloacina — a string of comma-separated substrings. A string that is almost a keyword
    (``"transiant"``) is refused rather than read as a pattern that never matches.
    """
    if condition is None:
        return RetryCondition.all()
    if isinstance(condition, list | tuple):
        if not condition or not all(isinstance(p, str) and p for p in condition):
            raise ValueError(
                f"retry_condition as a list needs non-empty substrings, got {condition!r}"
            )
        return RetryCondition.pattern(list(condition))
    if not isinstance(condition, str):
        raise ValueError(
            "retry_condition must be 'all', 'never', 'transient', comma-separated message "
            f"substrings or a list of them, got {condition!r}"
        )
    word = condition.strip().lower()
    if word in _KEYWORDS:
        return {
            "all": RetryCondition.all(),
            "never": RetryCondition.never(),
            "transient": RetryCondition.transient_only(),
        }[word]
    close = difflib.get_close_matches(word, _KEYWORDS, n=1, cutoff=0.75)
    patterns = [p.strip() for p in condition.split(",") if p.strip()]
    if close or not patterns:
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"retry_condition {condition!r} is not 'all', 'never' or 'transient'{hint} "
            "(message substrings are given comma-separated or as a list)"
        )
    return RetryCondition.pattern(patterns)


def policy_from_options(
    attempts: int | None,
    backoff: str | None,
    delay_ms: int | None,
    max_delay_ms: int | None,
    condition: str | list[str] | None,
    jitter: bool | None,
) -> RetryPolicy:
    """Build a policy from ``@task``'s flat ``retry_*`` keyword arguments.

    ``attempts`` is the total number of attempts (Cloacina's ``max_attempts``: 0 and 1 both
    mean one attempt); options left as None keep :meth:`RetryPolicy.default`'s values.
    """
    if backoff not in (None, "fixed", "linear", "exponential"):
        raise ValueError(
            f"retry_backoff must be 'fixed', 'linear' or 'exponential', got {backoff!r}"
        )
    kinds = {"fixed": BackoffStrategy.fixed(), "linear": BackoffStrategy.linear(1.0)}
    strategy = kinds.get(backoff or "exponential", BackoffStrategy.exponential(2.0))
    if attempts is not None and (isinstance(attempts, bool) or attempts < 0):
        raise ValueError(f"retry_attempts must be >= 0, got {attempts!r}")
    default = RetryPolicy()
    return RetryPolicy(
        max_attempts=default.max_attempts if attempts is None else max(1, int(attempts)),
        initial_delay=default.initial_delay if delay_ms is None else delay_ms / 1000.0,
        max_delay=default.max_delay if max_delay_ms is None else max_delay_ms / 1000.0,
        backoff_strategy=strategy,
        retry_condition=condition_from_option(condition),
        jitter=default.jitter if jitter is None else bool(jitter),
    )
