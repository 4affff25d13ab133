"""`kernel doctor`: what the kernel has to work with, and what is missing."""

import os
import shutil
from typing import Any

from kernel.errors import KernelError
from kernel.sandbox import image
from kernel.sandbox.scratch import can_mount
from kernel.settings import Settings


def diagnose(settings: Settings) -> dict[str, Any]:
    """A report of engine, runtimes, image and guarantees; ``missing`` lists what to fix."""
    report: dict[str, Any] = {"home": str(settings.home.resolve()), "missing": []}
    missing: list[str] = report["missing"]
    report["workspace_quota"] = can_mount()
    if not can_mount():
        missing.append("not root: run workspaces are plain folders without a size cap")
    try:
        from kernel.sandbox.docker import DockerSandbox

        sandbox = DockerSandbox()
        report["engine"] = sandbox.engine_info()
        report["runtime"] = sandbox.runtime(settings.runtime)
        if "runsc" not in report["engine"]["runtimes"]:
            missing.append("gVisor (runsc) is not registered: runs use runc")
        info = image.find(sandbox.client, image.image_tag())
        sandbox.close()
        report["image"] = {"tag": image.image_tag(), "id": info.id if info else None, "built": info is not None}
        if info is None:
            missing.append(f"sandbox image {image.image_tag()} not built: run `kernel image build`")
    except KernelError as exc:
        report["engine"] = None
        missing.append(str(exc))
    # debootstrap is there, or (as root) the image build can install it
    report["can_build_base"] = shutil.which("debootstrap") is not None or os.geteuid() == 0
    return report
