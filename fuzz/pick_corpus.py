#!/usr/bin/env python3
"""Picks a capped subset of a fuzzing run's corpus to keep in fuzz/corpus/TARGET/.

    TARGET=fuzz/target/x86_64-unknown-linux-gnu/release/TARGET
    $TARGET -merge=1 -merge_control_file=CTL -max_len=N MINIMISED_DIR RUN_CORPUS_DIR
    python3 fuzz/pick_corpus.py TARGET CTL [CAP] [MAX_BYTES]

The merge (what `cargo fuzz cmin` runs) writes a control file naming, for every input, the
coverage edges (`COV`) it reaches. This script starts from the edges of the files already
kept (`seed-*`, `crash-*`, `cmin-*` of fuzz/corpus/TARGET, which the run corpus was seeded
with), then greedily adds the input that reaches the most edges not yet covered (the
smaller on a tie), skipping inputs over MAX_BYTES, until CAP inputs are added or none adds
an edge. The picked inputs are copied to fuzz/corpus/TARGET/cmin-<sha1>. For the `bundle` target
only inputs whose file map holds an `organization.json` are picked, so that they keep
reaching past the loader's first check (the loader requires one).
"""

import hashlib
import shutil
import sys
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


def has_organization(data):
    """Whether a `bundle` input (fuzz/bodies/bundle.rs `entry`) maps organization.json."""
    i = 0
    while i < len(data):
        layout = data[i]
        i += 3  # layout, account, name (a byte each; zeros past the end)
        if i + 2 > len(data):
            return False
        length = min(int.from_bytes(data[i : i + 2], "little"), len(data) - i - 2)
        i += 2 + length
        if layout % 12 == 0:
            return True
    return False


def main():
    target, ctl = sys.argv[1], Path(sys.argv[2])
    cap = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    max_bytes = int(sys.argv[4]) if len(sys.argv) > 4 else 4096
    lines = ctl.read_text().splitlines()
    n = int(lines[0])
    files = lines[2 : 2 + n]
    cov = {}
    for line in lines[2 + n :]:
        parts = line.split()
        if parts and parts[0] == "COV":
            cov[int(parts[1])] = set(map(int, parts[2:]))
    kept = {p.name for p in (CORPUS / target).iterdir()}
    covered = set()
    candidates = []
    for i, f in enumerate(files):
        edges = cov.get(i, set())
        name = Path(f).name
        if name in kept:
            covered |= edges
        elif Path(f).stat().st_size <= max_bytes and (
            target != "bundle" or has_organization(Path(f).read_bytes())
        ):
            candidates.append((f, edges))
    before = len(covered)
    picked = []
    while len(picked) < cap:
        best = max(
            candidates,
            key=lambda c: (len(c[1] - covered), -Path(c[0]).stat().st_size),
            default=None,
        )
        if best is None or not best[1] - covered:
            break
        covered |= best[1]
        candidates.remove(best)
        picked.append(best[0])
    for f in picked:
        data = Path(f).read_bytes()
        shutil.copyfile(f, CORPUS / target / f"cmin-{hashlib.sha1(data).hexdigest()[:16]}")
    print(
        f"{target}: kept files cover {before} edges; {len(picked)} picked, "
        f"{sum(Path(f).stat().st_size for f in picked)} bytes, cover {len(covered)}"
    )


if __name__ == "__main__":
    main()
