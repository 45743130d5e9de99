"""deploy/: the container definitions and the compose file agree with each other and with the
command line (fast: parses files; building and running the images is deploy/smoke-test.sh)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from stemwatch import store
from stemwatch.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
CONTAINERFILES = ["Containerfile", "Containerfile.cuda"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def parses(argv: list[str], env: dict[str, str] | None = None) -> None:
    """The stemwatch command line accepts ``argv`` (as the image's entrypoint runs it, with
    the container's environment)."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in (env or {}).items():
            mp.setenv(k, v)
        build_parser().parse_args(argv)


@pytest.mark.parametrize("name", CONTAINERFILES)
def test_containerfile_runs_stemwatch_as_a_non_root_user_with_a_heartbeat_healthcheck(
    name: str,
) -> None:
    ins = instructions(DEPLOY / name)
    words = [w for w, _ in ins]
    assert words[0] == "ARG" and words[1] == "FROM"
    user = [a for w, a in ins if w == "USER"]
    assert user and not user[-1].startswith(("root", "0")), "runs as root"
    assert words.index("USER") < words.index("CMD")
    (health,) = [a for w, a in ins if w == "HEALTHCHECK"]
    check = exec_form(health.split("CMD", 1)[1].strip())
    assert check[:3] == ["stemwatch", "status", "--check"]
    parses(check[1:])
    (entry,) = [exec_form(a) for w, a in ins if w == "ENTRYPOINT"]
    (cmd,) = [exec_form(a) for w, a in ins if w == "CMD"]
    assert entry[-1] == "stemwatch"
    parses(cmd)
    assert cmd[:2] == ["watch", "/data"]
    (volume,) = [exec_form(a) for w, a in ins if w == "VOLUME"]
    env = " ".join(a for w, a in ins if w == "ENV")
    db = re.search(r"STEMWATCH_DB=(\S+)", env)
    assert db is not None and db.group(1).startswith(volume[0] + "/")  # the database: a volume
    assert "STEMWATCH_INSTRUMENT" in env


def test_the_cuda_image_differs_only_in_onnxruntime() -> None:
    cpu = (DEPLOY / "Containerfile").read_text()
    cuda = (DEPLOY / "Containerfile.cuda").read_text()
    assert "[${EXTRAS}]" in cpu and "ARG EXTRAS=cpu,postgres" in cpu
    assert "onnxruntime-gpu" in cuda and "[cpu" not in cuda  # never both onnxruntimes
    assert "CUDAExecutionProvider" in cuda


def test_compose_has_postgres_daemons_and_dashboard_that_agree() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert "db" in services and "dashboard" in services
    daemons = {k: v for k, v in services.items() if k.startswith("daemon")}
    assert len(daemons) >= 2
    db = services["db"]
    assert any(v.startswith("pgdata:") for v in db["volumes"]) and "pgdata" in compose["volumes"]
    user, name = db["environment"]["POSTGRES_USER"], db["environment"]["POSTGRES_DB"]
    instruments = set()
    for key in [*daemons, "dashboard"]:
        svc = services[key]
        env = svc["environment"]
        target = store.parse_target(env["STEMWATCH_DB"])
        assert target.engine == "postgresql", key
        assert target.display == f"postgresql://{user}@db:5432/{name}", key
        assert ":" not in target.location.split("@")[0].removeprefix("postgresql://"), (
            "no password in the URL: PGPASSWORD from the env file"
        )
        parses(svc["command"], env)
        assert svc["image"] == "localhost/stemwatch:cpu"
        assert svc["depends_on"]["db"]["condition"] == "service_healthy"
    for key, svc in daemons.items():
        assert svc["command"][0] == "watch"
        instruments.add(store.check_instrument(svc["environment"]["STEMWATCH_INSTRUMENT"]))
        (mount,) = svc["volumes"]
        assert mount.endswith(":/data:ro"), f"{key}: the watched folder must be read-only"
    assert len(instruments) == len(daemons), "each daemon needs its own instrument name"
    dashboard = services["dashboard"]
    assert dashboard["command"][0] == "dashboard" and "8501:8501" in dashboard["ports"]
    assert "healthcheck" in dashboard  # the image's daemon healthcheck does not fit it
    env_file = DEPLOY / "stemwatch.env.example"
    keys = {line.split("=")[0] for line in env_file.read_text().splitlines() if "=" in line}
    assert {"PGPASSWORD", "POSTGRES_PASSWORD"} <= keys


@pytest.mark.parametrize("script", ["build-image.sh", "smoke-test.sh"])
def test_deploy_scripts_are_valid_bash(script: str) -> None:
    path = DEPLOY / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    subprocess.run(["bash", "-n", str(path)], check=True)
