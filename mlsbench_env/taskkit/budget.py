"""A counted resource (evaluations, queries, denoiser calls, model steps), kept by the parent."""

from __future__ import annotations


class Budget:
    """``limit`` units of ``name``; ``charge`` refuses what would go over and counts refusals."""

    def __init__(self, name: str, limit: int):
        self.name, self.limit, self.used, self.refused = name, int(limit), 0, 0

    @property
    def left(self) -> int:
        return self.limit - self.used

    def charge(self, n: int = 1) -> str | None:
        """Spend ``n`` units; returns None, or the refusal's message (nothing is spent)."""
        if n < 0 or n > self.left:
            self.refused += 1
            return f"{self.name} budget exhausted: requested {n}, {self.left} of {self.limit} left"
        self.used += n
        return None

    def record(self) -> dict[str, int]:
        return {
            f"{self.name}_budget": self.limit,
            f"{self.name}_used": self.used,
            f"{self.name}_refused": self.refused,
        }
