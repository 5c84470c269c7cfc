"""The layout keeps its promises: product apart from tooling, one-way dependencies, one schema."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_PACKAGES = ("accounts", "api", "invites", "lifestyle_spaces", "operations", "spaces", "web")


def imported_modules(package: str) -> dict[Path, set[str]]:
    found: dict[Path, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[path.relative_to(ROOT)] = names
    return found


@pytest.mark.parametrize("package", PRODUCT_PACKAGES)
def test_product_code_never_imports_development_tooling(package: str) -> None:
    tooling = ("devtools", "tests", "benchmarks", "moto", "pytest", "playwright", "schemathesis")
    offending = {
        str(path): sorted(name for name in names if name.split(".")[0] in tooling)
        for path, names in imported_modules(package).items()
    }
    assert {path: names for path, names in offending.items() if names} == {}


@pytest.mark.parametrize(
    ("package", "may_not_import"),
    [
        ("spaces", ("invites", "api", "web")),
        ("invites", ("api", "web")),
        ("web", ("api",)),
        ("accounts", ("invites", "api")),  # the security store shares the table connection
        ("operations", ("invites", "api")),
    ],
)
def test_dependencies_between_apps_go_one_way(package: str, may_not_import: tuple[str, ...]) -> None:
    offending = {
        str(path): sorted(name for name in names if name.split(".")[0] in may_not_import)
        for path, names in imported_modules(package).items()
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_production_settings_load_every_product_module_without_the_development_tools() -> None:
    """Importing the whole product with production settings pulls in none of the development tools."""
    script = (
        "import importlib, pkgutil, sys, django; django.setup()\n"
        f"for package in {PRODUCT_PACKAGES!r}:\n"
        "    root = importlib.import_module(package)\n"
        "    for info in pkgutil.walk_packages(root.__path__, package + '.'):\n"
        "        if '.migrations' not in info.name and not info.name.endswith('gunicorn.conf'):\n"
        "            importlib.import_module(info.name)\n"
        "loaded = sorted({name.split('.')[0] for name in sys.modules} & {'moto', 'pytest', 'devtools', 'playwright'})\n"
        "print(loaded)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DYNAMODB_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="lifestyle_spaces.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="x" * 20 + "production-like-secret-key-for-this-import-check",
        DJANGO_ALLOWED_HOSTS="example.com",
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_table_is_created_from_the_models_schema(dynamo_table) -> None:
    from spaces.dynamodb import botocore_client, table_schema

    described = botocore_client().describe_table(TableName=dynamo_table.table_name)["Table"]
    schema = table_schema(dynamo_table.table_name)

    assert (
        described["KeySchema"]
        == schema["KeySchema"]
        == [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ]
    )
    assert sorted(described["AttributeDefinitions"], key=str) == sorted(schema["AttributeDefinitions"], key=str)
    [index] = described["GlobalSecondaryIndexes"]
    [declared] = schema["GlobalSecondaryIndexes"]
    assert (index["IndexName"], index["KeySchema"]) == (declared["IndexName"], declared["KeySchema"])
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
