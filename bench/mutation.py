"""Mutation scores of the pure modules: mutmut for code, an AST pass for the tables.

Not part of CI (minutes per module). Each module is mutated in a scratch copy of the project
and only its own test file runs against each mutant::

    pip install "mutmut>=3.3,<4"
    python -m bench.mutation                  # all four modules
    python -m bench.mutation sniff naming     # some of them
    python -m bench.mutation --keep sniff     # keep the scratch copy to inspect survivors

mutmut (3.x) mutates function bodies only. The tables at module level (MIME types, brands,
signatures, bit rates, invisible characters) are what the pure modules mostly are, so a second
pass mutates them here: each element of a list, set, dict or tuple literal of a module-level
assignment is deleted in turn (tuples that are records of a table are kept whole), each integer
constant is incremented and each str/bytes constant is changed. Each worker collects the tests
once; per mutant a forked child applies the change to the imported module and runs the tests
up to the first failure (timeout: 120 s). Survivors of both passes are written to
``bench/.work/mutation-<module>.txt``.

The scratch copy gets a ``setup.cfg`` with the ``[mutmut]`` section, so the project's own
configuration is untouched. ``MEDIAPIPE_FUZZ_EXAMPLES`` is lowered for the run (property tests
with hundreds of examples per mutant add time, not kills); set it to override.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODULES = {
    "datauri": "tests/test_datauri.py",
    "mediatypes": "tests/test_mediatypes.py",
    "naming": "tests/test_naming.py",
    "sniff": "tests/test_sniff.py",
}
_SETUP_CFG = """\
[mutmut]
source_paths=mediapipe
only_mutate=mediapipe/{module}.py
pytest_add_cli_args_test_selection={tests}
also_copy=spiders
pytest_add_cli_args=--noconftest
"""


def _scratch_copy(module: str) -> Path:
    work = Path(tempfile.mkdtemp(prefix=f"mutation-{module}-"))
    shutil.copytree(ROOT / "mediapipe", work / "mediapipe")
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "tests", work / "tests", ignore=skip)
    shutil.copytree(ROOT / "spiders", work / "spiders", ignore=skip)  # the tests' site server
    # mutmut runs pytest many times in one process, and Twisted's reactor cannot restart: the
    # pure modules' tests need no reactor, so pytest-twisted is switched off in the copy.
    pyproject = (ROOT / "pyproject.toml").read_text()
    (work / "pyproject.toml").write_text(pyproject.replace("--reactor=asyncio", "-p no:twisted"))
    (work / "setup.cfg").write_text(_SETUP_CFG.format(module=module, tests=MODULES[module]))
    return work


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "MEDIAPIPE_FUZZ_EXAMPLES": os.environ.get("MEDIAPIPE_FUZZ_EXAMPLES", "20"),
    }


def measure_functions(module: str, keep: bool = False) -> tuple[dict[str, int], str]:
    """Run mutmut on one module; return its counts and the list of mutants that were not killed."""
    work = _scratch_copy(module)
    mutmut = [sys.executable, "-m", "mutmut"]
    env = _env()
    try:
        subprocess.run([*mutmut, "run"], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*mutmut, "export-cicd-stats"], cwd=work, env=env, check=True)
        stats: dict[str, int] = json.loads(
            (work / "mutants" / "mutmut-cicd-stats.json").read_text()
        )
        listing = subprocess.run(
            [*mutmut, "results"], cwd=work, env=env, check=True, capture_output=True, text=True
        ).stdout
        shown = []
        for line in listing.splitlines():
            name = line.strip().partition(":")[0]
            if name:
                diff = subprocess.run(
                    [*mutmut, "show", name], cwd=work, env=env, capture_output=True, text=True
                ).stdout
                shown.append(f"{line.strip()}\n{diff}")
    finally:
        if keep:
            print(f"mutmut copy kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return stats, "\n".join(shown)


# --- table mutants ----------------------------------------------------------------------------

_CONTAINERS = (ast.List, ast.Tuple, ast.Set, ast.Dict)


@dataclass
class TableMutant:
    """One change to a module-level table: where it is and what it does."""

    line: int
    description: str
    source: str
    statement: int  # index of the changed top-level statement


def table_mutants(source: str) -> list[TableMutant]:
    """Every table mutant of a module's source (module-level assignments only)."""
    tree = ast.parse(source)
    mutants: list[TableMutant] = []
    for index, statement in enumerate(tree.body):
        if not isinstance(statement, ast.Assign | ast.AnnAssign) or statement.value is None:
            continue
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            continue
        if isinstance(statement.value, ast.Subscript):  # a type alias such as Literal[...]
            continue
        records = {
            id(element)
            for node in ast.walk(statement.value)
            if isinstance(node, _CONTAINERS)
            for element in (node.values if isinstance(node, ast.Dict) else node.elts)
            if isinstance(element, ast.Tuple)
        }
        for path, node in _walk_with_paths(statement.value):
            if isinstance(node, _CONTAINERS) and id(node) not in records:
                size = len(node.keys if isinstance(node, ast.Dict) else node.elts)
                for position in range(size):
                    element = (
                        node.keys[position] or node.values[position]
                        if isinstance(node, ast.Dict)
                        else node.elts[position]
                    )
                    mutants.append(_mutant(tree, index, path, ("delete", position), element.lineno))
            elif _changeable(node):
                mutants.append(_mutant(tree, index, path, ("change", 0), node.lineno))
    return mutants


def _changeable(node: ast.AST) -> bool:
    if not isinstance(node, ast.Constant) or isinstance(node.value, bool):
        return False
    return isinstance(node.value, int | str | bytes)


def _walk_with_paths(node: ast.AST, path: tuple[tuple[str, int | None], ...] = ()) -> list[Any]:
    found: list[Any] = [(path, node)]
    for field, value in ast.iter_fields(node):
        if isinstance(value, list):
            for position, child in enumerate(value):
                if isinstance(child, ast.AST):
                    found += _walk_with_paths(child, (*path, (field, position)))
        elif isinstance(value, ast.AST):
            found += _walk_with_paths(value, (*path, (field, None)))
    return found


def _mutant(
    tree: ast.Module,
    index: int,
    path: tuple[tuple[str, int | None], ...],
    change: tuple[str, int],
    line: int,
) -> TableMutant:
    copy = copy_module(tree)
    statement = copy.body[index]
    assert isinstance(statement, ast.Assign | ast.AnnAssign)
    assert statement.value is not None
    node: Any = statement.value
    for field, position in path:
        node = getattr(node, field) if position is None else getattr(node, field)[position]
    kind, position = change
    if kind == "delete":
        if isinstance(node, ast.Dict):
            described = f"delete entry {ast.unparse(node.keys[position] or node.values[position])}"
            del node.keys[position], node.values[position]
        else:
            element = node.elts[position]
            described = f"delete element {ast.unparse(element)}"
            del node.elts[position]
    else:
        old = node.value
        if isinstance(old, int):
            node.value = old + 1
        elif isinstance(old, str):
            node.value = old + "X" if old else "X"
        else:
            node.value = old + b"X" if old else b"X"
        described = f"change {old!r} to {node.value!r}"
    return TableMutant(line, described, ast.unparse(copy), index)


def copy_module(tree: ast.Module) -> ast.Module:
    return ast.parse(ast.unparse(tree))


def measure_tables(module: str, jobs: int, keep: bool = False) -> tuple[dict[str, int], str]:
    """Run the module's tests once per table mutant; return counts and the survivors.

    Workers import the tests once and fork a child per mutant, which applies the mutant to the
    imported module (see :func:`_apply`) and runs pytest: a fresh interpreter per mutant would
    spend most of its time importing and collecting.
    """
    mutants = table_mutants((ROOT / "mediapipe" / f"{module}.py").read_text())
    work = _scratch_copy(module)
    command = [sys.executable, "-m", "bench.mutation", "--table-worker", module]
    try:
        workers = [
            subprocess.Popen(
                [*command, str(shard), str(jobs)],
                cwd=ROOT,
                env={**_env(), "MUTATION_WORK": str(work)},
                stdout=subprocess.PIPE,
                text=True,
            )
            for shard in range(jobs)
        ]
        outcomes: dict[int, str] = {}
        for worker in workers:
            assert worker.stdout is not None
            for line in worker.stdout:
                number, outcome = line.split()
                outcomes[int(number)] = outcome
            if worker.wait() != 0:
                raise SystemExit(f"{module}: a table worker failed")
    finally:
        if keep:
            print(f"table copy kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if outcomes.pop(-1, None) != "survived":
        raise SystemExit(f"{module}: the tests fail without any mutation")
    results = [outcomes[number] for number in range(len(mutants))]
    stats = {"total": len(mutants)} | {
        outcome: results.count(outcome) for outcome in ("killed", "survived", "timeout")
    }
    survivors = "\n".join(
        f"{module}.py:{mutant.line}: {mutant.description}"
        for mutant, outcome in zip(mutants, results, strict=True)
        if outcome == "survived"
    )
    return stats, survivors


def _table_worker(module: str, shard: int, jobs: int) -> None:
    """Collect the module's tests once, then fork a child per mutant that runs them.

    Outcomes go to stdout as ``<number> <outcome>`` lines (number -1: no mutation).
    """
    import pytest

    work = Path(os.environ["MUTATION_WORK"])
    os.chdir(work)
    sys.path.insert(0, str(work))
    mutants = table_mutants((work / "mediapipe" / f"{module}.py").read_text())
    numbers = [number for number in range(len(mutants)) if number % jobs == shard]
    if shard == 0:
        numbers.insert(0, -1)  # the unmutated module first: its tests must pass
    results = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # pytest's own output is not wanted

    class Loop:
        @pytest.hookimpl(tryfirst=True)
        def pytest_runtestloop(self, session: pytest.Session) -> bool:
            for number in numbers:
                mutant = None if number < 0 else mutants[number]
                outcome = _run_forked(module, mutant, session.items, timeout=120)
                results.write(f"{number} {outcome}\n")
                results.flush()
                if number > 0 and number % 50 == 0:
                    print(f"{module} tables: {number}/{len(mutants)}", file=sys.stderr, flush=True)
            return True

    args = ["-q", "--noconftest", "-p", "no:cacheprovider", MODULES[module]]
    pytest.main(args, plugins=[Loop()])
    results.close()


def _run_forked(module: str, mutant: TableMutant | None, items: list[Any], timeout: float) -> str:
    pid = os.fork()
    if pid == 0:  # the child: mutate, run the collected tests up to the first failure
        code = 0
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
            if mutant is not None:
                _apply(module, mutant)
            failed: list[bool] = []

            def record(report: Any) -> None:
                if report.failed:
                    failed.append(True)

            if items:
                items[0].config.pluginmanager.register(_Recorder(record))
            for index, item in enumerate(items):
                following = items[index + 1] if index + 1 < len(items) else None
                item.ihook.pytest_runtest_protocol(item=item, nextitem=following)
                if failed:
                    code = 1
                    break
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "survived" if os.waitstatus_to_exitcode(status) == 0 else "killed"
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.01)


class _Recorder:
    def __init__(self, record: Any) -> None:
        self.record = record

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.record(report)


def _apply(module: str, mutant: TableMutant) -> None:
    """Change the imported module as importing the mutated source would have.

    The changed statement and every later module-level assignment run again in the module's
    namespace (functions look their globals up when called, so they see the new tables), and
    names other mediapipe or test modules imported from it are bound to the new values.
    """
    namespace = importlib.import_module(f"mediapipe.{module}").__dict__
    tree = ast.parse(mutant.source)
    old: dict[str, object] = {}
    for statement in tree.body[mutant.statement :]:
        if not isinstance(statement, ast.Assign | ast.AnnAssign) or statement.value is None:
            continue
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        for target in targets:
            if isinstance(target, ast.Name):
                old.setdefault(target.id, namespace.get(target.id))
        exec(compile(ast.Module([statement], []), namespace["__file__"], "exec"), namespace)
    for name, value in old.items():
        new = namespace[name]
        for other in list(sys.modules.values()):
            symbols = getattr(other, "__dict__", None)
            if symbols is namespace or symbols is None:
                continue
            if other.__name__.startswith(("mediapipe", "tests")) and symbols.get(name) is value:
                symbols[name] = new


def _line(module: str, part: str, stats: dict[str, int]) -> str:
    killed, total = stats.get("killed", 0) + stats.get("timeout", 0), stats["total"]
    details = ", ".join(f"{key} {value}" for key, value in sorted(stats.items()) if value)
    share = 100 * killed / max(total, 1)
    return f"{module} {part}: {killed}/{total} killed ({share:.1f} %); {details}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(MODULES), help=", ".join(MODULES))
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="table-pass workers")
    parser.add_argument("--only", choices=["functions", "tables"], help="run one pass only")
    parser.add_argument("--table-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.table_worker:
        module, shard, jobs = args.table_worker
        _table_worker(module, int(shard), int(jobs))
        return
    out = ROOT / "bench" / ".work"
    out.mkdir(exist_ok=True)
    for module in args.modules:
        if module not in MODULES:
            parser.error(f"unknown module {module!r}; choose from {', '.join(MODULES)}")
        report = []
        totals = {"killed": 0, "total": 0}
        for part in ("functions", "tables"):
            if args.only not in (None, part):
                continue
            if part == "functions":
                stats, survivors = measure_functions(module, args.keep)
            else:
                stats, survivors = measure_tables(module, args.jobs, args.keep)
            totals["killed"] += stats.get("killed", 0) + stats.get("timeout", 0)
            totals["total"] += stats["total"]
            print(_line(module, part, stats), flush=True)
            report.append(f"== {part}: {_line(module, part, stats)}\n{survivors}\n")
        print(_line(module, "all", totals), flush=True)
        (out / f"mutation-{module}.txt").write_text("\n".join(report))


if __name__ == "__main__":
    main()
