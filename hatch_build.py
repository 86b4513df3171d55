"""Build hook: ship tasks/, suites/ and sandbox/ inside the wheel, but not in an editable install.

An editable install reads them from the checkout (``builtin_tasks_dir`` and friends fall back to
it); copying them into site-packages as well would leave a second copy of every task's hidden
settings and private labels where a sandbox on the same machine could read it.
"""

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGED = {
    "tasks": "mlsbench_env/tasks",
    # `mlsbench eval --tasks lite` from a non-editable install
    "suites": "mlsbench_env/suites",
    # the docker backend's image recipes (`mlsbench images build` from a non-editable install)
    "sandbox": "mlsbench_env/sandbox_recipes",
}


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name == "wheel" and version == "standard":
            build_data["force_include"].update(PACKAGED)
