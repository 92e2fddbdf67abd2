"""A deployment's pip requirements: which this Python lacks, and installing those for the workers.

An environment may carry pip requirements (an MLflow model's are recorded on its deployment). Where they are met
depends on where the runner runs:

- In the cloud, on our image (the job definition sets BEP_INSTALL_REQUIREMENTS=1; a custom image is the user's
  own and gets nothing installed), the runner installs those not already met before any worker starts, with
  `pip install --target <scratch>/site`, and the workers put that folder first on their path. A requirement is
  met when an installed distribution's version is in its specifier (packaging's rules; a pin is a pin). pip's own
  variables (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX, ...) in the deployment's
  environment_variables reach pip, so private indexes work. A failed install fails the shard with pip's message.
- Locally, scoring runs in the user's own Python, which the runner never changes: a missing package fails the
  job before any worker starts, with the `pip install` line to run; an installed version outside the
  specifier only warns (a pinned requirements.txt records what a model was saved with, not a minimum).

Either way, packages that only Azure ML's own runtime uses (AZURE_ONLY) are left out first, with a note in the
job's log: environments written for Azure list them, and scoring code does not import them.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from batch_endpoints.pip_install import pip_install_command

# Set by the job definition (batch_endpoints/adapters/aws/computes.py), which names it too.
INSTALL_VARIABLE = "BEP_INSTALL_REQUIREMENTS"
# A backstop against an index that never answers: pip's own timeouts and retries end most failures sooner.
PIP_TIMEOUT_S = 20 * 60
# The end of pip's output is where it says what went wrong.
PIP_MESSAGE_CHARS = 1500
# A model saved with mlflow is served by mlflow-skinny too: both provide `mlflow.pyfunc`.
MLFLOW_DISTRIBUTIONS = ("mlflow", "mlflow-skinny")
# What Azure ML's images carry for Azure's own services: the workspace SDK and its run context, data mounts (the
# fuse extra needs a FUSE device), the online inference server and its schema decorators, MLflow tracking to a
# workspace, telemetry. Azure's examples list them in their conda files; none is needed to score here, and some
# cannot install outside Azure. Compared by canonical name, so extras and versions do not matter.
AZURE_ONLY = frozenset(
    {
        "azureml-core",
        "azureml-dataprep",
        "azureml-dataprep-rslex",
        "azureml-dataset-runtime",
        "azureml-defaults",
        "azureml-inference-server-http",
        "azureml-mlflow",
        "azureml-telemetry",
        "inference-schema",
    }
)

# pip's lines naming a requirement it could not install: no version for this Python and platform (a pin with no
# wheel here, or a name no index has), or a source build that failed.
PIP_FAILED_FOR = re.compile(
    r"(?:No matching distribution found for|Could not build wheels for|Failed building wheel for|Failed to build)"
    r" ([^\s,]+)"
)

log = logging.getLogger(__name__)


class RequirementsError(Exception):
    """The environment's requirements cannot be met here; the message says what to do."""


@dataclass(frozen=True)
class Unmet:
    requirement: str
    installed: str | None
    """The version installed here, outside the requirement's specifier; None = not installed."""


def without_azure_only(requirements: Sequence[str]) -> list[str]:
    """The requirements less the AZURE_ONLY packages, logging which were left out and why."""
    kept: list[str] = []
    skipped: list[str] = []
    for line in requirements:
        try:
            azure_only = canonicalize_name(Requirement(line).name) in AZURE_ONLY
        except InvalidRequirement:
            azure_only = False  # pip says why it is not a requirement
        (skipped if azure_only else kept).append(line)
    if skipped:
        log.warning(
            "skipping %s: only Azure ML's own runtime uses them, and scoring code does not need them",
            ", ".join(skipped),
        )
    return kept


def unmet(requirements: Sequence[str]) -> list[Unmet]:
    """The requirements this Python does not meet, in order. One that cannot be parsed is unmet: pip says why."""
    found = []
    for line in requirements:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            found.append(Unmet(line, None))
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # for another platform or Python
        names = MLFLOW_DISTRIBUTIONS if requirement.name.lower() in MLFLOW_DISTRIBUTIONS else (requirement.name,)
        versions = [version for name in names if (version := _installed(name)) is not None]
        if not versions:
            found.append(Unmet(line, None))
        elif not any(requirement.specifier.contains(version, prereleases=True) for version in versions):
            found.append(Unmet(line, versions[0]))
    return found


def check_installed(requirements: Sequence[str], *, needed_by: str) -> None:
    """Raise RequirementsError with the pip line to run when a requirement is not installed; warn for versions."""
    missing = []
    for item in unmet(requirements):
        if item.installed is None:
            missing.append(item.requirement)
        else:
            log.warning("%s asks for %s; this environment has %s", needed_by, item.requirement, item.installed)
    if missing:
        raise RequirementsError(
            f"{needed_by} needs packages this environment lacks: {', '.join(missing)}; install them "
            f"(pip install {shlex.join(missing)}) or give the deployment an environment that has them"
        )


def meet(requirements: Sequence[str], target: str, *, variables: Mapping[str, str], needed_by: str) -> str | None:
    """Where this runner may install (BEP_INSTALL_REQUIREMENTS=1: the cloud, our image), install the unmet
    requirements into `target` and return it (None when all are met); elsewhere check them (check_installed)."""
    wanted = without_azure_only(requirements)
    if os.environ.get(INSTALL_VARIABLE) != "1":
        check_installed(wanted, needed_by=needed_by)
        return None
    missing = [item.requirement for item in unmet(wanted)]
    if not missing:
        return None
    install(missing, target, variables=variables)
    return target


def install(requirements: Sequence[str], target: str, *, variables: Mapping[str, str]) -> None:
    """`pip install --target target` the requirements; pip's PIP_* settings come from `variables` over ours."""
    environment = {**os.environ, **{k: v for k, v in variables.items() if k.startswith("PIP_")}}
    command = pip_install_command(target, *requirements)
    log.info("installing the environment's pip requirements: %s", shlex.join(requirements))
    try:
        finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RequirementsError(
            f"pip install {shlex.join(requirements)} did not finish in {PIP_TIMEOUT_S} s; is the package index "
            "reachable from the compute environment (PIP_INDEX_URL in the deployment's environment_variables)?"
        ) from None
    if finished.returncode != 0:
        message = finished.stderr.strip() or finished.stdout.strip()
        raise RequirementsError(f"{_what_failed(requirements, message)}: {message[-PIP_MESSAGE_CHARS:]}")


def _what_failed(requirements: Sequence[str], message: str) -> str:
    """The headline of a failed install: the requirements pip named as the ones it could not install, if any."""
    named = list(dict.fromkeys(PIP_FAILED_FOR.findall(message)))
    if not named:
        return f"pip install {shlex.join(requirements)} failed"
    here = f"Python {platform.python_version()} on {platform.system()} {platform.machine()}"
    return (
        f"cannot install {', '.join(named)} for {here}: no version of it installs here (a pin with no wheel for "
        "this Python, or a source build that fails); pin a version that has one, and pip said"
    )


def _installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
