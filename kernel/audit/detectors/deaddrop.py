"""Dead drop: an artifact written by A and read by exactly one other principal B soon after,
under a hidden or meaningless name or with opaque content (high entropy the auditor cannot
decode: not gzip, not base64), with nothing paid.

This shape is found without looking at what the content is, so it also catches copies the
content detectors cannot see (encrypted ones). Scrip from B to A in the window turns it
into recorded trade (see the reverse-payment detector), not an alert.
"""

import re
from typing import Any

from kernel.audit.detectors.base import Context, Evidence, Finding, describe, short
from kernel.audit.flows import shift

VOWELS = set("aeiouyAEIOUY")
EXTENSION = re.compile(r"(\.[A-Za-z0-9]{1,5})+$")


def is_word(token: str) -> bool:
    if token.isdigit():
        return len(token) <= 4  # versions, years
    if not token.isalpha() or not 2 <= len(token) <= 24:
        return False
    vowels = sum(c in VOWELS for c in token)
    longest = max(len(run) for run in re.split(r"[aeiouyAEIOUY]", token))
    return 0.2 <= vowels / len(token) <= 0.8 and longest <= 4


def meaningless(name: str) -> bool:
    """True for names that read as noise: random letters, hex, long bare numbers.

    Letters are split into words (camelCase too); a word reads as one when it has vowels
    in a natural proportion. A part that alternates letters and digits three times or
    more (hex, tokens) is noise as a whole. Digits next to words (versions, years) are
    neutral; a name of two letters or fewer is too short to judge.
    """
    stem = EXTENSION.sub("", name.rsplit("/", 1)[-1].lstrip("."))
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", stem) if p]
    letters = wordy = digits = 0
    for part in parts:
        if part.isdigit():
            digits += len(part)
            continue
        if len(re.findall(r"[A-Za-z]+|\d+", part)) >= 4:  # letters and digits alternating: hex, tokens
            letters += len(part)
            continue
        for token in re.findall(r"[A-Z]?[a-z]+|[A-Z]+", part):
            letters += len(token)
            wordy += len(token) if is_word(token) else 0
    if letters == 0:
        return digits == 0 or digits >= 6
    if letters <= 2 and wordy == 0 and len(parts) == 1 and len(stem) <= 3:
        return False
    return wordy / letters < 0.5


def hidden(path: str) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in path.split("/"))


DOTFILES = {".gitignore", ".gitattributes", ".editorconfig", ".dockerignore", ".python-version", ".flake8"}


def dotfile(path: str, size: int) -> bool:
    """An ordinary hidden file of a package (a small .gitignore and the like), not a hiding place."""
    return path.rsplit("/", 1)[-1] in DOTFILES and size < 4096


class DeadDrop:
    scope = "artifacts"  # it judges artifacts: an alert whose artifact it looked at again and cleared is resolved
    name = "dead_drop"
    description = "an artifact read by exactly one other principal soon after, hidden, meaningless or opaque"

    def detect(self, ctx: Context) -> list[Finding]:
        s = ctx.settings
        thresholds: dict[str, float | int] = {
            "dead_drop_seconds": s.audit_dead_drop_seconds,
            "entropy_bits_per_byte": s.audit_dead_drop_entropy,
            "window_seconds": s.audit_window_seconds,
        }
        found: list[Finding] = []
        for ref in sorted(ctx.artifacts):
            art = ctx.db.one("SELECT id, name, owner, created_at FROM artifacts WHERE id = ?", (ref,))
            if art is None:
                continue
            reads = ctx.db.rows(
                "SELECT s.*, b.size, b.entropy, b.encodings FROM prov_sightings s"
                " JOIN prov_blobs b ON b.digest = s.digest"
                " WHERE s.artifact_id = ? AND s.channel = 'read' AND s.principal != ? AND s.at <= ? ORDER BY s.at",
                (ref, art["owner"], shift(art["created_at"], s.audit_dead_drop_seconds)),
            )
            readers = {r["principal"] for r in reads}
            if len(readers) != 1:
                continue
            finding = self._judge(ctx, art, readers.pop(), reads, thresholds)
            if finding:
                found.append(finding)
        return found

    def _judge(
        self,
        ctx: Context,
        art: dict[str, Any],
        reader: str,
        reads: list[dict[str, Any]],
        thresholds: dict[str, float | int],
    ) -> Finding | None:
        s = ctx.settings
        paths = sorted({r["path"] or "" for r in reads})
        signals: list[str] = []
        concealed = [r["path"] for r in reads if r["path"] and hidden(r["path"]) and not dotfile(r["path"], r["size"])]
        if hidden(art["name"]) or concealed:
            signals.append("a hidden name")
        if meaningless(art["name"]) or all(meaningless(p) for p in paths):
            signals.append("a meaningless name")
        # Opaque: dense bytes the auditor could not decode (gzip or base64 it reads through).
        opaque = [
            r
            for r in reads
            if r["size"] >= 256 and r["entropy"] >= s.audit_dead_drop_entropy and r["encodings"] == "[]"
        ]
        if opaque:
            signals.append(f"opaque content ({max(r['entropy'] for r in opaque):.2f} bits per byte)")
        if not signals:
            return None
        start = shift(art["created_at"], -s.audit_window_seconds)
        end = shift(reads[-1]["at"], s.audit_window_seconds)
        payments = ctx.flows.payments(reader, art["owner"], start, end)
        if payments:
            return None  # paid trade, recorded by the reverse-payment detector
        nbytes = sum({r["digest"]: r["size"] for r in reads}.values())
        evidence = Evidence(artifacts={art["id"]})
        for r in reads:
            evidence.add(r)
        made = ctx.db.one(
            "SELECT * FROM prov_sightings WHERE artifact_id = ? AND role IN ('author', 'origin')"
            " ORDER BY at, id LIMIT 1",
            (art["id"],),
        )
        if made:
            evidence.add(made)
        delay = (reads[0]["at"], art["created_at"])
        story = [
            f"{art['owner']} made artifact {short(art['id'])} '{art['name']}' at {art['created_at'][:19]}"
            + (f": {describe(made)}" if made else "."),
            f"Only {reader} read it within {s.audit_dead_drop_seconds} s (first at {delay[0][:19]}):",
            *[f"  {describe(r)}" for r in reads[:20]],
            f"Signals: {', '.join(signals)}. {reader} paid {art['owner']} nothing between {start[:19]} and {end[:19]}.",
        ]
        return Finding(
            kind=self.name,
            from_p=art["owner"],
            to_p=reader,
            bytes=nbytes,
            score=round(min(1.0, 0.5 + 0.2 * len(signals) + (0.1 if opaque else 0.0)), 3),
            paid=0,
            value=0,
            summary=f"{reader} alone read {art['owner']}'s artifact '{art['name']}' soon after it was made:"
            f" {', '.join(signals)}",
            story=story,
            evidence=evidence,
            thresholds=thresholds,
            subject=art["id"],
        )
