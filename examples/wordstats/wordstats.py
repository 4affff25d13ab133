"""For {"text": ...}: count each paragraph with wordcount (invoked through the kernel,
in its own sandbox, paid by the caller), keep a report as a data artifact, return both."""

import json
from pathlib import Path

import kernel_client

WORDCOUNT = Path(__file__).with_name("WORDCOUNT_ID").read_text().strip()


def main(value):
    paragraphs = [p for p in str(value.get("text", "")).split("\n\n") if p.strip()]
    counts = [kernel_client.invoke(WORDCOUNT, {"text": p}) for p in paragraphs]
    report = json.dumps({"paragraphs": counts}, indent=1).encode()
    report_id = kernel_client.write_artifact("wordstats-report", {"report.json": report})
    with open("summary.txt", "w") as fh:  # a file in the run's workspace, audited
        fh.write(f"{len(paragraphs)} paragraphs, {sum(c['words'] for c in counts)} words\n")
    return {"paragraphs": len(paragraphs), "words": [c["words"] for c in counts], "report": report_id}
