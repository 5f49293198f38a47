"""AWS config and credentials files for the demo users, so the CLI and any SDK work unchanged."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trustgate_local.seed import DemoUser


@dataclass(frozen=True)
class ProfileFiles:
    config: Path
    credentials: Path

    def environment(self, endpoint: str) -> dict[str, str]:
        """What a shell needs to use the profiles against the local API."""
        return {
            "AWS_CONFIG_FILE": str(self.config),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials),
            "TRUSTGATE_ENDPOINT": endpoint,
        }

    def export_line(self, endpoint: str) -> str:
        return "export " + " ".join(f"{k}={v}" for k, v in self.environment(endpoint).items())


def write_profiles(directory: Path, users: Sequence[DemoUser], region: str, aws_endpoint: str) -> ProfileFiles:
    """Write `config` and `credentials` (one profile per demo user) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".gitignore").write_text("*\n")  # demo secrets never belong in a commit
    config_lines = [
        "# Written by the TrustGate local stack (make local). The keys are moto's, valid only locally;",
        "# endpoint_url sends any AWS SDK call made with these profiles to the local moto, never to AWS.",
    ]
    credential_lines = ["# Written by the TrustGate local stack (make local): demo users' keys in the local moto."]
    for user in users:
        config_lines += [
            "",
            f"# {user.name}: {user.arn} ({user.does})",
            f"[profile {user.profile}]",
            f"region = {region}",
            "output = json",
            f"endpoint_url = {aws_endpoint}",
        ]
        credential_lines += [
            "",
            f"[{user.profile}]",
            f"aws_access_key_id = {user.access_key_id}",
            f"aws_secret_access_key = {user.secret_access_key}",
        ]
    files = ProfileFiles(directory / "config", directory / "credentials")
    _write_private(files.config, "\n".join(config_lines) + "\n")
    _write_private(files.credentials, "\n".join(credential_lines) + "\n")
    return files


def _write_private(path: Path, text: str) -> None:
    # Written then renamed, readable by the owner only: a half-written credentials file never shows.
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)
