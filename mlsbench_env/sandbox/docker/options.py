"""The docker backend's settings beyond ``SandboxConfig``, read from ``MLSBENCH_DOCKER_*``."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DockerOptions(BaseSettings):
    """Backend settings; each field can be set by ``MLSBENCH_DOCKER_<FIELD>`` (the pool size by
    ``MLSBENCH_DOCKER_POOL``). Values given to the constructor win over the environment."""

    model_config = SettingsConfigDict(
        env_prefix="MLSBENCH_DOCKER_",
        env_ignore_empty=True,
        frozen=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    image: str | None = None
    """Image tag; default: the tag of the current recipe (``images.sandbox_tag()``)."""
    pool_size: int = Field(default=2, validation_alias="MLSBENCH_DOCKER_POOL")
    """Started containers kept ready per container shape; 0 disables the pool."""
    cpus: float | None = 2.0
    """CPU quota per container (None, or 0 in the environment: no quota)."""
    tmp_mb: int = 256
    """Size of the container's /tmp (a tmpfs, counted in its memory)."""
    shm_mb: int = 64
    memory_headroom_mb: int = 256
    """Container memory = the commands' ``memory_mb`` + this + ``tmp_mb`` (executor, helpers)."""
    gpu_sample_s: float = 1.0

    @field_validator("cpus", mode="before")
    @classmethod
    def _no_quota(cls, value):
        return None if value is not None and float(value) == 0 else value

    @classmethod
    def from_env(cls) -> DockerOptions:
        """The defaults, with what the ``MLSBENCH_DOCKER_*`` variables set."""
        return cls()
