"""deploy/: the compose file, its Caddyfile and its image, checked without Docker (not on the machines the tests
run on): what each worker is given is a configuration the bot accepts, every worker is on the same database and
behind Caddy, and the image (or a wheel) holds every package the program is made of and every file it reads."""

from __future__ import annotations

import re
import string
import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

import yaml

from bot import demo
from bot.config import Config

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
EXAMPLE = {"POSTGRES_PASSWORD": "s3cret", "DANVAN_DOMAIN": "chat.example.vn", "DANVAN_FILE_SECRET": "x" * 32,
           "TELEGRAM_BOT_TOKEN": "123456789:AAFakeTokenForTests_danvan-0123456789",
           "TELEGRAM_WEBHOOK_SECRET": "webhook-secret_1"}


def substituted(value: str) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?message}, from EXAMPLE."""
    def one(found: re.Match) -> str:
        name, kind, rest = found.group(1), found.group(2), found.group(3)
        return EXAMPLE.get(name) or (rest if kind == ":-" else "")
    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def test_two_workers_on_one_database_behind_caddy():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    workers = {name: {k: substituted(str(v)) for k, v in s["environment"].items()}
               for name, s in services.items() if "DANVAN_WORKER" in s.get("environment", {})}
    assert len(workers) == 2 and len({env["DANVAN_WORKER"] for env in workers.values()}) == 2
    assert len({env["DANVAN_DB"] for env in workers.values()}) == 1
    for env in workers.values():
        config = Config(_env_file=None, **env)
        assert config.telegram_webhook_url == "https://chat.example.vn/telegram/webhook"
        assert config.db.startswith("postgresql://danvan:s3cret@db/")
        assert config.trusted_proxies == services["caddy"]["networks"]["danvan"]["ipv4_address"]
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert caddyfile.count("{") == caddyfile.count("}")
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile).group(1).split()
    assert sorted(upstreams) == sorted(f"{name}:{env['DANVAN_PORT']}" for name, env in workers.items())
    assert set(services["caddy"]["depends_on"]) == set(workers)


def test_the_image_holds_every_package():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \1$", dockerfile, re.M))
    packages = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert copied == {name.rstrip("*") for name in packages["include"]}
    example = dict(line.split("=", 1) for line in (DEPLOY / "env.example").read_text().splitlines()
                   if line and line[0] in string.ascii_uppercase)
    assert set(example) == set(EXAMPLE)


def test_the_demo_reads_its_samples_from_package_data():
    """A wheel and the image hold the packages' data, never docs/: the demo's sample draft and survey are there."""
    data = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for sample in (demo.SAMPLES / demo.content()["consultation"]["file"], demo.SURVEY):
        assert sample.is_file() and sample.read_text(encoding="utf-8").strip()
        packaged = resources.files("messages").joinpath("samples", sample.name)
        assert packaged == sample and any(fnmatch(f"samples/{sample.name}", p) for p in data["messages"])
