#!/usr/bin/env python3
"""The mutation check of issue 15 (run it through scripts/mutation-check.sh).

Applies each planted bug of scripts/mutations.txt alone to a scratch copy of the working tree, rebuilds
what it touches (the emulator's CPU build of the kernels for cuda-kernels/ files, the Java classes for
src/ files), runs the suite the entry names and records whether, where and how fast it was caught.
The suites first run once on the unmutated copy: a suite that fails without a bug cannot catch one.

Only the emulator's CPU builds of a mutated kernel are rebuilt, not its PTX: the emulated driver runs the
CPU build and checks the PTX only for the entry list and parameter sizes, which no entry changes.

Exit status: 0 when every planted bug was caught, 1 otherwise (missed, stale or not building), 2 on usage.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Edit:
    def __init__(self, file, find, replace):
        self.file, self.find, self.replace = file, find, replace


class Mutation:
    def __init__(self, ident):
        self.id = ident
        self.suite = None
        self.what = ""
        self.env = {}
        self.edits = []

    def files(self):
        return sorted({e.file for e in self.edits})


def parse(path):
    """Reads the block format documented at the top of mutations.txt."""
    mutations = []
    current = None
    file = None
    block = None  # ('find' | 'replace', lines)
    pending_find = None

    def close_block():
        nonlocal block, pending_find
        if block is None:
            return
        kind, lines = block
        text = "\n".join(lines)
        if kind == "find":
            pending_find = text
        else:
            if pending_find is None:
                raise SystemExit(f"{path}: '+++ replace' without '--- find' in {current.id}")
            current.edits.append(Edit(file, pending_find, text))
            pending_find = None
        block = None

    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if line.startswith("=== "):
                close_block()
                current = Mutation(line[4:].strip())
                mutations.append(current)
                file = None
                continue
            if line.startswith("--- find") or line.startswith("+++ replace"):
                close_block()
                if current is None or file is None:
                    raise SystemExit(f"{path}:{number}: edit before '=== id' and 'file:'")
                block = ("find" if line.startswith("---") else "replace", [])
                continue
            if block is not None:
                if line.startswith("file:"):
                    close_block()
                else:
                    block[1].append(line)
                    continue
            if not line.strip() or line.startswith("#"):
                continue
            if current is None:
                raise SystemExit(f"{path}:{number}: text before the first '=== id'")
            key, _, value = line.partition(":")
            value = value.strip()
            if key == "file":
                file = value
            elif key == "suite":
                current.suite = value
            elif key == "what":
                current.what = value
            elif key == "env":
                name, _, setting = value.partition("=")
                current.env[name.strip()] = setting.strip()
            else:
                raise SystemExit(f"{path}:{number}: unknown key '{key}'")
    close_block()
    for m in mutations:
        # trailing blank lines of a block are separators, not part of the text
        for e in m.edits:
            e.find = e.find.rstrip("\n")
            e.replace = e.replace.rstrip("\n")
        if not m.suite or not m.edits:
            raise SystemExit(f"{path}: entry {m.id} needs a suite and at least one edit")
    return mutations


def run(cmd, cwd, log, timeout, env=None):
    """Runs cmd, appending its output to log; returns (exit status or 'timeout', seconds)."""
    start = time.monotonic()
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        try:
            status = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                                    env=dict(os.environ, **(env or {}))).returncode
        except subprocess.TimeoutExpired:
            status = "timeout"
    return status, time.monotonic() - start


def failing_tests(tree):
    """(class#method, message) of every failed or errored test in the last surefire run."""
    reports = os.path.join(tree, "target", "surefire-reports")
    found = []
    if not os.path.isdir(reports):
        return found
    for name in sorted(os.listdir(reports)):
        if not (name.startswith("TEST-") and name.endswith(".xml")):
            continue
        try:
            root = ET.parse(os.path.join(reports, name)).getroot()
        except ET.ParseError:
            continue
        for case in root.iter("testcase"):
            for kind in ("failure", "error"):
                bad = case.find(kind)
                if bad is not None:
                    cls = case.get("classname", "").rsplit(".", 1)[-1]
                    msg = (bad.get("message") or bad.text or "").strip().splitlines()
                    found.append((f"{cls}#{case.get('name')}", msg[0][:160] if msg else ""))
    return found


def maven_test(tree, suite, log, timeout, env=None):
    shutil.rmtree(os.path.join(tree, "target", "surefire-reports"), ignore_errors=True)
    cmd = ["mvn", "-B", "-ntp", "-o", "-q", "-Dexec.skip=true", "test", f"-Dtest={suite}",
           "-Dsurefire.failIfNoSpecifiedTests=false"]
    return run(cmd, tree, log, timeout, env)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", default=os.path.join(ROOT, "scripts", "mutations.txt"))
    ap.add_argument("--only", help="comma-separated ids")
    ap.add_argument("--scratch", default=os.path.join(ROOT, "target", "mutation-check"))
    ap.add_argument("--timeout", type=int, default=900, help="seconds per suite run")
    ap.add_argument("--skip-baseline", action="store_true", help="do not run the suites unmutated first")
    args = ap.parse_args()

    mutations = parse(args.list)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {m.id for m in mutations}
        if unknown:
            print(f"mutation-check: unknown ids: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        mutations = [m for m in mutations if m.id in wanted]

    tree = os.path.join(args.scratch, "tree")
    log = os.path.join(args.scratch, "mutation-check.log")
    os.makedirs(args.scratch, exist_ok=True)
    open(log, "w").close()
    print(f"mutation-check: copying the working tree to {tree} (log: {log})", flush=True)
    shutil.rmtree(tree, ignore_errors=True)
    scratch = os.path.realpath(args.scratch)

    def skipped(directory, names):
        # the repository's history and the scratch area itself stay behind; modification times are kept
        # (copy2), so Maven and the build scripts see the copied build outputs as up to date
        return [n for n in names if (directory == ROOT and n == ".git")
                or os.path.realpath(os.path.join(directory, n)) == scratch]

    shutil.copytree(ROOT, tree, symlinks=True, ignore=skipped, copy_function=shutil.copy2)
    status, secs = run(["mvn", "-B", "-ntp", "-o", "-q", "-DskipTests", "package"], tree, log, 3600)
    if status != 0:
        print(f"mutation-check: the unmutated copy does not build ({status}); see {log}", file=sys.stderr)
        return 1
    print(f"mutation-check: built the unmutated copy in {secs:.0f} s", flush=True)

    if not args.skip_baseline:
        for suite, env in sorted({(m.suite, tuple(sorted(m.env.items()))) for m in mutations}):
            status, secs = maven_test(tree, suite, log, args.timeout, dict(env))
            bad = failing_tests(tree)
            if status != 0 or bad:
                print(f"mutation-check: suite {suite} fails WITHOUT any planted bug ({status}, {len(bad)} failing"
                      f"{': ' + bad[0][0] if bad else ''}); fix that first", file=sys.stderr)
                return 1
            where = " with " + " ".join(f"{k}={v}" for k, v in env) if env else ""
            print(f"mutation-check: baseline {suite}{where}: passes ({secs:.0f} s)", flush=True)

    rows = []
    for m in mutations:
        originals = {}
        verdict, caught_by, detail, secs = "", "", "", 0.0
        try:
            for e in m.edits:
                path = os.path.join(tree, e.file)
                if path not in originals:
                    with open(path, encoding="utf-8") as f:
                        originals[path] = f.read()
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                count = text.count(e.find)
                if count != 1:
                    verdict = "stale"
                    detail = f"find text occurs {count} times in {e.file}"
                    break
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text.replace(e.find, e.replace))
            if not verdict:
                started = time.monotonic()
                if any(f.startswith("cuda-kernels/") for f in m.files()):
                    status, _ = run(["scripts/build-emu.sh"], tree, log, args.timeout)
                    if status != 0:
                        verdict, detail = "does not build", "scripts/build-emu.sh failed"
                if not verdict:
                    status, _ = maven_test(tree, m.suite, log, args.timeout, m.env)
                    bad = failing_tests(tree)
                    if status == "timeout":
                        verdict, detail = "caught (timeout)", f"{m.suite} ran past {args.timeout} s"
                    elif bad:
                        verdict, caught_by, detail = "caught", bad[0][0], f"{len(bad)} failing; {bad[0][1]}"
                    elif status != 0:
                        verdict, detail = "does not build", "mvn failed without a failing test (see the log)"
                    else:
                        verdict = "MISSED"
                secs = time.monotonic() - started
        finally:
            for path, text in originals.items():
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
            if any(f.startswith("cuda-kernels/") for f in m.files()):
                # the kernels built from the mutated source must not serve the next entries' suites
                run(["scripts/build-emu.sh"], tree, log, args.timeout)
        rows.append((m, verdict, caught_by, detail, secs))
        print(f"mutation-check: {m.id}: {verdict}{' by ' + caught_by if caught_by else ''} ({secs:.0f} s)"
              f"{' - ' + detail if detail and not caught_by else ''}", flush=True)

    lines = ["| planted bug | file | suite | result | first failing test | seconds |", "|---|---|---|---|---|---|"]
    for m, verdict, caught_by, detail, secs in rows:
        suite = m.suite + "".join(f" ({k}={v})" for k, v in m.env.items())
        lines.append(f"| `{m.id}`: {m.what} | {', '.join(m.files())} | {suite} | {verdict} | "
                     f"{caught_by or detail} | {secs:.0f} |")
    caught = sum(1 for r in rows if r[1].startswith("caught"))
    lines.append("")
    lines.append(f"{caught} of {len(rows)} planted bugs caught.")
    table = "\n".join(lines)
    with open(os.path.join(args.scratch, "report.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    print()
    print(table)
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
