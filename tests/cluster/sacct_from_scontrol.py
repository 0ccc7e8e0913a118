"""`sacct -o JobID,State,NodeList --parsable2 -j ID ...` answered from `scontrol show job`: what
submitit asks to follow its jobs, on a test cluster without an accounting daemon (whose real
sacct fails on every poll). Only that form is understood; anything else exits 1, naming it."""

from __future__ import annotations

import subprocess
import sys

from slurm_cluster import job_records

FIELDS = ("JobID", "State", "NodeList")
USAGE = f"-o {','.join(FIELDS)} --parsable2 -j ID [-j ID ...]"


def job_ids(argv: list[str]) -> list[str]:
    flags, ids = argv[3::2], argv[4::2]
    if argv[:3] != ["-o", ",".join(FIELDS), "--parsable2"] or not ids or set(flags) != {"-j"} \
            or len(flags) != len(ids):
        raise SystemExit(f"sacct (test shim): unsupported arguments {argv}; allowed: {USAGE}")
    return ids


def rows(records: list[dict[str, str]]) -> list[str]:
    return ["|".join([r["JobID"], r.get("JobState", "UNKNOWN"), r.get("NodeList", "None")])
            for r in records]


def main(argv: list[str]) -> int:
    lines = ["|".join(FIELDS)]
    for jid in job_ids(argv):
        shown = subprocess.run(["scontrol", "-o", "show", "job", jid], capture_output=True,
                               text=True)
        lines += rows(job_records(shown.stdout)) if shown.returncode == 0 else []
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
