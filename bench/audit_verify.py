"""How long ``verify_audit`` takes on a big chain, and how much memory it holds.

Builds one workspace's chain of N entries (default 200,000; ``--entries``) directly —
entries about N/2 actions' changes, hashed with ``billing_app.audit_chain`` — then times
``audit_check`` (the walk ``verify_audit`` records) and takes its peak of Python memory
(tracemalloc) beside the chain's size. The walk streams the entries in chunks and keeps
one digest per subject, so the peak should stay far below the chain's bytes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_audit python bench/audit_verify.py

It refuses to run unless the database's name contains ``bench`` or ``test``: the schema
is dropped and rebuilt from the models. See bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import bench_setup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=200_000)
    args = parser.parse_args()
    bench_setup(redis=False)

    from django.db import connection
    from django.utils import timezone

    from billing_app.audit_chain import entry_hash
    from billing_app.models import AuditChainHead, AuditEntry, Workspace
    from billing_app.services.audit import Event, event_content
    from billing_app.services.audit_verify import audit_check

    workspace = Workspace.objects.create(slug="bench-audit", name="Bench audit", provider="sandbox")
    at, prev, batch, size = timezone.now(), "", [], 0
    started = time.perf_counter()
    for seq in range(1, args.entries + 1):
        data = {"amount": seq * 7, "status": "succeeded", "params": {"charge_id": f"ch_{seq}"}}
        content = event_content(
            Event("test.change", "test", str(seq // 2), data), workspace_id=workspace.pk, at=at
        )
        digest = entry_hash(prev_hash=prev, seq=seq, content=content)
        batch.append(
            AuditEntry(
                workspace=workspace,
                seq=seq,
                event="test.change",
                subject_type="test",
                subject_id=str(seq // 2),
                content=content,
                prev_hash=prev,
                hash=digest,
                created_at=at,
            )
        )
        size += len(content) + 128
        prev = digest
        if len(batch) == 5000:
            AuditEntry.objects.bulk_create(batch)
            batch = []
    AuditEntry.objects.bulk_create(batch)
    AuditChainHead.objects.create(workspace=workspace, seq=args.entries, last_hash=prev)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"built {args.entries:,} entries (~{size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s"
    )

    started = time.perf_counter()
    finding = audit_check(workspace=workspace)
    elapsed = time.perf_counter() - started
    assert finding.ok and finding.entries == args.entries, finding
    tracemalloc.start()  # a second walk, traced (tracing slows Python several times over)
    audit_check(workspace=workspace)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print("figure | measured")
    print(
        f"verify {args.entries:,} entries | {elapsed:.2f} s ({args.entries / elapsed:,.0f} entries/s)"
    )
    print(f"peak Python memory of the walk | {peak / 1e6:.1f} MB (chain ~{size / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
